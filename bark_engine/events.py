"""Progress events the engine sends through its callback.

Plain frozen dataclasses, so a UI can forward them across threads and a test
can compare them. The engine never imports a UI library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Union

Stage = Literal["semantic", "coarse", "fine", "decode"]
STAGES: tuple[Stage, ...] = ("semantic", "coarse", "fine", "decode")


@dataclass(frozen=True)
class LoadProgress:
    """Loading or downloading one file; `total` is None when unknown."""

    what: str  # e.g. "text.pt", "encodec", "vocab.txt"
    done: int  # bytes (download) or 0/1 (load)
    total: int | None
    message: str = ""


@dataclass(frozen=True)
class StageStarted:
    stage: Stage
    total: int | None  # planned steps; None when unknown (semantic stops at EOS)
    segment: int = 0  # index of the script segment (long scripts), 0 otherwise
    # Every segment of the batch this stage runs for (the first is `segment`);
    # empty for one take. Steps and totals count the tokens of all of them.
    segments: tuple[int, ...] = ()


@dataclass(frozen=True)
class StageProgress:
    stage: Stage
    step: int  # steps done so far
    total: int | None  # planned steps (semantic: the 768 cap, or max_duration)
    tokens_per_s: float
    elapsed_s: float
    segment: int = 0
    segments: tuple[int, ...] = ()


@dataclass(frozen=True)
class StageFinished:
    stage: Stage
    tokens: int  # tokens produced (decode: audio samples)
    seconds: float
    segment: int = 0
    segments: tuple[int, ...] = ()


Event = Union[LoadProgress, StageStarted, StageProgress, StageFinished]
EventCallback = Callable[[Event], None]


def ignore_event(event: Event) -> None:
    """Default callback: drop every event."""
