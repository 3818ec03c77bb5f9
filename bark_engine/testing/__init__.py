"""Test support: random-weight model folders in the real `suno/bark` layout.

`write_random_models(dir, dims="tiny", seed=0)` or, from a shell,
`python -m bark_engine.testing random-models DIR --dims tiny|small|large`.
"""

from __future__ import annotations

from .random_models import MARKER_FILE, PRESETS, preset_relpath, write_random_models

__all__ = ["MARKER_FILE", "PRESETS", "preset_relpath", "write_random_models"]
