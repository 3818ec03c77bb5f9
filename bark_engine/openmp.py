"""How long idle OpenMP threads spin before they sleep, for processes that run the engine.

libgomp (the OpenMP runtime of PyTorch's Linux wheels) reads its settings
once, when torch is imported, so a program sets them first: the bark-tui CLI
and the studio call `set_default_waits()` at start-up, the benchmark passes
`default_waits()` to its child processes. No torch import here.

Spinning without bound (libgomp's default) made decoding ~30x slower
whenever another thread (the studio's UI) or process wanted the core;
sleeping at once (`OMP_WAIT_POLICY=PASSIVE`) pays a thread wake-up, ~50-100 us
on the 2-core AMD EPYC VM here, at every one of the ~60 parallel regions of a
decode step. A short spin keeps both away. Measured at the small dims on 2
threads: semantic decoding ~46 → ~58 tok/s on a quiet machine, 25.8 → 27.7
tok/s beside a busy UI-like thread, 16.6 → 19.2 tok/s each for two engines in
two processes on the 2 cores.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SPIN_COUNT = 3000  # GOMP_SPINCOUNT rounds (a PAUSE each): tens of microseconds


def default_waits() -> dict[str, str]:
    """The environment entries `set_default_waits` adds."""
    return {"GOMP_SPINCOUNT": str(SPIN_COUNT)}


def set_default_waits(environ: MutableMapping[str, str] | None = None) -> None:
    """Spin briefly before sleeping, unless a wait policy or spin count is already set.

    Call before torch is imported; later calls change nothing for this process.
    """
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return
    env.update(default_waits())
