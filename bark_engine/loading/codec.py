"""EnCodec 24 kHz decoding: 8 codebooks of 75 Hz codes → mono float32 audio.

Uses transformers' `EncodecModel` (the `encodec` package pulls torchaudio,
which has no build for current torch). Decoding goes codes → quantizer →
decoder directly, as Bark does: no chunking, no scale, one frame.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np
import torch

from ..config import CODEBOOK_SIZE, N_FINE_CODEBOOKS
from ..errors import BadInputError


def load_codec(path: str | Path, device: str | torch.device = "cpu"):
    """Load an `EncodecModel` folder (config.json + weights) for inference only."""
    from transformers import EncodecModel  # deferred: importing transformers is slow
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" tqdm bar on stderr, which would
    # scribble over the studio's screen: keep it off while we load.
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        codec = EncodecModel.from_pretrained(str(path))
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    codec.to(device).eval()
    codec.requires_grad_(False)
    return codec


_ONEDNN_OFF = threading.Lock()  # decodes that switch oneDNN off, one at a time


@contextlib.contextmanager
def _same_at_any_thread_count(device: torch.device):
    """On the CPU, run the codec's convolutions on torch's own kernels, not oneDNN's.

    oneDNN splits a convolution's sums differently for 1 and 2 threads, so the same
    codes gave audio differing in the last bit (~1e-7) between processes with other
    thread counts (a cluster's one-thread workers and a local render). Torch's own
    convolutions give the same samples at any thread count, at a small cost
    (docs/PERFORMANCE.md). The switch is process-wide, so it is held only for the
    decode and by one decode at a time."""
    if device.type != "cpu":
        yield
        return
    with _ONEDNN_OFF:
        was = torch._C._get_mkldnn_enabled()
        torch._C._set_mkldnn_enabled(False)
        try:
            yield
        finally:
            torch._C._set_mkldnn_enabled(was)


@torch.inference_mode()
def decode(codec, fine: np.ndarray, *, exact: bool = True) -> np.ndarray:
    """Audio (T·320,) float32 at 24 kHz from fine codes (8, T) in [0, 1024).

    `exact`: the same samples at any thread count (see `_same_at_any_thread_count`);
    an audition, which nothing compares, may skip it."""
    codes = np.asarray(fine)
    if codes.ndim != 2 or codes.shape[0] != N_FINE_CODEBOOKS:
        raise BadInputError(f"fine codes must have shape (8, T), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= CODEBOOK_SIZE):
        raise BadInputError(f"fine codes must lie in [0, {CODEBOOK_SIZE})")
    if codes.shape[1] == 0:
        return np.zeros(0, dtype=np.float32)
    device = next(codec.parameters()).device
    x = torch.from_numpy(codes.astype(np.int64)).to(device)[:, None]  # (8, B=1, T)
    with _same_at_any_thread_count(device) if exact else contextlib.nullcontext():
        embeddings = codec.quantizer.decode(x)  # (1, D, T)
        audio = codec.decoder(embeddings)  # (1, 1, T·320)
    return audio[0, 0].float().cpu().numpy()
