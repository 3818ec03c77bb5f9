"""Random-weight Bark checkpoints, byte-for-byte in the shape of `suno/bark`'s.

The real `text.pt`/`coarse.pt`/`fine.pt` are nanoGPT training checkpoints, not
bare state dicts, and they carry quirks a loader must survive. We reproduce
each one so our loader meets them here rather than first on a user's machine:

- `model` keys prefixed `_orig_mod.` (saved from a `torch.compile`d model) in
  the text and fine files, plain in the coarse file;
- causal files hold the `transformer.h.N.attn.bias` causal-mask buffers of the
  non-flash attention code;
- the coarse file's `model_args` uses the old single `vocab_size` key;
- `best_val_loss` is a numpy float64 scalar, pickled under numpy 1.x's module
  names (`numpy.core.multiarray.scalar`), as the real files were written;
- an AdamW `optimizer` state (why real files are ~3x their weights);
- the fine model's `lm_heads.{i}` and `transformer.wtes.{i+1}` are one tensor.
"""

from __future__ import annotations

import io
import math
import pickle
import types
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..config import GPTConfig
from ..model.gpt import GPT, FineGPT
from .files import atomic_file

Kind = Literal["causal", "fine"]
COMPILED_PREFIX = "_orig_mod."
INIT_STD = 0.02  # GPT-2 initialisation


def _meta_model(cfg: GPTConfig, kind: Kind) -> torch.nn.Module:
    """The model skeleton without memory: we only need names and shapes."""
    with torch.device("meta"):
        return FineGPT(cfg) if kind == "fine" else GPT(cfg)


def _init_tensor(name: str, shape: torch.Size, n_layer: int, g: torch.Generator) -> torch.Tensor:
    """GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2·n_layer), LN weight 1."""
    if name.endswith(".bias"):
        return torch.zeros(shape)
    if ".ln_" in name or name.startswith("transformer.ln_f"):
        return torch.ones(shape)
    std = INIT_STD / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else INIT_STD
    return torch.empty(shape).normal_(0.0, std, generator=g)


def random_state_dict(cfg: GPTConfig, kind: Kind, g: torch.Generator) -> dict[str, torch.Tensor]:
    """A state dict for `GPT`/`FineGPT` in module order, fine heads tied to their embeddings."""
    model = _meta_model(cfg, kind)
    out: dict[str, torch.Tensor] = {}
    for name, meta in model.state_dict().items():
        out[name] = _init_tensor(name, meta.shape, cfg.n_layer, g)
    if kind == "fine":
        for i in range(cfg.n_codes_total - cfg.n_codes_given):
            out[f"transformer.wtes.{i + 1}.weight"] = out[f"lm_heads.{i}.weight"]
    return out


def with_attention_masks(
    sd: dict[str, torch.Tensor], cfg: GPTConfig, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """Insert each layer's (1, 1, block, block) lower-triangular mask where nanoGPT kept it."""
    block = cfg.block_size
    out: dict[str, torch.Tensor] = {}
    for name, tensor in sd.items():
        if name.endswith(".attn.c_attn.weight"):
            # A module's own buffers precede its children's entries in a state dict.
            tril = torch.ones(block, block, dtype=dtype).tril().view(1, 1, block, block)
            out[name.removesuffix("c_attn.weight") + "bias"] = tril
        out[name] = tensor
    return out


def adamw_state(
    model_sd: dict[str, torch.Tensor], cfg: GPTConfig, kind: Kind, iter_num: int, g: torch.Generator
) -> dict[str, Any]:
    """`torch.optim.AdamW(...).state_dict()` as nanoGPT saved it: decay / no-decay groups.

    Moments are random (their values are never read); shapes, keys and groups
    are real, so the file has the real size and structure.
    """
    named = list(_meta_model(cfg, kind).named_parameters())  # tied params appear once
    decay = [(n, p) for n, p in named if p.dim() >= 2]
    no_decay = [(n, p) for n, p in named if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": [p for _, p in decay], "weight_decay": 0.1},
            {"params": [p for _, p in no_decay], "weight_decay": 0.0},
        ],
        lr=6e-4,
        betas=(0.9, 0.95),
    )
    sd = opt.state_dict()  # param_groups hold indices 0..N-1 in this order
    state = {}
    for idx, (name, _) in enumerate(decay + no_decay):
        exp_avg = torch.empty_like(model_sd[name]).normal_(0.0, 1e-4, generator=g)
        state[idx] = {
            "step": torch.tensor(float(iter_num)),
            "exp_avg": exp_avg,
            "exp_avg_sq": exp_avg.square(),
        }
    sd["state"] = state
    return sd


def training_config(kind: Kind) -> dict[str, str | int | float | bool]:
    """Plain training settings, as nanoGPT's `config` entry holds them."""
    return {
        "out_dir": f"out-{kind}",
        "eval_interval": 1000,
        "log_interval": 10,
        "eval_iters": 200,
        "always_save_checkpoint": False,
        "dataset": "bark",
        "gradient_accumulation_steps": 8,
        "batch_size": 16,
        "learning_rate": 6e-4,
        "weight_decay": 0.1,
        "beta1": 0.9,
        "beta2": 0.95,
        "grad_clip": 1.0,
        "decay_lr": True,
        "dtype": "bfloat16",
        "compile": True,
    }


def checkpoint_dict(
    cfg: GPTConfig,
    kind: Kind,
    *,
    seed: int,
    compiled_prefix: bool,
    old_vocab_key: bool,
    mask_dtype: torch.dtype | None,
    optimizer_state: bool,
) -> dict[str, Any]:
    """One checkpoint's top-level dict, with the quirks chosen by the flags."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    iter_num = int(rng.integers(100_000, 800_000))
    sd = random_state_dict(cfg, kind, g)
    model_args = cfg.to_model_args(fine=kind == "fine")
    if old_vocab_key:
        if cfg.input_vocab_size != cfg.output_vocab_size:
            raise ValueError(
                "the single `vocab_size` key needs equal input and output vocabularies"
            )
        del model_args["input_vocab_size"], model_args["output_vocab_size"]
        model_args["vocab_size"] = cfg.input_vocab_size
    ckpt: dict[str, Any] = {"model_args": model_args}
    if optimizer_state:
        ckpt["optimizer"] = adamw_state(sd, cfg, kind, iter_num, g)
    stored = with_attention_masks(sd, cfg, mask_dtype) if mask_dtype is not None else sd
    if compiled_prefix:
        stored = {COMPILED_PREFIX + k: v for k, v in stored.items()}
    ckpt["model"] = stored
    ckpt["iter_num"] = iter_num
    ckpt["best_val_loss"] = np.float64(1.5 + rng.random())
    ckpt["config"] = training_config(kind)
    return ckpt


# --- writing with numpy 1.x pickle names ------------------------------------------------

_NUMPY2_SCALAR = b"cnumpy._core.multiarray\nscalar\n"
_NUMPY1_SCALAR = b"cnumpy.core.multiarray\nscalar\n"


class _Numpy1Pickler(pickle.Pickler):
    """Pickles as numpy 1.x did: `numpy.core.multiarray.scalar` for numpy scalars.

    torch.save pickles with protocol 2, where a global is the opcode `c` and
    two newline-ended names, with no length prefix, so renaming the module in
    the finished pickle is exact. torch.save subclasses this class (to add its
    `persistent_id`) and calls `dump` once.
    """

    def __init__(self, file: io.BytesIO, protocol: int | None = None) -> None:
        self._target = file
        self._buffer = io.BytesIO()
        super().__init__(self._buffer, protocol=protocol)

    def dump(self, obj: Any) -> None:
        super().dump(obj)
        self._target.write(self._buffer.getvalue().replace(_NUMPY2_SCALAR, _NUMPY1_SCALAR))


NUMPY1_PICKLE = types.SimpleNamespace(__name__="numpy1_pickle", Pickler=_Numpy1Pickler)


def save_checkpoint(obj: Any, path: Path, *, numpy1_names: bool = True) -> None:
    """`torch.save` to a temporary file in the same folder, then rename into place."""
    # Saving through a file object names the zip's records `archive/...` rather
    # than after the random temporary name, so the bytes are reproducible.
    with atomic_file(path, "wb") as f:
        if numpy1_names:
            torch.save(obj, f, pickle_module=NUMPY1_PICKLE, pickle_protocol=2)
        else:
            torch.save(obj, f)
