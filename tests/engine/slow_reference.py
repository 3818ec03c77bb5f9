"""Slow, direct transcriptions of the original coarse and fine loops, for tests.

No KV cache, no `rows=` shortcut, lists and NumPy where the original uses
them: each step re-runs the model on the whole window. The fast stages must
give the very same tokens (greedy, or sampled from the same generator, since
both consume random numbers in the same order).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bark_engine.model.gpt import GPT, FineGPT
from bark_engine.stages.sampling import sample

RATIO = 75 / 49.9 * 2


@torch.inference_mode()
def slow_coarse(
    model: GPT,
    semantic: np.ndarray,
    hist_semantic: np.ndarray | None,
    hist_coarse: np.ndarray | None,
    temperature: float | None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    max_sem_hist = int(np.floor(630 / RATIO))
    if hist_semantic is not None:
        flat = hist_coarse.astype(np.int64).copy()
        flat[1] += 1024
        flat = flat.ravel("F") + 10_000
        n_sem = min(
            max_sem_hist,
            len(hist_semantic) - len(hist_semantic) % 2,
            int(np.floor(len(flat) / RATIO)),
        )
        n_coarse = int(round(n_sem * RATIO))
        hist_semantic = hist_semantic[-n_sem:]
        flat = flat[-n_coarse:][:-2]
    else:
        hist_semantic = np.zeros(0, dtype=np.int64)
        flat = np.zeros(0, dtype=np.int64)
    n_steps = int(round(np.floor(len(semantic) * RATIO / 2) * 2))
    all_semantic = np.hstack([hist_semantic, semantic]).astype(np.int64)
    coarse = [int(t) for t in flat]
    n_step = 0
    for _ in range(math.ceil(n_steps / 60)):
        sem_idx = len(hist_semantic) + int(round(n_step / RATIO))
        window = list(all_semantic[max(0, sem_idx - max_sem_hist) :][:256])
        window += [12_048] * (256 - len(window)) + [12_050] + coarse[-630:]
        for _ in range(60):
            if n_step >= n_steps:
                continue
            logits = model(torch.tensor([window]))  # (1, 1, V): the whole window again
            start = 10_000 + (n_step % 2) * 1024
            token = int(sample(logits[0, 0, start : start + 1024], temperature, generator)) + start
            coarse.append(token)
            window.append(token)
            n_step += 1
    out = np.array(coarse[len(flat) :], dtype=np.int64).reshape(-1, 2).T - 10_000
    out[1] -= 1024
    return out


@torch.inference_mode()
def slow_fine(
    model: FineGPT,
    coarse: np.ndarray,
    hist_fine: np.ndarray | None,
    temperature: float | None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    n_coarse = coarse.shape[0]
    arr = np.vstack([coarse, np.zeros((8 - n_coarse, coarse.shape[1])) + 1024]).astype(np.int64)
    n_history = 0
    if hist_fine is not None:
        arr = np.hstack([hist_fine[:, -512:], arr])
        n_history = hist_fine[:, -512:].shape[1]
    n_remove = 0
    if arr.shape[1] < 1024:
        n_remove = 1024 - arr.shape[1]
        arr = np.hstack([arr, np.zeros((8, n_remove), dtype=np.int64) + 1024])
    n_loops = max(0, int(np.ceil((coarse.shape[1] - (1024 - n_history)) / 512))) + 1
    full = torch.tensor(arr.T)  # (L, 8)
    for n in range(n_loops):
        start = min(n * 512, full.shape[0] - 1024)
        fill = min(n_history + n * 512, full.shape[0] - 512)
        rel = fill - start
        buffer = full[start : start + 1024][None]  # a view: writes land in `full`
        for nn in range(n_coarse, 8):
            logits = model(nn, buffer)  # (1, 1024, V): every row, no shortcut
            buffer[0, rel:, nn] = sample(logits[0, rel:, :1024], temperature, generator)
        for nn in range(n_coarse, 8):  # the original's (redundant) copy back
            full[fill : fill + 1024 - rel, nn] = buffer[0, rel:, nn]
    out = full.numpy().T[:, n_history:]
    if n_remove:
        out = out[:, :-n_remove]
    return out
