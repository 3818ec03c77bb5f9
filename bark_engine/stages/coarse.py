"""Coarse stage: semantic tokens → the first two EnCodec codebooks at 75 Hz.

Tokens are frame-interleaved (codebook 0, codebook 1, ...), ~3.006 per
semantic token. Generation runs in sliding windows of 60 steps; each window
reads up to 256 semantic tokens, the infer token and the last 630 coarse
tokens, then decodes one token per step.

One loop serves B >= 1 rows, each with its own semantic tokens, voice,
sampling settings and random stream. The window schedule depends only on the
step, so windows line up across rows; a row whose (shorter) output is done
leaves the batch. A window whose start does not move (no voice, or a short
history: neither the semantic window nor the coarse history has begun to
slide) reads the previous window's ids plus the tokens made since, at the
same positions, so it continues from the KV cache instead of prefilling again.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

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
from ..model.gpt import GPT
from ..model.steps import Feed, Stepper
from ..model.strategy import stepper_for
from .common import OnStep, check_batch, check_cancel, model_device, token_array
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


def check_window_args(max_coarse_history: int, window_steps: int) -> None:
    if not 60 <= max_coarse_history <= 630:
        raise BadInputError("max_coarse_history must be in 60..630")
    if window_steps < 1 or max_coarse_history + window_steps > CONTEXT_WINDOW - 256:
        raise BadInputError("window_steps must be ≥ 1 and fit the context with the history")


VOCAB = slice(SEMANTIC_VOCAB_SIZE, SEMANTIC_VOCAB_SIZE + N_COARSE_CODEBOOKS * CODEBOOK_SIZE)


@dataclass(frozen=True)
class CoarseRow:
    """One row of the coarse stage: its semantic tokens, its voice and how to sample."""

    semantic: np.ndarray  # (S,) semantic tokens of this row
    history_semantic: np.ndarray | None  # the voice's prompt (both or neither)
    history_coarse: np.ndarray | None  # (2, T) codes
    temperature: float | None
    top_k: int | None = None
    top_p: float | None = None
    generator: torch.Generator | None = None

    def plan(self, max_coarse_history: int) -> CoarsePlan:
        semantic = token_array(self.semantic, name="semantic tokens", ndim=1,
                               upper=SEMANTIC_VOCAB_SIZE)
        hist_sem = token_array(self.history_semantic, name="semantic history", ndim=1,
                               upper=SEMANTIC_VOCAB_SIZE)
        hist_coarse = token_array(self.history_coarse, name="coarse history", ndim=2,
                                  upper=CODEBOOK_SIZE, rows=N_COARSE_CODEBOOKS)
        return plan_coarse(semantic, hist_sem, hist_coarse, max_coarse_history)


@dataclass
class _Row:
    """A row's progress through its windows."""

    spec: CoarseRow
    plan: CoarsePlan
    semantic: torch.Tensor  # the plan's semantic ids on the model's device
    coarse: torch.Tensor  # (C_hist + n_steps,) history, then the output as it is made
    window: tuple[int, int] | None = None  # (semantic start, coarse start) of the cached window
    fed: int = 0  # coarse ids [0, fed) of `coarse` that the cache holds
    logits: torch.Tensor | None = field(default=None, repr=False)

    @property
    def n_hist(self) -> int:
        return len(self.plan.coarse_history)


def _window_feed(row: _Row, slot: int, n_step: int, max_coarse_history: int, infer: torch.Tensor,
                 continue_windows: bool) -> Feed:
    """The ids the row's next window adds to its cache slot: the whole window, or,
    when its start has not moved, only the tokens made since it was cached."""
    plan = row.plan
    semantic_idx = plan.base_semantic_idx + int(round(n_step / RATIO))
    sem_start = max(0, semantic_idx - plan.max_semantic_history)
    end = row.n_hist + n_step  # coarse tokens known so far
    coarse_start = max(0, end - max_coarse_history)
    if continue_windows and row.window == (sem_start, 0) and coarse_start == 0:
        ids = row.coarse[row.fed : end]  # the previous window's ids, then these: same positions
        row.fed = end
        return Feed(slot, ids)
    row.window, row.fed = (sem_start, coarse_start), end
    x_in = torch.cat([window_semantic(row.semantic, semantic_idx, plan.max_semantic_history),
                      infer, row.coarse[coarse_start:end]])  # (256 + 1 + ≤630,)
    return Feed(slot, x_in, fresh=True)


@torch.inference_mode()
def coarse_rows(
    stepper: Stepper,
    rows: Sequence[CoarseRow],
    *,
    max_coarse_history: int = MAX_COARSE_HISTORY,
    window_steps: int = COARSE_WINDOW_STEPS,
    continue_windows: bool = True,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> list[np.ndarray]:
    """Coarse codes of each row: (2, n_b) int64 in [0, 1024), n_b = floor(len(semantic)·1.503).

    Even steps draw codebook 0 (ids 10,000–11,023), odd steps codebook 1
    (11,024–12,047). Temperature 0/None is argmax. An empty `semantic` gives
    an empty (2, 0) result. `on_step(done, total)` counts the coarse tokens of
    all rows against their planned sum. `continue_windows=False` prefills
    every window anew (tests compare the two).
    """
    check_batch(len(rows))
    check_window_args(max_coarse_history, window_steps)
    device = model_device(stepper.model)
    state = []
    for spec in rows:
        plan = spec.plan(max_coarse_history)
        coarse = torch.empty(len(plan.coarse_history) + plan.n_steps, dtype=torch.long,
                             device=device)
        coarse[: len(plan.coarse_history)] = torch.from_numpy(plan.coarse_history).to(device)
        state.append(_Row(spec, plan, torch.from_numpy(plan.semantic).to(device), coarse))
    infer = torch.tensor([COARSE_INFER_TOKEN], device=device)
    total = sum(r.plan.n_steps for r in state)
    cache = stepper.new_cache(len(rows))
    n_step = done = 0
    longest = max(r.plan.n_steps for r in state)
    while n_step < longest:
        check_cancel(cancel, "coarse")
        live = [b for b, r in enumerate(state) if n_step < r.plan.n_steps]
        feeds = [_window_feed(state[b], b, n_step, max_coarse_history, infer, continue_windows)
                 for b in live]
        for b, logits in zip(live, stepper.advance(cache, feeds, VOCAB), strict=True):
            state[b].logits = logits  # (2048,): both codebooks
        n_window = {b: min(window_steps, state[b].plan.n_steps - n_step) for b in live}
        for i in range(max(n_window.values())):
            if i:
                check_cancel(cancel, "coarse")
            start = (n_step % N_COARSE_CODEBOOKS) * CODEBOOK_SIZE  # within VOCAB
            going = [b for b in live if i < n_window[b]]
            for b in going:
                row = state[b]
                relevant = row.logits[start : start + CODEBOOK_SIZE]  # this step's codebook
                token = sample(relevant, row.spec.temperature, row.spec.generator,
                               row.spec.top_k, row.spec.top_p)
                row.coarse[row.n_hist + n_step] = token + (SEMANTIC_VOCAB_SIZE + start)
            n_step += 1
            done += len(going)
            if on_step is not None:
                on_step(done, total)
            more = [b for b in going if i + 1 < n_window[b]]
            if more:
                feeds = []
                for b in more:
                    row = state[b]
                    feeds.append(Feed(b, row.coarse[row.fed : row.fed + 1]))
                    row.fed += 1
                for b, logits in zip(more, stepper.advance(cache, feeds, VOCAB), strict=True):
                    state[b].logits = logits
    return [unflatten_coarse(r.coarse[r.n_hist :].cpu().numpy()) for r in state]


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
    continue_windows: bool = True,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
    stepper: Stepper | None = None,
) -> np.ndarray:
    """One row of `coarse_rows`: coarse codes (2, n) int64 in [0, 1024)."""
    row = CoarseRow(semantic, history_semantic, history_coarse, temperature, top_k, top_p,
                    generator)
    return coarse_rows(stepper or stepper_for(model), [row], max_coarse_history=max_coarse_history,
                       window_steps=window_steps, continue_windows=continue_windows,
                       on_step=on_step, cancel=cancel)[0]
