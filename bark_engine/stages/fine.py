"""Fine stage: the coarse codebooks → all 8 EnCodec codebooks.

The fine model is non-causal: it sees a whole 1024-frame window and predicts
one codebook (2..7) for every frame at once, given the codebooks below it.
Windows advance by 512 frames, after up to 512 frames of the voice's fine
history. Each window is a view of one buffer, so a codebook written by one
window is already there when the next window reads it, as in the original.
"""

from __future__ import annotations

import threading

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
from .common import OnStep, check_cancel, model_device, token_array
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


@torch.inference_mode()
def generate_fine(
    model: FineGPT,
    coarse: np.ndarray,
    history_fine: np.ndarray | None,
    *,
    temperature: float | None = 0.5,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """All codebooks (8, T) int64 in [0, 1024) for coarse codes (n_coarse ≤ 7, T).

    Temperature 0/None is argmax; any other value (1.0 included) samples.
    `on_step` counts codebook passes: windows × (8 − n_coarse).
    """
    coarse = token_array(coarse, name="coarse codes", ndim=2, upper=CODEBOOK_SIZE)
    if not 1 <= coarse.shape[0] < N_FINE_CODEBOOKS:
        raise BadInputError(f"coarse codes need 1..7 rows, got {coarse.shape[0]}")
    history_fine = token_array(
        history_fine, name="fine history", ndim=2, upper=CODEBOOK_SIZE, rows=N_FINE_CODEBOOKS
    )
    n_coarse, n_frames = coarse.shape
    arr, n_history, n_pad_end = fine_input(coarse, history_fine)
    length = arr.shape[1]
    buf = torch.from_numpy(np.ascontiguousarray(arr.T)).to(model_device(model))[None]  # (1, L, 8)
    loops = n_windows(n_frames, n_history)
    total = loops * (N_FINE_CODEBOOKS - n_coarse)
    done = 0
    for n in range(loops):
        start = min(n * FINE_STEP, length - FINE_WINDOW)
        fill = min(n_history + n * FINE_STEP, length - FINE_STEP)
        rel = fill - start  # first window row to (re)write
        window = buf[:, start : start + FINE_WINDOW]  # (1, 1024, 8) view: writes land in buf
        for codebook in range(n_coarse, N_FINE_CODEBOOKS):
            check_cancel(cancel, "fine")
            logits = model(codebook, window, rows=slice(rel, None))  # (1, 1024 - rel, V)
            relevant = logits[0, :, :CODEBOOK_SIZE]  # (1024 - rel, 1024)
            window[0, rel:, codebook] = sample(relevant, temperature, generator)
            done += 1
            if on_step is not None:
                on_step(done, total)
    out = buf[0, n_history : length - n_pad_end].T  # (8, T)
    return out.cpu().numpy()
