"""The fixed work both engines do, and the inputs of every stage.

Each stage gets the same inputs in both engines, made deterministically from
the work's seed, so neither engine's (random-weight) output decides what the
next stage does: 256 semantic tokens with early stop off (random weights make
EOS arbitrary), then coarse from 256 fixed semantic tokens (→ 768 coarse
tokens, 384 frames), fine on 384 fixed coarse frames, decode of 384 fixed
fine frames (5.12 s of audio). Sampling at Bark's default temperatures, as
in real use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import (
    COARSE_RATE_HZ,
    CODEBOOK_SIZE,
    N_COARSE_CODEBOOKS,
    N_FINE_CODEBOOKS,
    SEMANTIC_TO_COARSE_RATIO,
    SEMANTIC_VOCAB_SIZE,
)

STAGES = ("semantic", "coarse", "fine", "decode")
TEXT = (
    "Hello, my name is Suno. And, uh — and I like pizza. [laughs] But I also have "
    "other interests such as playing tic tac toe."
)


@dataclass(frozen=True)
class Work:
    """What one benchmark run asks of each engine."""

    semantic_tokens: int = 256
    voice: str | None = "v2/en_speaker_6"  # a preset in the model folder; None = no history
    text: str = TEXT
    text_temp: float = 0.7
    waveform_temp: float = 0.7
    fine_temp: float = 0.5
    seed: int = 0

    @property
    def coarse_frames(self) -> int:
        """Frames the coarse stage makes from `semantic_tokens` semantic tokens."""
        return math.floor(self.semantic_tokens * SEMANTIC_TO_COARSE_RATIO / N_COARSE_CODEBOOKS)

    @property
    def coarse_tokens(self) -> int:
        return self.coarse_frames * N_COARSE_CODEBOOKS

    @property
    def audio_seconds(self) -> float:
        return self.coarse_frames / COARSE_RATE_HZ

    def units(self) -> dict[str, tuple[int, str]]:
        """Per stage: how much it makes and in what unit (for rates)."""
        return {
            "semantic": (self.semantic_tokens, "tok"),
            "coarse": (self.coarse_tokens, "tok"),
            "fine": (self.coarse_frames, "frames"),
            "decode": (self.coarse_frames, "frames"),
        }

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StageInputs:
    """Everything the stages read, identical for both engines."""

    text_ids: list[int]  # WordPiece ids, no offset
    semantic_prompt: np.ndarray | None  # voice history (T,)
    coarse_prompt: np.ndarray | None  # (2, T')
    fine_prompt: np.ndarray | None  # (8, T')
    semantic: np.ndarray  # (semantic_tokens,) input of the coarse stage
    coarse: np.ndarray  # (2, coarse_frames) input of the fine stage
    fine: np.ndarray  # (8, coarse_frames) input of decode


def stage_inputs(work: Work, models: str | Path) -> StageInputs:
    """Tokenize the text and read the voice from `models`; draw the fixed codes from the seed."""
    from ..loading.checkpoints import load_tokenizer
    from ..loading.source import ModelSource
    from ..voices.catalog import resolve_voice_arg

    source = ModelSource(str(models))
    tokenizer = load_tokenizer(source.fetch(source.vocab_relpath))
    text_ids = list(tokenizer.encode(work.text, add_special_tokens=False))
    prompt = resolve_voice_arg(work.voice, source.fetch) if work.voice else None
    rng = np.random.default_rng(work.seed)
    frames = work.coarse_frames
    semantic = rng.integers(0, SEMANTIC_VOCAB_SIZE, work.semantic_tokens, dtype=np.int64)
    coarse = rng.integers(0, CODEBOOK_SIZE, (N_COARSE_CODEBOOKS, frames), dtype=np.int64)
    fine_rest = rng.integers(
        0, CODEBOOK_SIZE, (N_FINE_CODEBOOKS - N_COARSE_CODEBOOKS, frames), dtype=np.int64
    )
    return StageInputs(
        text_ids=text_ids,
        semantic_prompt=None if prompt is None else prompt.semantic,
        coarse_prompt=None if prompt is None else prompt.coarse,
        fine_prompt=None if prompt is None else prompt.fine,
        semantic=semantic,
        coarse=coarse,
        fine=np.vstack([coarse, fine_rest]),
    )
