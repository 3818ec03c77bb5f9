"""Coarse stage: semantic tokens → the first two EnCodec codebooks at 75 Hz.

Tokens are frame-interleaved (codebook 0, codebook 1, ...), ~3.006 per
semantic token. Generation runs in sliding windows of 60 steps; each window
re-reads up to 256 semantic tokens, the infer token and the last 630 coarse
tokens, is prefilled into a KV cache that is allocated once per call and reset
per window, then decodes one token per step.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..config import (
    COARSE_INFER_TOKEN,
    COARSE_SEMANTIC_PAD_TOKEN,
    COARSE_SEMANTIC_WINDOW,
    COARSE_WINDOW_STEPS,
    CODEBOOK_SIZE,
    CONTEXT_WINDOW,
    MAX_COARSE_HISTORY,
    N_COARSE_CODEBOOKS,
    SEMANTIC_TO_COARSE_RATIO,
    SEMANTIC_VOCAB_SIZE,
)
from ..errors import BadInputError
from ..model.gpt import GPT, use_decode_layout
from .common import OnStep, check_cancel, model_device, token_array
from .sampling import sample

RATIO = SEMANTIC_TO_COARSE_RATIO  # coarse tokens (both codebooks) per semantic token


@dataclass(frozen=True)
class CoarsePlan:
    """Everything the window loop needs, worked out from the inputs once."""

    semantic: np.ndarray  # (S_hist + S,) int64: trimmed semantic history, then the new tokens
    coarse_history: np.ndarray  # (C_hist,) int64: flattened, offset coarse history
    base_semantic_idx: int  # where the new semantic tokens start in `semantic`
    n_steps: int  # coarse tokens to generate (even)
    max_semantic_history: int  # semantic tokens of history a window may look back


def flatten_coarse(coarse: np.ndarray) -> np.ndarray:
    """(2, T) codes → (2T,) model ids: frame-interleaved, codebook n offset by
    10,000 + n·1024."""
    offsets = SEMANTIC_VOCAB_SIZE + CODEBOOK_SIZE * np.arange(coarse.shape[0])[:, None]
    return (coarse + offsets).T.reshape(-1)


def plan_coarse(
    semantic: np.ndarray,
    history_semantic: np.ndarray | None,
    history_coarse: np.ndarray | None,
    max_coarse_history: int = MAX_COARSE_HISTORY,
) -> CoarsePlan:
    """Trim the histories to matching lengths and size the output, as the original does."""
    max_semantic_history = math.floor(max_coarse_history / RATIO)
    if history_semantic is not None and history_coarse is not None:
        coarse_flat = flatten_coarse(history_coarse)
        n_sem = min(
            max_semantic_history,
            len(history_semantic) - len(history_semantic) % 2,
            math.floor(len(coarse_flat) / RATIO),
        )
        n_coarse = int(round(n_sem * RATIO))
        # `[-n:]` as in the original: n = 0 keeps the whole (tiny) history.
        sem_hist = history_semantic[-n_sem:]
        coarse_hist = coarse_flat[-n_coarse:]
        coarse_hist = coarse_hist[:-2]  # the original's time-alignment trim
    elif history_semantic is None and history_coarse is None:
        sem_hist = np.zeros(0, dtype=np.int64)
        coarse_hist = np.zeros(0, dtype=np.int64)
    else:
        raise BadInputError("coarse history needs both the semantic and the coarse prompt")
    n_steps = int(round(math.floor(len(semantic) * RATIO / N_COARSE_CODEBOOKS) * N_COARSE_CODEBOOKS))
    return CoarsePlan(
        semantic=np.concatenate([sem_hist, semantic]).astype(np.int64),
        coarse_history=coarse_hist.astype(np.int64),
        base_semantic_idx=len(sem_hist),
        n_steps=n_steps,
        max_semantic_history=max_semantic_history,
    )


def window_semantic(
    plan_semantic: torch.Tensor, semantic_idx: int, max_semantic_history: int
) -> torch.Tensor:
    """The 256 semantic ids a window reads, right-padded with 12,048: (256,)."""
    ids = plan_semantic[max(0, semantic_idx - max_semantic_history) :][:COARSE_SEMANTIC_WINDOW]
    pad = ids.new_full((COARSE_SEMANTIC_WINDOW - len(ids),), COARSE_SEMANTIC_PAD_TOKEN)
    return torch.cat([ids, pad])


def unflatten_coarse(flat: np.ndarray) -> np.ndarray:
    """(2T,) model ids → (2, T) codes in [0, 1024)."""
    codes = flat.reshape(-1, N_COARSE_CODEBOOKS).T - SEMANTIC_VOCAB_SIZE
    return codes - CODEBOOK_SIZE * np.arange(N_COARSE_CODEBOOKS)[:, None]


@torch.inference_mode()
def generate_coarse(
    model: GPT,
    semantic: np.ndarray,
    history_semantic: np.ndarray | None,
    history_coarse: np.ndarray | None,
    *,
    temperature: float | None,
    top_k: int | None = None,
    top_p: float | None = None,
    max_coarse_history: int = MAX_COARSE_HISTORY,
    window_steps: int = COARSE_WINDOW_STEPS,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Coarse codes (2, n) int64 in [0, 1024), n = floor(len(semantic)·1.503).

    Even steps draw codebook 0 (ids 10,000–11,023), odd steps codebook 1
    (11,024–12,047). Temperature 0/None is argmax. An empty `semantic` gives
    an empty (2, 0) result.
    """
    if not 60 <= max_coarse_history <= 630:
        raise BadInputError("max_coarse_history must be in 60..630")
    if window_steps < 1 or max_coarse_history + window_steps > CONTEXT_WINDOW - 256:
        raise BadInputError("window_steps must be ≥ 1 and fit the context with the history")
    semantic = token_array(semantic, name="semantic tokens", ndim=1, upper=SEMANTIC_VOCAB_SIZE)
    history_semantic = token_array(
        history_semantic, name="semantic history", ndim=1, upper=SEMANTIC_VOCAB_SIZE
    )
    history_coarse = token_array(
        history_coarse, name="coarse history", ndim=2, upper=CODEBOOK_SIZE, rows=N_COARSE_CODEBOOKS
    )
    plan = plan_coarse(semantic, history_semantic, history_coarse, max_coarse_history)
    device = model_device(model)
    full_semantic = torch.from_numpy(plan.semantic).to(device)
    n_hist, n_steps = len(plan.coarse_history), plan.n_steps
    coarse = torch.empty(n_hist + n_steps, dtype=torch.long, device=device)  # history, then output
    coarse[:n_hist] = torch.from_numpy(plan.coarse_history).to(device)
    infer = torch.tensor([COARSE_INFER_TOKEN], device=device)
    use_decode_layout(model)
    vocab = slice(SEMANTIC_VOCAB_SIZE, SEMANTIC_VOCAB_SIZE + N_COARSE_CODEBOOKS * CODEBOOK_SIZE)
    cache = model.new_cache(1)

    n_step = 0
    while n_step < n_steps:
        check_cancel(cancel, "coarse")
        semantic_idx = plan.base_semantic_idx + int(round(n_step / RATIO))
        end = n_hist + n_step  # coarse tokens known so far
        x_in = torch.cat(
            [
                window_semantic(full_semantic, semantic_idx, plan.max_semantic_history),
                infer,
                coarse[max(0, end - max_coarse_history) : end],
            ]
        )  # (256 + 1 + ≤630,)
        cache.reset()
        logits = model(x_in[None], cache, vocab=vocab)  # (1, 1, 2048): both codebooks
        n_window = min(window_steps, n_steps - n_step)
        for i in range(n_window):
            if i:
                check_cancel(cancel, "coarse")
            start = (n_step % N_COARSE_CODEBOOKS) * CODEBOOK_SIZE  # within `vocab`
            relevant = logits[0, 0, start : start + CODEBOOK_SIZE]  # (1024,) this step's codebook
            pos = n_hist + n_step
            token = sample(relevant, temperature, generator, top_k, top_p)
            coarse[pos] = token + (SEMANTIC_VOCAB_SIZE + start)
            n_step += 1
            if on_step is not None:
                on_step(n_step, n_steps)
            if i + 1 < n_window:
                logits = model(coarse[pos : pos + 1].view(1, 1), cache, vocab=vocab)
    return unflatten_coarse(coarse[n_hist:].cpu().numpy())
