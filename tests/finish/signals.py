"""Synthetic audio of known level for the finishing tests: tones, noise bursts, silence."""

from __future__ import annotations

import numpy as np

from bark_tui.finish.bench import speechlike  # noqa: F401  (the benchmark's signal)


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float, rate: int, noise_db: float | None = None, seed: int = 1) -> np.ndarray:
    n = round(seconds * rate)
    if noise_db is None:
        return np.zeros(n, dtype=np.float32)
    rng = np.random.default_rng(seed)
    return (10 ** (noise_db / 20) * rng.standard_normal(n)).astype(np.float32)
