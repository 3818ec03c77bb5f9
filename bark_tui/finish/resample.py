"""Sample-rate conversion with soxr (the SoX resampler, "very high quality")."""

from __future__ import annotations

import numpy as np


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono float32 `audio` at `rate_out`; the same array when the rates agree."""
    if rate_in == rate_out or len(audio) == 0:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), rate_in, rate_out,
                         quality="VHQ").astype(np.float32, copy=False)
