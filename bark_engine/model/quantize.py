"""int8 weights: per-output-channel symmetric quantisation of a linear layer.

Each output of a linear layer is one dot product over the input dimension, so
one scale per output (row of the weight) loses only the rounding of each
weight, and the scale can multiply the finished sum once (the kernels do:
y[j] = (x · q[j]) · scale[j] + bias[j]). Symmetric, with no zero point, keeps
the product a plain sum; the range is ±127 (never -128) so that w and -w
quantise alike. Embeddings, layer norms and the codec are not quantised.
"""

from __future__ import annotations

import torch

QMAX = 127


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_out, n_in) float weight → (int8 weight (n_out, n_in), float32 scale (n_out,)).

    A row of zeros gets scale 1 (its outputs stay exactly 0).
    """
    if weight.dim() != 2:
        raise ValueError(f"a linear weight is 2-D, not {tuple(weight.shape)}")
    with torch.no_grad():
        w = weight.detach().float()
        amax = w.abs().amax(dim=1)  # (n_out,)
        scale = torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))
        q = torch.round(w / scale[:, None]).clamp_(-QMAX, QMAX).to(torch.int8)
    return q, scale.contiguous()


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight an int8 weight stands for: q · scale per row."""
    return q.float() * scale.float()[:, None]


def relative_error(weight: torch.Tensor) -> float:
    """‖w − dequantize(quantize(w))‖ / ‖w‖ over the whole weight (0 for zeros)."""
    w = weight.detach().float()
    norm = float(w.norm())
    if norm == 0.0:
        return 0.0
    return float((w - dequantize(*quantize_rows(w))).norm()) / norm
