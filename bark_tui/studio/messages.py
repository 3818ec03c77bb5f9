"""Messages that carry engine and player news from worker threads to the UI.

Workers never touch widgets: they post one of these with ``post_message``
(thread-safe, and it returns False instead of raising once the app has
stopped). Progress messages say they may ``can_replace`` an older one of the
same kind, so a fast token loop collapses into the latest state instead of
queueing thousands of repaints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from textual.message import Message

if TYPE_CHECKING:
    from ..core.job import Job


class EngineLoading(Message):
    """The engine is loading or downloading one file (``total`` None = unknown size)."""

    def __init__(self, what: str, done: int, total: int | None, message: str = "") -> None:
        super().__init__()
        self.what = what
        self.done = done
        self.total = total
        self.message = message

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EngineLoading) and message.what == self.what


class EngineReady(Message):
    """The engine finished loading; its facts can be shown now."""

    def __init__(self, model_id: str, device: str, random_weights: bool,
                 advice: str | None = None) -> None:
        super().__init__()
        self.model_id = model_id
        self.device = device
        self.random_weights = random_weights
        self.advice = advice  # a caution about the precision on this machine, if any


class StageUpdate(Message):
    """One stage of one job moved on. ``state`` is "running", "done" or "cancelled"."""

    def __init__(
        self,
        job_id: int,
        stage: str,
        step: int,
        total: int | None,
        tokens_per_s: float = 0.0,
        elapsed_s: float = 0.0,
        state: str = "running",
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.stage = stage
        self.step = step
        self.total = total
        self.tokens_per_s = tokens_per_s
        self.elapsed_s = elapsed_s
        self.state = state

    def can_replace(self, message: Message) -> bool:
        # Only running updates of the same stage collapse: a start or a finish
        # must always reach the widget.
        return (
            isinstance(message, StageUpdate)
            and message.state == "running"
            and self.state == "running"
            and message.job_id == self.job_id
            and message.stage == self.stage
        )


class JobStarted(Message):
    """A queued job left the queue and the worker picked it up."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job


@dataclass
class JobOutcome:
    """How a job ended, for the one handler that advances the queue."""

    job: Job
    take: Any = None  # history.Take when it finished
    error: str | None = None  # one-line message of an expected error
    cancelled: bool = False
    traceback: str | None = None  # set for unexpected errors: shown in the error modal
    kept: int = 0  # a script job stopped early: segments kept for the next render of it
    disk_full: bool = False  # the take could not be stored for want of space: hold the queue
    remade: Any = None  # history.Take: a script take with one segment re-made and re-stitched
    audio: np.ndarray | None = None  # the stored take's samples as made (the app keeps them)


class JobEnded(Message):
    """A job finished, failed with an expected error, or was cancelled."""

    def __init__(self, outcome: JobOutcome) -> None:
        super().__init__()
        self.outcome = outcome


class TokenCount(Message):
    """The real tokenizer counted the editor's text (``text`` is what was counted)."""

    def __init__(self, text: str, tokens: int) -> None:
        super().__init__()
        self.text = text
        self.tokens = tokens


class AuditionReady(Message):
    """A voice's own sample was decoded and can be played."""

    def __init__(self, voice: str, audio: np.ndarray, sample_rate: int) -> None:
        super().__init__()
        self.voice = voice
        self.audio = audio
        self.sample_rate = sample_rate


class PlaybackEnded(Message):
    """The player finished (or was stopped) playing what ``token`` names."""

    def __init__(self, token: int) -> None:
        super().__init__()
        self.token = token


class Problem(Message):
    """An expected failure in a worker: shown as an error notice, nothing else."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


# --- long scripts ---------------------------------------------------------------------


class SegmentStarted(Message):
    """The worker began making segment ``index`` (0-based) of ``count``, and with it
    the other segments of its batch, ``indices`` (``(index,)`` alone)."""

    def __init__(self, job_id: int, index: int, count: int,
                 indices: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.job_id, self.index, self.count = job_id, index, count
        self.indices = indices or (index,)


class SegmentReady(Message):
    """Segment ``index`` is made: its audio can be played while the rest is made."""

    def __init__(self, job_id: int, index: int, count: int, audio: np.ndarray,
                 sample_rate: int, pause_before_s: float) -> None:
        super().__init__()
        self.job_id, self.index, self.count = job_id, index, count
        self.audio, self.sample_rate, self.pause_before_s = audio, sample_rate, pause_before_s
        self.made_at = time.monotonic()  # in the worker, as the segment is done


class RayWorkersChanged(Message):
    """A script job's Ray workers: ``ready`` of ``total`` have their models loaded."""

    def __init__(self, job_id: int, ready: int, total: int) -> None:
        super().__init__()
        self.job_id, self.ready, self.total = job_id, ready, total


class ScriptResumed(Message):
    """The job goes on from a cancelled render: ``done`` of ``count`` segments are reused."""

    def __init__(self, job_id: int, done: int, count: int, seed: int) -> None:
        super().__init__()
        self.job_id, self.done, self.count, self.seed = job_id, done, count, seed
