"""Benchmark: our engine against transformers' Bark port on the same random weights.

Run `python -m bark_engine.bench [--dims small|large] [--threads N] [--repeat R]
[--stages semantic,coarse,fine,decode] [--models DIR] [--json FILE]`.

Modules: `work` (the fixed work and the stage inputs), `engines` (one runner
per engine), `child` (one measurement per process), `bandwidth` (memory
bandwidth and the batch-1 bound), `report` (derived numbers and the table),
`cli` (orchestration).
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv=None) -> int:
    from .cli import main as _main

    return _main(argv)
