"""The cancel-mid-semantic check, shared by the CPU and GPU engine tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from bark_engine import Cancelled, GenerationOptions, StageProgress
from bark_engine.engine import Engine


def canceller(stage: str, step: int) -> tuple[threading.Event, Callable, list[float]]:
    """An event set once `stage` reports progress step `step` or later, the
    `on_event` callback that sets it, and the time it was set (filled then)."""
    cancel = threading.Event()
    when: list[float] = []

    def on_event(event) -> None:
        if (isinstance(event, StageProgress) and event.stage == stage and event.step >= step
                and not cancel.is_set()):
            cancel.set()
            when.append(time.perf_counter())

    return cancel, on_event, when


def assert_cancel_is_prompt(engine: Engine, then: GenerationOptions) -> None:
    """Cancel at the third semantic token: `Cancelled` within 0.5 s, and the
    engine makes a take with `then` afterwards."""
    cancel, on_event, when = canceller("semantic", 3)

    with pytest.raises(Cancelled):
        engine.generate(
            "Stop me early please.",
            options=GenerationOptions(seed=3, allow_early_stop=False),
            on_event=on_event,
            cancel=cancel,
        )
    assert time.perf_counter() - when[0] < 0.5
    assert len(engine.generate("Still works afterwards.", options=then).audio) > 0
