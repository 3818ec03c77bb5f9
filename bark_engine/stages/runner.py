"""Running a generation's stages: progress events, cancel checks and timings.

`Engine.generate_batch` runs every take, alone or in a batch, through it, so
all of them report, time and cancel their stages the same way; the stage
computations themselves stay with the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from ..errors import Cancelled
from ..events import EventCallback, Stage, StageFinished, StageProgress, StageStarted
from ..voices.catalog import VoicePrompt


@dataclass(frozen=True)
class StageTiming:
    """What one stage made and how long it took (a batch's takes share the seconds)."""

    tokens: int  # tokens produced (decode: audio samples)
    seconds: float


class StageReporter:
    """Turns a stage loop's `on_step(step, total)` calls into StageProgress events."""

    def __init__(self, stage: Stage, on_event: EventCallback, segments: tuple[int, ...]) -> None:
        self.stage = stage
        self.on_event = on_event
        self.segment, self.segments = segments[0], segments if len(segments) > 1 else ()
        self.start = time.perf_counter()
        self.steps = 0

    def __call__(self, step: int, total: int | None) -> None:
        self.steps = step
        elapsed = time.perf_counter() - self.start
        rate = step / elapsed if elapsed > 0 else 0.0
        self.on_event(StageProgress(self.stage, step, total, rate, elapsed, self.segment,
                                    self.segments))


StageOutput = TypeVar("StageOutput", np.ndarray, list[np.ndarray])  # one take's, or a batch's
# Said alike whether one take or one take of a batch comes out of coarse empty.
TOO_LITTLE_SPEECH = "too little speech to make audio from; try a longer text"


def produced(stage: Stage, out: np.ndarray | Sequence[np.ndarray]) -> int:
    """What a stage made, for its StageFinished event: tokens (time steps) or,
    for decode, audio samples; summed over the takes of a batch."""
    axis = 0 if stage == "decode" else -1
    arrays = [out] if isinstance(out, np.ndarray) else out
    return sum(int(a.shape[axis]) for a in arrays)


class StageRunner:
    """Runs a generation's stages one after another, for one take or a batch.

    Around each stage: the cancel check, StageStarted, progress through a
    `StageReporter`, StageFinished and the stage's `StageTiming` (what it
    made, wall seconds). `segments` are the script segments of the batch's
    rows (one take: a single index), named by every event.
    """

    def __init__(
        self, on_event: EventCallback, cancel: threading.Event | None, segments: Sequence[int]
    ) -> None:
        self.on_event = on_event
        self.cancel = cancel
        self.segments = tuple(segments) or (0,)
        self.segment = self.segments[0]
        many = self.segments if len(self.segments) > 1 else ()
        self._events = {"segment": self.segment, "segments": many}
        self.timings: dict[str, StageTiming] = {}

    def run(
        self,
        stage: Stage,
        total: int | None,
        fn: Callable[[StageReporter], StageOutput],
    ) -> StageOutput:
        """`fn(on_step)` computes the stage; raises Cancelled before it if asked to stop."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(f"cancelled before the {stage} stage")
        self.on_event(StageStarted(stage, total, **self._events))
        rep = StageReporter(stage, self.on_event, self.segments)
        out = fn(rep)
        seconds = time.perf_counter() - rep.start
        n = produced(stage, out)
        self.timings[stage] = StageTiming(n, seconds)
        self.on_event(StageFinished(stage, n, seconds, **self._events))
        return out


def history_arrays(
    prompt: VoicePrompt | None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """A voice's semantic, coarse and fine history for the three stages (all None: no voice)."""
    if prompt is None:
        return None, None, None
    return prompt.semantic, prompt.coarse, prompt.fine
