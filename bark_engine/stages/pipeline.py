"""The four stages for a batch of B >= 1 rows: text → semantic → coarse → fine → audio.

Every take goes through here, alone (B = 1) or with others: several takes of
one text, the segments of a script, the requests a server has queued. Each
row has its own text, voice, options and seed; row b's tokens are exactly
what it would get alone (the stage loops and the step strategies see to
that), so batching changes only how long it takes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..config import SEMANTIC_RATE_HZ
from ..errors import BadInputError, Cancelled
from ..events import EventCallback
from ..model.steps import FineRunner, Stepper
from ..options import GenerationOptions
from ..voices.catalog import VoicePrompt
from .coarse import CoarseRow, coarse_rows
from .fine import FineRow, fine_rows
from .runner import TOO_LITTLE_SPEECH, StageReporter, StageRunner, StageTiming, history_arrays
from .semantic import SemanticRow, semantic_rows


@dataclass(frozen=True)
class PreparedRow:
    """A request checked and resolved: text ids, voice prompt, options, seed."""

    ids: list[int]  # WordPiece ids of the text
    prompt: VoicePrompt | None
    options: GenerationOptions  # with `seed` set
    segment: int = 0  # the script segment it renders (events name it)

    @property
    def seed(self) -> int:
        assert self.options.seed is not None
        return self.options.seed


@dataclass(frozen=True)
class RowResult:
    """What the stages made of one row."""

    semantic: np.ndarray  # (T_sem,) int64
    coarse: np.ndarray  # (2, T) int64
    fine: np.ndarray  # (8, T) int64
    audio: np.ndarray  # (T * 320,) float32
    timings: dict[str, StageTiming]  # its own tokens; the batch's seconds (decode: its own)


@dataclass(frozen=True)
class StageModels:
    """What the stages run on: a step strategy per GPT, and the codec's decode."""

    semantic: Stepper
    coarse: Stepper
    fine: FineRunner
    decode: Callable[[np.ndarray], np.ndarray]
    device: torch.device


def semantic_budget(options: GenerationOptions) -> int:
    """Most semantic steps a take can run (for a progress bar's total)."""
    steps = options.max_semantic_steps
    if options.max_duration_s is not None:
        steps = min(steps, int(options.max_duration_s * SEMANTIC_RATE_HZ) + 1)
    return steps


def run_rows(
    models: StageModels,
    rows: Sequence[PreparedRow],
    on_event: EventCallback,
    cancel: threading.Event | None,
) -> list[RowResult]:
    """All four stages for the rows, one stage at a time for the whole batch.

    Raises `Cancelled` when `cancel` is set and `BadInputError` when a row
    makes no speech (naming its seed when there are several rows).
    """
    gens = [torch.Generator(device=models.device).manual_seed(r.seed) for r in rows]
    histories = [history_arrays(r.prompt) for r in rows]
    stages = StageRunner(on_event, cancel, [r.segment for r in rows])
    semantic = stages.run(
        "semantic",
        sum(semantic_budget(r.options) for r in rows),
        lambda rep: semantic_rows(models.semantic, [
            SemanticRow(r.ids, h[0], **r.options.semantic_sampling(), generator=g)
            for r, h, g in zip(rows, histories, gens, strict=True)
        ], on_step=rep, cancel=cancel),
    )
    for r, tokens in zip(rows, semantic, strict=True):
        if len(tokens) == 0:
            which = f" for seed {r.seed}" if len(rows) > 1 else ""
            raise BadInputError(
                f"the semantic stage stopped at once{which} (no speech); try another seed"
            )
    coarse = stages.run(
        "coarse",
        None,
        lambda rep: coarse_rows(models.coarse, [
            CoarseRow(s, h[0], h[1], **r.options.coarse_sampling(), generator=g)
            for r, s, h, g in zip(rows, semantic, histories, gens, strict=True)
        ], on_step=rep, cancel=cancel),
    )
    if any(c.shape[1] == 0 for c in coarse):
        raise BadInputError(TOO_LITTLE_SPEECH)
    fine = stages.run(
        "fine",
        None,
        lambda rep: fine_rows(models.fine, [
            FineRow(c, h[2], **r.options.fine_sampling(), generator=g)
            for r, c, h, g in zip(rows, coarse, histories, gens, strict=True)
        ], on_step=rep, cancel=cancel),
    )
    decode_seconds: list[float] = []

    def decode_all(rep: StageReporter) -> list[np.ndarray]:
        out = []
        for i, codes in enumerate(fine):
            if cancel is not None and cancel.is_set():
                raise Cancelled("decode cancelled")
            start = time.perf_counter()
            out.append(models.decode(codes))
            decode_seconds.append(time.perf_counter() - start)
            rep(i + 1, len(fine))
        return out

    audio = stages.run("decode", len(rows), decode_all)
    batch_seconds = {stage: t.seconds for stage, t in stages.timings.items()}
    results = []
    for i in range(len(rows)):
        if len(rows) == 1:
            timings = dict(stages.timings)
        else:
            timings = {
                "semantic": StageTiming(len(semantic[i]), batch_seconds["semantic"]),
                "coarse": StageTiming(coarse[i].shape[1], batch_seconds["coarse"]),
                "fine": StageTiming(fine[i].shape[1], batch_seconds["fine"]),
                "decode": StageTiming(len(audio[i]), decode_seconds[i]),
            }
        results.append(RowResult(semantic[i], coarse[i], fine[i], audio[i], timings))
    return results
