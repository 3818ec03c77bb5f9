"""Fine stage: the coarse codebooks → all 8 EnCodec codebooks.

The fine model is non-causal: it sees a whole 1024-frame window and predicts
one codebook (2..7) for every frame at once, given the codebooks below it.
Windows advance by 512 frames, after up to 512 frames of the voice's fine
history. Each window is a view of one buffer, so a codebook written by one
window is already there when the next window reads it, as in the original.

One loop serves B >= 1 rows, each with its own coarse codes, voice,
temperature and random stream: window n of every row that has one goes
through the model together, codebook by codebook.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..config import (
    CODEBOOK_SIZE,
    FINE_MAX_HISTORY,
    FINE_PAD_CODE,
    FINE_STEP,
    FINE_WINDOW,
    N_FINE_CODEBOOKS,
)
from ..errors import BadInputError
from ..model.gpt import FineGPT
from ..model.steps import FineRunner
from ..model.strategy import fine_runner_for
from ..options import DEFAULT_FINE_TEMP
from .common import OnStep, check_batch, check_cancel, model_device, token_array
from .sampling import sample


def fine_input(
    coarse: np.ndarray, history_fine: np.ndarray | None
) -> tuple[np.ndarray, int, int]:
    """The (8, L) buffer: history frames, the coarse rows over pad rows, then pad
    frames up to one full window. Returns (buffer, n_history, n_pad_end)."""
    n_coarse, n_frames = coarse.shape
    pad_rows = np.full((N_FINE_CODEBOOKS - n_coarse, n_frames), FINE_PAD_CODE, dtype=np.int64)
    arr = np.vstack([coarse, pad_rows])  # (8, T)
    n_history = 0
    if history_fine is not None:
        hist = history_fine[:, -FINE_MAX_HISTORY:]
        n_history = hist.shape[1]
        arr = np.hstack([hist, arr])
    n_pad_end = max(0, FINE_WINDOW - arr.shape[1])
    arr = np.pad(arr, ((0, 0), (0, n_pad_end)), constant_values=FINE_PAD_CODE)
    return arr.astype(np.int64), n_history, n_pad_end


def n_windows(n_frames: int, n_history: int) -> int:
    """Windows the loop runs: one, plus one per 512 frames past the first window."""
    past_first = n_frames - (FINE_WINDOW - n_history)
    return max(0, -(-past_first // FINE_STEP)) + 1  # integer ceil


@dataclass(frozen=True)
class FineRow:
    """One row of the fine stage: its coarse codes, its voice and how to sample."""

    coarse: np.ndarray  # (n_coarse ≤ 7, T) codes
    history_fine: np.ndarray | None  # (8, T') the voice's fine prompt
    temperature: float | None = DEFAULT_FINE_TEMP
    generator: torch.Generator | None = None

    def checked(self) -> tuple[np.ndarray, np.ndarray | None]:
        coarse = token_array(self.coarse, name="coarse codes", ndim=2, upper=CODEBOOK_SIZE)
        if not 1 <= coarse.shape[0] < N_FINE_CODEBOOKS:
            raise BadInputError(f"coarse codes need 1..7 rows, got {coarse.shape[0]}")
        history = token_array(self.history_fine, name="fine history", ndim=2,
                              upper=CODEBOOK_SIZE, rows=N_FINE_CODEBOOKS)
        return coarse, history


def fine_passes(n_frames: int, n_coarse: int, n_history: int) -> int:
    """Codebook passes a row makes: windows × (8 − n_coarse)."""
    return n_windows(n_frames, n_history) * (N_FINE_CODEBOOKS - n_coarse)


@torch.inference_mode()
def fine_rows(
    runner: FineRunner,
    rows: Sequence[FineRow],
    *,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> list[np.ndarray]:
    """All codebooks (8, T_b) int64 in [0, 1024) for each row's coarse codes (n_coarse, T_b).

    Temperature 0/None is argmax; any other value (1.0 included) samples.
    `on_step(done, total)` counts codebook passes of all rows together.
    """
    check_batch(len(rows))
    checked = [row.checked() for row in rows]
    n_coarse = checked[0][0].shape[0]
    if any(c.shape[0] != n_coarse for c, _ in checked):
        raise BadInputError("the rows of one fine batch need the same number of coarse codebooks")
    device = model_device(runner.model)
    bufs, spans, loops = [], [], []
    for coarse, history in checked:
        arr, n_history, n_pad_end = fine_input(coarse, history)
        bufs.append(torch.from_numpy(np.ascontiguousarray(arr.T)).to(device))  # (L, 8)
        spans.append((n_history, arr.shape[1] - n_pad_end))
        loops.append(n_windows(coarse.shape[1], n_history))
    total = sum(loops) * (N_FINE_CODEBOOKS - n_coarse)
    done = 0
    for n in range(max(loops)):
        live = [b for b in range(len(rows)) if n < loops[b]]
        windows, rel = [], []
        for b in live:
            length = bufs[b].shape[0]
            start = min(n * FINE_STEP, length - FINE_WINDOW)
            fill = min(spans[b][0] + n * FINE_STEP, length - FINE_STEP)
            windows.append(bufs[b][start : start + FINE_WINDOW])  # (1024, 8) view: writes land
            rel.append(fill - start)  # first window row to (re)write
        for codebook in range(n_coarse, N_FINE_CODEBOOKS):
            check_cancel(cancel, "fine")
            logits = runner.logits(windows, rel, codebook)  # per row (1024 - rel, V)
            for b, window, r, out in zip(live, windows, rel, logits, strict=True):
                relevant = out[:, :CODEBOOK_SIZE]  # (1024 - rel, 1024)
                window[r:, codebook] = sample(relevant, rows[b].temperature, rows[b].generator)
            done += len(live)
            if on_step is not None:
                on_step(done, total)
    return [buf[a:z].T.cpu().numpy() for buf, (a, z) in zip(bufs, spans, strict=True)]


def generate_fine(
    model: FineGPT,
    coarse: np.ndarray,
    history_fine: np.ndarray | None,
    *,
    temperature: float | None = DEFAULT_FINE_TEMP,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
    runner: FineRunner | None = None,
) -> np.ndarray:
    """One row of `fine_rows`: all codebooks (8, T) int64 in [0, 1024)."""
    row = FineRow(coarse, history_fine, temperature, generator)
    return fine_rows(runner or fine_runner_for(model), [row], on_step=on_step, cancel=cancel)[0]
