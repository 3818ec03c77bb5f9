"""Test helpers: seeded random Bark models, and the same weights in transformers' port.

Our models keep the original checkpoints' parameter names; transformers' Bark
port renames them. `to_port(model)` builds the port's model with an identical
config and loads our state dict under the port's names, so any difference in
logits or tokens between the two comes from the code, not the weights.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from bark_engine.config import GPTConfig, stage_configs
from bark_engine.model import GPT, FineGPT, LayerNorm

# Our name (regex) → the port's name; applied in order to every state-dict key.
_RENAMES = [
    (r"^transformer\.wte\.", "input_embeds_layer."),
    (r"^transformer\.wtes\.", "input_embeds_layers."),
    (r"^transformer\.wpe\.", "position_embeds_layer."),
    (r"^transformer\.ln_f\.", "layernorm_final."),
    (r"^transformer\.h\.(\d+)\.", r"layers.\1."),
    (r"\.ln_1\.", ".layernorm_1."),
    (r"\.ln_2\.", ".layernorm_2."),
    (r"\.attn\.c_attn\.", ".attn.att_proj."),
    (r"\.attn\.c_proj\.", ".attn.out_proj."),
    (r"\.mlp\.c_fc\.", ".mlp.in_proj."),
    (r"\.mlp\.c_proj\.", ".mlp.out_proj."),
]


def port_name(name: str) -> str:
    """Our parameter name → the name transformers' Bark port uses."""
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name


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


def port_config(cfg: GPTConfig, stage: str):
    """The port's config class for `stage`, with our dims."""
    from transformers import BarkCoarseConfig, BarkFineConfig, BarkSemanticConfig

    common = {
        "num_layers": cfg.n_layer,
        "num_heads": cfg.n_head,
        "hidden_size": cfg.n_embd,
        "block_size": cfg.block_size,
        "input_vocab_size": cfg.input_vocab_size,
        "output_vocab_size": cfg.output_vocab_size,
        "bias": cfg.bias,
        "dropout": 0.0,
    }
    if stage == "semantic":
        return BarkSemanticConfig(**common)
    if stage == "coarse":
        return BarkCoarseConfig(**common)
    return BarkFineConfig(
        **common, n_codes_total=cfg.n_codes_total, n_codes_given=cfg.n_codes_given
    )


def to_port(model: GPT | FineGPT, stage: str):
    """transformers' Bark model of `stage` holding exactly `model`'s weights."""
    from transformers import BarkCoarseModel, BarkFineModel, BarkSemanticModel

    classes = {"semantic": BarkSemanticModel, "coarse": BarkCoarseModel, "fine": BarkFineModel}
    port = classes[stage](port_config(model.config, stage))
    ours = {port_name(k): v for k, v in model.state_dict().items()}
    missing, unexpected = port.load_state_dict(ours, strict=False)
    missing = [k for k in missing if not k.endswith(".attn.bias")]  # the port's causal-mask buffer
    if missing or unexpected:
        raise AssertionError(f"state dicts differ: missing {missing}, unexpected {unexpected}")
    return port.eval()
