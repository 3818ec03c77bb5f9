"""The cancel-mid-semantic check, shared by the CPU and GPU engine tests."""

from __future__ import annotations

import threading
import time

import pytest

from bark_engine import Cancelled, GenerationOptions, StageProgress
from bark_engine.pipeline import Engine


def assert_cancel_is_prompt(engine: Engine, then: GenerationOptions) -> None:
    """Cancel at the third semantic token: `Cancelled` within 0.5 s, and the
    engine makes a take with `then` afterwards."""
    cancel = threading.Event()
    when: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, StageProgress) and event.stage == "semantic" and event.step == 3:
            cancel.set()
            when.append(time.perf_counter())

    with pytest.raises(Cancelled):
        engine.generate(
            "Stop me early please.",
            options=GenerationOptions(seed=3, allow_early_stop=False),
            on_event=on_event,
            cancel=cancel,
        )
    assert time.perf_counter() - when[0] < 0.5
    assert len(engine.generate("Still works afterwards.", options=then).audio) > 0
