"""`python -m bark_engine.bench`: see `bark_engine.bench.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
