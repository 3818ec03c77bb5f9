"""Test helpers: seeded random Bark models, and the same weights in transformers' port.

The port helpers (`to_port`, `port_config`, `port_name`) live in
`bark_engine.testing.port` so the benchmark can use them too; they are
re-exported here for the tests.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bark_engine.config import GPTConfig, stage_configs
from bark_engine.model import kernels
from bark_engine.model.gpt import GPT, FineGPT, LayerNorm
from bark_engine.model.precision import pack_model, use_decode_layout
from bark_engine.testing.port import port_config, port_name, to_port

__all__ = ["LAYOUTS", "init_random", "laid_out", "port_config", "port_name", "tiny_model",
           "to_port"]

# How a CPU model can hold its linear weights (`precision`): as built (eager
# reference), the pure-torch fallback's column-major layout, the kernels' panels.
LAYOUTS = ("eager", "fallback", "kernels")
needs_kernels = pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")


def laid_out(model, layout: str, dtype: torch.dtype = torch.float32):
    """The model in place in one of `LAYOUTS` (kernels: skips the test where not built)."""
    if layout == "kernels":
        if not kernels.available():
            pytest.skip("the CPU kernels are not built here")
        return pack_model(model, dtype)
    if layout == "fallback":
        return use_decode_layout(model)
    return model


@torch.no_grad()
def init_random(model: nn.Module, seed: int, head_std: float = 0.5) -> nn.Module:
    """GPT-2-like random weights: N(0, 0.02) matrices and embeddings, LayerNorms
    near (1, 0).

    PyTorch's default N(0, 1) embeddings make every logit degenerate. The
    output heads get a larger `head_std` so logits are spread (std ≈ 3 at
    tiny dims) and greedy argmax never hinges on float rounding.
    """
    gen = torch.Generator().manual_seed(seed)
    heads = {
        id(m.weight)
        for name, m in model.named_modules()
        if name.startswith("lm_head") and isinstance(m, nn.Linear)
    }
    for module in model.modules():
        if isinstance(module, LayerNorm):
            module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=gen))
            if module.bias is not None:
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            std = head_std if id(module.weight) in heads else 0.02
            module.weight.copy_(std * torch.randn(module.weight.shape, generator=gen))
            if getattr(module, "bias", None) is not None:
                module.bias.copy_(0.02 * torch.randn(module.bias.shape, generator=gen))
    return model.eval()


def tiny_model(stage: str, seed: int = 0, cfg: GPTConfig | None = None) -> GPT | FineGPT:
    """A tiny random model of one stage with the real vocabularies."""
    cfg = cfg or stage_configs("tiny")[stage]
    model = FineGPT(cfg) if stage == "fine" else GPT(cfg)
    return init_random(model, seed)
