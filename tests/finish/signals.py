"""Synthetic audio of known level for the finishing tests: tones, noise bursts, silence."""

from __future__ import annotations

import numpy as np


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(seconds: float, rate: int, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """Tones of a few pitches with a syllable-rate envelope: peaky like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    pitch = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    noise = 0.05 * rng.standard_normal(len(t))
    x = (voiced + noise) * envelope
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def silence(seconds: float, rate: int, noise_db: float | None = None, seed: int = 1) -> np.ndarray:
    n = round(seconds * rate)
    if noise_db is None:
        return np.zeros(n, dtype=np.float32)
    rng = np.random.default_rng(seed)
    return (10 ** (noise_db / 20) * rng.standard_normal(n)).astype(np.float32)
