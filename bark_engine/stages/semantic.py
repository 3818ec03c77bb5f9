"""Semantic stage: text ids (+ a voice's semantic history) → semantic tokens at 49.9 Hz.

The context is 256 text ids, 256 history tokens and the infer token; the model
sums the text and history embeddings (merge context), so it sees 257 positions,
prefilled once into a KV cache. Each step then feeds one token.

One loop serves B >= 1 rows: every row has its own text, history, sampling
settings, random stream and stopping point. The context is always 513 ids, so
different texts batch directly; a row that stops leaves the batch and the
others go on. A row's tokens do not depend on the other rows (`model.steps`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..config import (
    CONTEXT_WINDOW,
    MAX_SEMANTIC_STEPS,
    MAX_TEXT_TOKENS,
    SEMANTIC_HISTORY_LEN,
    SEMANTIC_INFER_TOKEN,
    SEMANTIC_PAD_TOKEN,
    SEMANTIC_RATE_HZ,
    SEMANTIC_VOCAB_SIZE,
    TEXT_ENCODING_OFFSET,
    TEXT_PAD_TOKEN,
)
from ..errors import BadInputError
from ..model.gpt import GPT
from ..model.steps import Feed, Stepper
from ..model.strategy import stepper_for
from ..options import DEFAULT_MIN_EOS_P
from .common import OnStep, check_batch, check_cancel, model_device, token_array
from .sampling import draw, filter_logits, is_greedy, probabilities

EOS = SEMANTIC_PAD_TOKEN  # the EOS logit sits right after the 10,000 semantic tokens
CONTEXT_POSITIONS = MAX_TEXT_TOKENS + 1  # text+history summed, then the infer token
# The last generated token is never fed back, so one more step than free positions.
STEP_LIMIT = CONTEXT_WINDOW - CONTEXT_POSITIONS + 1  # 768
VOCAB = slice(0, SEMANTIC_VOCAB_SIZE + 1)  # the logits a row samples from: tokens, then EOS


def semantic_context(text_ids: Sequence[int], history: np.ndarray | None) -> np.ndarray:
    """The 513 input ids (256 text + 256 history + infer) as int64.

    Text ids are WordPiece ids without the offset; longer texts are cut to 256
    (the caller decides whether to refuse them first).
    """
    text = np.asarray(text_ids, dtype=np.int64)[:MAX_TEXT_TOKENS] + TEXT_ENCODING_OFFSET
    text = np.pad(text, (0, MAX_TEXT_TOKENS - len(text)), constant_values=TEXT_PAD_TOKEN)
    if history is None:
        hist = np.full(SEMANTIC_HISTORY_LEN, SEMANTIC_PAD_TOKEN, dtype=np.int64)
    else:
        hist = history[-SEMANTIC_HISTORY_LEN:]
        hist = np.pad(hist, (0, SEMANTIC_HISTORY_LEN - len(hist)), constant_values=SEMANTIC_PAD_TOKEN)
    return np.concatenate([text, hist, [SEMANTIC_INFER_TOKEN]]).astype(np.int64)


def step_bound(max_steps: int, max_duration_s: float | None) -> int:
    """How many tokens the stage can make at most: the step cap, or fewer when the
    duration limit is crossed earlier.

    The duration is accumulated one 1/49.9 s token at a time, exactly as the
    original does, so float rounding stops us on the same token it stops on.
    """
    if max_duration_s is None:
        return max_steps
    duration = 0.0
    for n in range(1, max_steps + 1):
        duration += 1 / SEMANTIC_RATE_HZ
        if duration > max_duration_s:
            return n
    return max_steps


@dataclass(frozen=True)
class SemanticRow:
    """One row of the semantic stage: what to say, how to sample, when to stop."""

    text_ids: Sequence[int]
    history: np.ndarray | None  # the voice's semantic tokens, None = no voice
    temperature: float | None
    top_k: int | None = None
    top_p: float | None = None
    min_eos_p: float | None = DEFAULT_MIN_EOS_P
    max_duration_s: float | None = None
    max_steps: int = MAX_SEMANTIC_STEPS
    allow_early_stop: bool = True
    generator: torch.Generator | None = None

    @property
    def bound(self) -> int:
        return step_bound(self.max_steps, self.max_duration_s)

    def checked(self) -> SemanticRow:
        if not 1 <= self.max_steps <= STEP_LIMIT:
            raise BadInputError(f"max_steps must be in 1..{STEP_LIMIT}, got {self.max_steps}")
        token_array(self.history, name="semantic history", ndim=1, upper=SEMANTIC_VOCAB_SIZE)
        return self

    def draw(self, logits: torch.Tensor) -> int:
        """The next token from this row's logits (10,001,), or EOS to stop.

        Greedy (temperature 0/None) stops iff the argmax is EOS; sampling also
        stops once the temperature-scaled EOS probability reaches `min_eos_p`.
        """
        relevant = logits if self.allow_early_stop else logits[:SEMANTIC_VOCAB_SIZE]
        relevant = filter_logits(relevant, self.top_k, self.top_p)
        if is_greedy(self.temperature):
            return int(relevant.argmax())
        probs = probabilities(relevant, self.temperature)
        token = draw(probs, self.generator)  # drawn even when EOS wins below: the stream
        if self.allow_early_stop and self.min_eos_p is not None and probs[EOS] >= self.min_eos_p:
            return EOS  # moves on the same whichever way this step ends
        return int(token)


@torch.inference_mode()
def semantic_rows(
    stepper: Stepper,
    rows: Sequence[SemanticRow],
    *,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> list[np.ndarray]:
    """Semantic tokens of each row: arrays (T_b,) int64 in [0, 10000), without EOS.

    A row stops when EOS is drawn (or, sampling, when the EOS probability
    reaches `min_eos_p`), right after the token that takes its audio past
    `max_duration_s`, or after `max_steps` tokens. `on_step(done, total)`
    counts the tokens of all rows against the sum of their bounds; a set
    `cancel` raises `Cancelled` before the next step.
    """
    check_batch(len(rows))
    rows = [row.checked() for row in rows]
    device = model_device(stepper.model)
    bounds = [row.bound for row in rows]
    total = sum(bounds)
    tokens: list[list[int]] = [[] for _ in rows]
    cache = stepper.new_cache(len(rows))
    feeds = [
        Feed(b, torch.from_numpy(semantic_context(row.text_ids, row.history)).to(device),
             fresh=True, merge_context=True)
        for b, row in enumerate(rows)
    ]
    active = list(range(len(rows)))
    logits = stepper.advance(cache, feeds, VOCAB)  # (B, 10001)
    done = 0
    while active:
        check_cancel(cancel, "semantic")
        going, before = [], done
        for i, b in enumerate(active):
            token = rows[b].draw(logits[i])
            if token == EOS and rows[b].allow_early_stop:
                continue
            tokens[b].append(token)
            done += 1
            if len(tokens[b]) < bounds[b]:
                going.append(b)
        if on_step is not None and done > before:
            on_step(done, total)
        active = going
        if active:
            feeds = [Feed(b, torch.tensor([tokens[b][-1]], device=device)) for b in active]
            logits = stepper.advance(cache, feeds, VOCAB)
    return [np.asarray(t, dtype=np.int64) for t in tokens]


def generate_semantic(
    model: GPT,
    text_ids: Sequence[int],
    history_semantic: np.ndarray | None,
    *,
    temperature: float | None,
    top_k: int | None = None,
    top_p: float | None = None,
    min_eos_p: float | None = DEFAULT_MIN_EOS_P,
    max_duration_s: float | None = None,
    max_steps: int = MAX_SEMANTIC_STEPS,
    allow_early_stop: bool = True,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
    stepper: Stepper | None = None,
) -> np.ndarray:
    """One row of `semantic_rows`: semantic tokens (T,) int64 in [0, 10000)."""
    row = SemanticRow(text_ids, history_semantic, temperature, top_k, top_p, min_eos_p,
                      max_duration_s, max_steps, allow_early_stop, generator)
    return semantic_rows(stepper or stepper_for(model), [row], on_step=on_step, cancel=cancel)[0]
