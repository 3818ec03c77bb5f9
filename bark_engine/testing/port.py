"""Our weights in transformers' Bark port, for reference tests and the benchmark.

Our models keep the original checkpoints' parameter names; transformers' Bark
port (`BarkSemanticModel`, `BarkCoarseModel`, `BarkFineModel`) renames them.
`to_port(model, stage)` builds the port's model with an identical config and
loads our state dict under the port's names, so any difference in logits or
tokens between the two comes from the code, not the weights.
`port_from_state_dict` does the same from a bare state dict without
initialising the port's weights first (meta device + assign), as
`from_pretrained` does: the benchmark uses it to time a fair load.

transformers is imported inside the functions: importing it is slow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..config import GPTConfig

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
STAGES = ("semantic", "coarse", "fine")


def port_name(name: str) -> str:
    """Our parameter name → the name transformers' Bark port uses."""
    for pattern, repl in _RENAMES:
        name = re.sub(pattern, repl, name)
    return name


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


def port_class(stage: str):
    """transformers' model class for `stage` ("semantic", "coarse" or "fine")."""
    from transformers import BarkCoarseModel, BarkFineModel, BarkSemanticModel

    classes = {"semantic": BarkSemanticModel, "coarse": BarkCoarseModel, "fine": BarkFineModel}
    if stage not in classes:
        raise ValueError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    return classes[stage]


def _check_keys(missing: list[str], unexpected: list[str]) -> None:
    missing = [k for k in missing if not k.endswith(".attn.bias")]  # the port's causal-mask buffer
    if missing or unexpected:
        raise AssertionError(f"state dicts differ: missing {missing}, unexpected {unexpected}")


def to_port(model: torch.nn.Module, stage: str):
    """transformers' Bark model of `stage` holding exactly `model`'s weights (copied)."""
    port = port_class(stage)(port_config(model.config, stage))
    ours = {port_name(k): v for k, v in model.state_dict().items()}
    missing, unexpected = port.load_state_dict(ours, strict=False)
    _check_keys(missing, unexpected)
    return port.eval()


def port_from_state_dict(state: Mapping[str, torch.Tensor], cfg: GPTConfig, stage: str):
    """transformers' Bark model of `stage` whose parameters *are* `state`'s tensors.

    `state` uses our (original-checkpoint) names, without the `_orig_mod.`
    prefix. The port is built on the meta device and the tensors assigned, so
    nothing is initialised or copied: mmap-loaded tensors stay mapped. The
    causal-mask buffer of the port's attention is rebuilt.
    """
    cls = port_class(stage)
    config = port_config(cfg, stage)
    with torch.device("meta"):
        port = cls(config)
    ours = {port_name(k): v for k, v in state.items() if not k.endswith(".attn.bias")}
    missing, unexpected = port.load_state_dict(ours, strict=False, assign=True)
    _check_keys(missing, unexpected)
    for name, module in port.named_modules():
        bias = getattr(module, "bias", None)
        if name.endswith(".attn") and isinstance(bias, torch.Tensor) and bias.is_meta:
            n = cfg.block_size
            mask = torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n)
            module.register_buffer("bias", mask)
    if stage == "fine":
        port.tie_weights()
    leftovers = [n for n, t in [*port.named_parameters(), *port.named_buffers()] if t.is_meta]
    if leftovers:
        raise AssertionError(f"port tensors left uninitialised: {leftovers[:4]}")
    return port.eval()
