"""Semantic stage: text ids (+ a voice's semantic history) → semantic tokens at 49.9 Hz.

The context is 256 text ids, 256 history tokens and the infer token; the model
sums the text and history embeddings (merge context), so it sees 257 positions,
prefilled once into a static KV cache. Each step then feeds one token.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

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
from ..model.gpt import GPT, use_decode_layout
from .common import OnStep, check_cancel, model_device, token_array
from .sampling import draw, filter_logits, is_greedy, probabilities

EOS = SEMANTIC_PAD_TOKEN  # the EOS logit sits right after the 10,000 semantic tokens
CONTEXT_POSITIONS = MAX_TEXT_TOKENS + 1  # text+history summed, then the infer token
# The last generated token is never fed back, so one more step than free positions.
STEP_LIMIT = CONTEXT_WINDOW - CONTEXT_POSITIONS + 1  # 768


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


@torch.inference_mode()
def generate_semantic(
    model: GPT,
    text_ids: Sequence[int],
    history_semantic: np.ndarray | None,
    *,
    temperature: float | None,
    top_k: int | None = None,
    top_p: float | None = None,
    min_eos_p: float | None = 0.2,
    max_duration_s: float | None = None,
    max_steps: int = MAX_SEMANTIC_STEPS,
    allow_early_stop: bool = True,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Semantic tokens (T,) int64 in [0, 10000), without the EOS.

    Stops when EOS is drawn, when the temperature-scaled EOS probability reaches
    `min_eos_p`, right after the token that takes the audio past
    `max_duration_s`, or after `max_steps` tokens. Greedy (temperature 0/None)
    stops iff the argmax is EOS. `on_step(done, bound)` runs after every token;
    a set `cancel` raises `Cancelled` before the next one.
    """
    if not 1 <= max_steps <= STEP_LIMIT:
        raise BadInputError(f"max_steps must be in 1..{STEP_LIMIT}, got {max_steps}")
    history = token_array(
        history_semantic, name="semantic history", ndim=1, upper=SEMANTIC_VOCAB_SIZE
    )
    device = model_device(model)
    context = torch.from_numpy(semantic_context(text_ids, history)).to(device)[None]  # (1, 513)
    total = step_bound(max_steps, max_duration_s)
    n_candidates = SEMANTIC_VOCAB_SIZE + 1 if allow_early_stop else SEMANTIC_VOCAB_SIZE
    greedy = is_greedy(temperature)
    eos_by_prob = allow_early_stop and not greedy and min_eos_p is not None

    use_decode_layout(model)
    vocab = slice(0, n_candidates)  # the 10,000 semantic tokens, then EOS
    tokens = torch.empty(total, dtype=torch.long, device=device)  # preallocated output
    eos = torch.tensor(EOS, device=device)
    cache = model.new_cache(1)
    logits = model(context, cache, merge_context=True, vocab=vocab)  # (1, 1, n_candidates)
    n = 0
    while n < total:
        check_cancel(cancel, "semantic")
        relevant = filter_logits(logits[0, 0], top_k, top_p)  # (n_candidates,)
        if greedy:
            token = relevant.argmax()
        else:
            probs = probabilities(relevant, temperature)
            token = draw(probs, generator)
            if eos_by_prob:
                token = torch.where(probs[EOS] >= min_eos_p, eos, token)
        if allow_early_stop and token.item() == EOS:  # the one host sync per step
            break
        tokens[n] = token
        n += 1
        if on_step is not None:
            on_step(n, total)
        if n < total:
            logits = model(tokens[n - 1 : n].view(1, 1), cache, vocab=vocab)
    return tokens[:n].cpu().numpy()
