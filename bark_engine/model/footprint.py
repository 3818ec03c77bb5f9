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
    matrices = [m.weight for _, _, m in linear_layers(model)]
    # float32: every parameter but the matrices, and the embeddings the fine heads are tied to
    # (the heads are packed as copies)
    kept = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    packed = {id(w) for w in matrices} - kept
    total = 4 * sum(p.numel() for p in model.parameters() if id(p) not in packed)
    scale = 4 if precision == "int8" else 0  # one float32 scale per output
    return total + sum(w.numel() * _WEIGHT_BYTES[precision] + scale * w.shape[0]
                       for w in matrices)


def weights_bytes(size: str, precision: str) -> int:
    """Bytes of the three GPTs of the real `size` ("small" or "large") in `precision`."""
    if size not in ("small", "large"):
        raise ValueError(f"unknown model size '{size}'")
    configs = stage_configs(size)
    return sum(model_bytes(cfg, name == "fine", precision) for name, cfg in configs.items())
