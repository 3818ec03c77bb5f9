"""How many bytes the three GPTs' weights take in each precision, before loading.

`bark-tui info` shows it so a user can choose a precision for the memory they
have. The models are built on the meta device (no memory, no file read) and
counted as `precision.prepare_model` lays them out on the CPU kernels: every
linear weight in the precision (int8 with one float32 scale per output), and
everything else (embeddings, norms, biases) in float32; the fine model's heads,
tied to its embeddings, are packed as copies. On a GPU the whole model takes
the dtype, which these figures do not describe.
"""

from __future__ import annotations

import torch

from ..config import GPTConfig, stage_configs
from .gpt import GPT, FineGPT
from .precision import DTYPES, linear_layers

# Bytes per matrix weight in each precision (int8 adds its scales apart).
_WEIGHT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1}


def model_bytes(cfg: GPTConfig, fine: bool, precision: str) -> int:
    """Bytes of one GPT laid out for the CPU kernels in `precision`."""
    if precision not in DTYPES:
        raise ValueError(f"unknown precision '{precision}'")
    with torch.device("meta"):
        model = FineGPT(cfg) if fine else GPT(cfg)
    if fine:
        model.tie_weights()
    tied = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    matrices = [m.weight for _, _, m in linear_layers(model)]
    other = sum(p.numel() for p in model.parameters()
                if all(p is not w for w in matrices) or id(p) in tied)
    total = other * 4
    for w in matrices:
        n_out = w.shape[0]
        total += w.numel() * _WEIGHT_BYTES[precision] + (4 * n_out if precision == "int8" else 0)
    return total


def weights_bytes(size: str, precision: str) -> int:
    """Bytes of the three GPTs of the real `size` ("small" or "large") in `precision`."""
    dims = {"small": "small", "large": "large"}[size]
    configs = stage_configs(dims)
    return sum(model_bytes(cfg, name == "fine", precision) for name, cfg in configs.items())
