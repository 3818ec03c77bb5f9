"""This machine's weight-streaming bandwidth, and the batch-1 semantic decoding bound.

Batch-1 decoding reads every weight matrix once per token, so on a CPU its
speed is capped at bandwidth ÷ bytes of weights read per token (DESIGN §7).

Method: with the benchmark's thread count, stream a ~400 MB float32 tensor
that does not fit any cache, two ways, and keep the best of several runs of
each: `torch.sum` over a flat tensor, and `torch.mv` of a matrix shaped like
a stack of Bark's weight rows (768 wide) with a vector, which is exactly the
access pattern of a T = 1 linear layer. The higher of the two is the
bandwidth: the bound is then the strictest honest one.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from ..config import SEMANTIC_VOCAB_SIZE, GPTConfig


@dataclass(frozen=True)
class Bandwidth:
    sum_gbs: float  # GB/s (1e9 bytes) of torch.sum over the flat tensor
    mv_gbs: float  # GB/s of torch.mv over the matrix
    megabytes: float  # size of each streamed tensor
    threads: int
    repeats: int

    @property
    def gbs(self) -> float:
        return max(self.sum_gbs, self.mv_gbs)

    def to_dict(self) -> dict:
        return {**asdict(self), "gbs": self.gbs}


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first touch, thread pool start
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_bandwidth(megabytes: float = 400.0, repeats: int = 10, width: int = 768) -> Bandwidth:
    """Best-of-`repeats` read bandwidth of `torch.sum` and `torch.mv` (set threads first)."""
    n = int(megabytes * 1e6 / 4)
    rows = max(1, n // width)
    with torch.inference_mode():
        flat = torch.rand(n)
        sum_s = _best_seconds(flat.sum, repeats)
        sum_bytes = flat.numel() * 4
        del flat
        matrix = torch.rand(rows, width)
        vector = torch.rand(width)
        mv_s = _best_seconds(lambda: torch.mv(matrix, vector), repeats)
        mv_bytes = matrix.numel() * 4
    return Bandwidth(
        sum_gbs=sum_bytes / sum_s / 1e9,
        mv_gbs=mv_bytes / mv_s / 1e9,
        megabytes=megabytes,
        threads=torch.get_num_threads(),
        repeats=repeats,
    )


def semantic_bytes_per_token(cfg: GPTConfig, dtype_bytes: int = 4) -> int:
    """Weight bytes one semantic decoding step must read.

    Every transformer block (attention qkv and output, MLP in and out,
    LayerNorms, biases if any), the final LayerNorm, and the lm_head rows the
    stage samples from: the 10,000 semantic tokens and the EOS logit. Not the
    embedding tables (one row each per token) and not the KV cache (reported
    apart by `kv_bytes_per_token`).
    """
    c = cfg.n_embd
    bias = 1 if cfg.bias else 0
    ln = c * (1 + bias)
    block = (
        3 * c * c + 3 * c * bias  # c_attn
        + c * c + c * bias  # attn c_proj
        + 4 * c * c + 4 * c * bias  # c_fc
        + 4 * c * c + c * bias  # mlp c_proj
        + 2 * ln
    )
    head_rows = SEMANTIC_VOCAB_SIZE + 1
    return dtype_bytes * (cfg.n_layer * block + ln + head_rows * c)


def kv_bytes_per_token(cfg: GPTConfig, positions: float, dtype_bytes: int = 4) -> float:
    """KV-cache bytes one step reads when `positions` positions are cached."""
    return dtype_bytes * 2 * cfg.n_layer * positions * cfg.n_embd
