"""Valid voice-prompt arrays and .npz files for the voice tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_arrays(n_sem: int = 341, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays shaped like a real preset: coarse frames = floor(T * 75 / 49.9)."""
    rng = np.random.default_rng(seed)
    frames = int(n_sem * 75 / 49.9)
    fine = rng.integers(0, 1024, size=(8, frames), dtype=np.int64)
    return {
        "semantic_prompt": rng.integers(0, 10_000, size=n_sem, dtype=np.int64),
        "coarse_prompt": fine[:2].copy(),
        "fine_prompt": fine,
    }


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path
