"""Takes per minute at several batch sizes: the benchmark's batching rows.

B takes of one text with seeds seed..seed+B-1 go through `Engine.generate_takes`
as one batch; with `sequential` the same seeds also run one by one, to give
the speedup and to check that the tokens match.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..options import GenerationOptions
from .timed import timed_calls

if TYPE_CHECKING:
    from ..engine import Engine, Generation, VoiceArg


@dataclass(frozen=True)
class TakesRate:
    """One row of the takes benchmark."""

    batch: int  # takes per batch (B)
    seconds: float  # wall time of one batch (best of the repeats)
    takes_per_minute: float
    audio_seconds: float  # audio made per batch (all takes)
    sequential_seconds: float | None  # the same seeds one by one with Engine.generate (best)
    exact: bool | None  # batched tokens == sequential tokens (None if not compared)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # the best batch's stages
    semantic_steps: int = 0  # decode steps of its semantic stage (its longest row)
    semantic_step_s: float | None = None  # the best batch's mean one-token step call, s

    @property
    def speedup(self) -> float | None:
        if not self.sequential_seconds:
            return None
        return self.sequential_seconds / self.seconds

    @property
    def audio_per_second(self) -> float:
        return self.audio_seconds / self.seconds

    @property
    def semantic_step_ms(self) -> float | None:
        """Wall time of one semantic decode step of the batch (B tokens), in ms: the
        stepper's one-token calls alone where they were timed (a batch's prefill grows
        with B and its rows are drawn one by one; neither is a step), else the whole
        stage over its steps."""
        if self.semantic_step_s is not None:
            return 1e3 * self.semantic_step_s
        if not self.semantic_steps or "semantic" not in self.stage_seconds:
            return None
        return 1e3 * self.stage_seconds["semantic"] / self.semantic_steps


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
        batch_times, seq_times, exact, best, best_steps = [], [], None, None, {}
        for _ in range(max(1, repeats)):  # alternated, so a busy spell hits both alike
            with timed_calls(engine.stage_models().semantic, engine.device) as calls:
                start = now()
                takes = engine.generate_takes(text, voice, options, seeds=seeds)
                batch_times.append(now() - start)
            if best is None or batch_times[-1] <= min(batch_times):
                best, best_steps = takes, calls
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
                audio_seconds=sum(t.duration_s for t in best),
                sequential_seconds=seq_s,
                exact=exact,
                stage_seconds={k: t.seconds for k, t in best[0].timings.items()
                               if k != "decode"},
                semantic_steps=max(len(t.semantic) for t in best),
                semantic_step_s=(best_steps["steps"] / best_steps["steps_n"]
                                 if best_steps.get("steps_n") else None),
            )
        )
    return rows


def format_takes_table(rows: Sequence[TakesRate]) -> str:
    """The benchmark's rows as a plain-text table: per batch size, the batch's time,
    takes per minute, audio seconds per wall second, per-take throughput against
    B = 1, one semantic step's time against B = 1's, and the sequential check."""
    base = next((r for r in rows if r.batch == 1), None)
    lines = ["   B  batch s  takes/min  audio s/s  per take vs B=1  sem step ms (vs B=1)"
             "  sequential s  exact"]
    for r in rows:
        per_take = f"{r.takes_per_minute / base.takes_per_minute:14.2f}x" if base else " " * 14 + "—"
        step = r.semantic_step_ms
        rel = (f" ({step / base.semantic_step_ms:.2f}x)" if base and base.semantic_step_ms and step
               else "")
        step_s = f"{step:8.1f}{rel:<9}" if step else " " * 8 + "—" + " " * 8
        seq = (
            f"{r.sequential_seconds:12.2f}" if r.sequential_seconds is not None else " " * 11 + "—"
        )
        exact = "—" if r.exact is None else ("yes" if r.exact else "NO")
        lines.append(
            f"{r.batch:4d} {r.seconds:8.2f} {r.takes_per_minute:10.2f} {r.audio_per_second:10.3f} "
            f"{per_take}  {step_s}     {seq}  {exact}"
        )
    return "\n".join(lines)
