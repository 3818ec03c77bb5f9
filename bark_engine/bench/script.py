"""A fixed-voice script rendered at several batch sizes: the benchmark's script rows.

The script has segments of one length (random weights make EOS arbitrary, so
each segment's semantic stage runs a fixed number of tokens), rendered by
`ScriptRenderer` as `render` renders it: all segments at batch 1, then at
each other batch size, with the time to the first segment's audio beside the
total. Every batch size must give the same audio, sample for sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.script import ScriptOptions

from ..config import SEMANTIC_RATE_HZ
from ..options import GenerationOptions
from ..scripts.render import RenderOptions, ScriptRenderer

if TYPE_CHECKING:
    from ..engine import Engine

SEGMENT_SECONDS = 12.0  # audio per segment: near Bark's ~13 s segments
LINES = (
    "The lighthouse keeper climbed the stairs every evening at dusk.",
    "He polished the great lens until it shone like a second moon.",
    "Ships passed far out at sea, and none of them ever stopped.",
    "One winter night a small boat drifted toward the rocks.",
    "He ran down the stairs with a lantern, shouting into the wind.",
)


@dataclass(frozen=True)
class ScriptRate:
    """One script render."""

    batch: int
    segments: int
    total_s: float
    first_audio_s: float
    audio_s: float
    same_audio: bool  # equal to the batch-1 render, sample for sample

    @property
    def audio_per_second(self) -> float:
        return self.audio_s / self.total_s


def measure_script(engine: Engine, seconds: float, *, batches: Sequence[int], voice: str | None,
                   options: GenerationOptions, seed: int = 0,
                   segment_seconds: float = SEGMENT_SECONDS) -> list[ScriptRate]:
    """Render a script of about `seconds` of audio (segments of at most
    `segment_seconds`) at batch 1 and at each of `batches`."""
    n = max(1, math.ceil(seconds / segment_seconds))
    text = "\n\n".join(LINES[i % len(LINES)] for i in range(n))
    script = parse_script(text, ScriptOptions(), engine.count_tokens)
    steps = max(1, round(seconds / n * SEMANTIC_RATE_HZ))
    generation = GenerationOptions(**{**options.__dict__, "max_semantic_steps": steps,
                                      "allow_early_stop": False, "max_duration_s": None})
    engine.load()
    engine.generate(LINES[0], voice, GenerationOptions(max_duration_s=0.3, seed=seed))  # warm-up
    rows, reference = [], None
    for b in [1, *[b for b in batches if b != 1]]:
        out = ScriptRenderer(engine, RenderOptions(generation=generation, seed=seed,
                                                   default_voice=voice, batch=b)).render(script)
        if reference is None:
            reference = out.audio
        rows.append(ScriptRate(b, len(script.segments), out.total_s, out.first_audio_s,
                               out.duration_s, bool(np.array_equal(out.audio, reference))))
    return rows


def format_script_table(rows: Sequence[ScriptRate]) -> str:
    lines = ["   B  segments  total s  first audio s  audio s  audio s/s  vs B=1  same audio"]
    base = rows[0]
    for r in rows:
        lines.append(
            f"{r.batch:4d} {r.segments:9d} {r.total_s:8.1f} {r.first_audio_s:14.1f} "
            f"{r.audio_s:8.1f} {r.audio_per_second:10.3f} {base.total_s / r.total_s:6.2f}x"
            f"  {'yes' if r.same_audio else 'NO'}"
        )
    return "\n".join(lines)
