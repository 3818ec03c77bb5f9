"""Wall time of a stage's stepper calls, split by kind, for the benchmark only.

A coarse window's prefill is compute-bound and its one-token steps are
memory-bound, and a batch's semantic prefill grows with B while its steps
should not: the benchmark reports them apart. `timed_calls` patches the
`advance` of the engine's own stepper instance for the length of a `with`
block (so the stage runs exactly as `Engine.generate` runs it) and restores
it afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def timed_calls(stepper, device: torch.device) -> Iterator[dict[str, float]]:
    """Seconds of `stepper.advance` calls inside the block: "prefills" (a call
    that feeds more than one id to some row: a prefill, or a window continued
    from the cache) and "steps" (one id per row), plus "steps_n", the count of
    step calls. On a GPU each call is synchronised, so the times are its own."""
    seconds = {"prefills": 0.0, "steps": 0.0, "steps_n": 0}
    inner = stepper.advance
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def advance(cache, feeds, vocab):
        kind = "prefills" if any(len(f.ids) > 1 for f in feeds) else "steps"
        sync()
        t0 = time.perf_counter()
        out = inner(cache, feeds, vocab)
        sync()
        seconds[kind] += time.perf_counter() - t0
        seconds["steps_n"] += kind == "steps"
        return out

    own = vars(stepper).get("advance")  # an enclosing block's patch, if any
    stepper.advance = advance  # on the instance: shadows the class's method
    try:
        yield seconds
    finally:
        if own is None:
            del stepper.advance
        else:
            stepper.advance = own
