"""Several takes of one text as one batch, for `Engine.generate_takes`.

Take i is exactly what `Engine.generate(text, voice, options with seed=seeds[i])`
gives: one `torch.Generator` per take, seeded the same way and used through
the stages in the same order, and the batched stage loops of `batch` keep
every take's random stream apart (see there). Progress events describe the
batch as a whole: one StageStarted/StageFinished per stage, steps counting
the tokens of all takes together.

`measure_takes_per_minute` is the benchmark's entry point.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from .errors import BadInputError, Cancelled
from .events import EventCallback, ignore_event
from .options import GenerationOptions
from .stages.batch import (
    MAX_BATCH,
    generate_coarse_batch,
    generate_fine_batch,
    generate_semantic_batch,
)
from .stages.runner import (
    TOO_LITTLE_SPEECH,
    StageReporter,
    StageRunner,
    StageTiming,
    history_arrays,
)

if TYPE_CHECKING:
    from .engine import Engine, Generation, VoiceArg


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, str, bytes)):
        raise BadInputError("seeds must be a sequence of integers, one per take")
    seeds = [int(s) for s in seeds]
    if not 1 <= len(seeds) <= MAX_BATCH:
        raise BadInputError(f"give 1..{MAX_BATCH} seeds (one per take), got {len(seeds)}")
    return seeds


def generate_takes(
    engine: Engine,
    text: str,
    voice: VoiceArg = None,
    options: GenerationOptions | None = None,
    *,
    seeds: Sequence[int],
    on_event: EventCallback = ignore_event,
    cancel: threading.Event | None = None,
    segment: int = 0,
) -> list[Generation]:
    """One `Generation` per seed, in the order of `seeds`; `options.seed` is ignored.

    Each take's `timings` hold its own token counts and the batch's time per
    stage (decode: its own). Raises `Cancelled` when `cancel` is set and
    `BadInputError` where a single run with that seed would.
    """
    seeds = _check_seeds(seeds)
    options, ids, prompt = engine._prepare(text, voice, options, on_event)
    gens = [engine._generator(s) for s in seeds]
    stages = StageRunner(on_event, cancel, segment)
    hist_sem, hist_coarse, hist_fine = history_arrays(prompt)
    semantic = stages.run(
        "semantic",
        len(seeds) * engine._semantic_budget(options),
        lambda rep: generate_semantic_batch(
            engine._semantic, ids, hist_sem, **options.semantic_sampling(),
            generators=gens, on_step=rep, cancel=cancel,
        ),
    )
    for seed, tokens in zip(seeds, semantic, strict=True):
        if len(tokens) == 0:
            raise BadInputError(
                f"the semantic stage stopped at once for seed {seed} (no speech); try other seeds"
            )
    coarse = stages.run(
        "coarse",
        None,
        lambda rep: generate_coarse_batch(
            engine._coarse, semantic, hist_sem, hist_coarse, **options.coarse_sampling(),
            generators=gens, on_step=rep, cancel=cancel,
        ),
    )
    if any(c.shape[1] == 0 for c in coarse):
        raise BadInputError(TOO_LITTLE_SPEECH)
    fine = stages.run(
        "fine",
        None,
        lambda rep: generate_fine_batch(
            engine._fine, coarse, hist_fine, **options.fine_sampling(),
            generators=gens, on_step=rep, cancel=cancel,
        ),
    )
    decode_seconds: list[float] = []

    def decode_all(rep: StageReporter) -> list[np.ndarray]:
        out = []
        for i, codes in enumerate(fine):
            if cancel is not None and cancel.is_set():
                raise Cancelled("decode cancelled")
            start = time.perf_counter()
            out.append(engine.decode(codes))
            decode_seconds.append(time.perf_counter() - start)
            rep(i + 1, len(fine))
        return out

    audio = stages.run("decode", len(seeds), decode_all)
    batch_seconds = {stage: t.seconds for stage, t in stages.timings.items()}
    takes = []
    for i, seed in enumerate(seeds):
        timings = {
            "semantic": StageTiming(len(semantic[i]), batch_seconds["semantic"]),
            "coarse": StageTiming(coarse[i].shape[1], batch_seconds["coarse"]),
            "fine": StageTiming(fine[i].shape[1], batch_seconds["fine"]),
            "decode": StageTiming(len(audio[i]), decode_seconds[i]),
        }
        tokens = (semantic[i], coarse[i], fine[i])
        options_i = replace(options, seed=seed)
        takes.append(engine._generation(text, voice, seed, options_i, tokens, audio[i], timings))
    return takes


# ---- benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TakesRate:
    """One row of the takes benchmark."""

    batch: int  # takes per batch (B)
    seconds: float  # wall time of one batch (best of the repeats)
    takes_per_minute: float
    audio_seconds: float  # audio made per batch (all takes)
    sequential_seconds: float | None  # the same seeds one by one with Engine.generate (best)
    exact: bool | None  # batched tokens == sequential tokens (None if not compared)

    @property
    def speedup(self) -> float | None:
        if not self.sequential_seconds:
            return None
        return self.sequential_seconds / self.seconds


def _same_tokens(a: Generation, b: Generation) -> bool:
    return (
        np.array_equal(a.semantic, b.semantic)
        and np.array_equal(a.coarse, b.coarse)
        and np.array_equal(a.fine, b.fine)
    )


def measure_takes_per_minute(
    engine: Engine,
    text: str = "Hello, my name is Suno. And, uh, I like pizza.",
    *,
    batches: Sequence[int] = (1, 2, 4),
    voice: VoiceArg = None,
    options: GenerationOptions | None = None,
    seed: int = 0,
    repeats: int = 1,
    sequential: bool = True,
    clock: Literal["wall", "cpu"] = "wall",
) -> list[TakesRate]:
    """Takes per minute for each batch size B (seeds seed..seed+B-1), end to end
    (all stages and the decode, models already loaded).

    With `sequential` the same B seeds also run one by one through
    `Engine.generate`, to give the speedup and check that the tokens match.
    A warm-up take runs first; pass `options` with a `max_duration_s` to bound
    the work (the default stops after 3 s of audio). `clock="cpu"` times with
    this process's CPU time instead of the wall clock: steadier on a machine
    others are using, and equal to wall time when torch runs one thread.
    """
    now = time.perf_counter if clock == "wall" else time.process_time
    options = options or GenerationOptions(max_duration_s=3.0)
    engine.load()
    engine.generate(text, voice, replace(options, seed=seed))  # warm-up: allocations, caches
    rows = []
    for n in batches:
        seeds = list(range(seed, seed + n))
        batch_times, seq_times, exact = [], [], None
        for _ in range(max(1, repeats)):  # alternated, so a busy spell hits both alike
            start = now()
            takes = generate_takes(engine, text, voice, options, seeds=seeds)
            batch_times.append(now() - start)
            if sequential:
                start = now()
                singles = [engine.generate(text, voice, replace(options, seed=s)) for s in seeds]
                seq_times.append(now() - start)
                same = all(_same_tokens(a, b) for a, b in zip(takes, singles, strict=True))
                exact = same if exact is None else exact and same
        batch_s = min(batch_times)
        seq_s = min(seq_times) if seq_times else None
        rows.append(
            TakesRate(
                batch=n,
                seconds=batch_s,
                takes_per_minute=60.0 * n / batch_s,
                audio_seconds=sum(t.duration_s for t in takes),
                sequential_seconds=seq_s,
                exact=exact,
            )
        )
    return rows


def format_takes_table(rows: Sequence[TakesRate]) -> str:
    """The benchmark's rows as a plain-text table."""
    lines = ["   B  batch s  takes/min  audio s  sequential s  speedup  exact"]
    for r in rows:
        seq = (
            f"{r.sequential_seconds:12.2f}" if r.sequential_seconds is not None else " " * 11 + "—"
        )
        speed = f"{r.speedup:7.2f}x" if r.speedup is not None else " " * 7 + "—"
        exact = "—" if r.exact is None else ("yes" if r.exact else "NO")
        lines.append(
            f"{r.batch:4d} {r.seconds:8.2f} {r.takes_per_minute:10.1f} {r.audio_seconds:8.2f} "
            f"{seq} {speed}  {exact}"
        )
    return "\n".join(lines)
