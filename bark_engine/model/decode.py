"""One decoding step of the causal GPT on the CPU, with as few torch calls as its math needs.

A decode step reads every weight once (~370 MB at the small dims), which is
the time we cannot avoid; everything else is overhead. `GPT.forward` is
written for every case (prefills, batches, masks, a last-rows-only block), and
at T = 1 its module calls, shape checks, view juggling and two cache writes
per layer cost ~1.5 ms of an ~17 ms step on the 2-core machine here.
`DecodePlan` holds, per layer, the weight views that `model.linear`'s
thread-split mat-vec would build on every call, and runs one step of B = 1
as a flat loop: the same torch ops on the same values in the same order as
`GPT.forward`, so its logits are bit-for-bit equal (test_decode.py checks).

It applies on the CPU when every Linear weight is either float32 stored
column-major (`model.use_decode_layout`) or half precision
(`matvec.use_half_weights`, read through `linear`); elsewhere `decode_plan`
returns None and `GPT.forward` runs as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .matvec import HALF_DTYPES, linear, n_parts

if TYPE_CHECKING:  # the model module imports this one
    from .gpt import GPT, KVCache


@dataclass(frozen=True)
class _MatVec:
    """A Linear's weight as `linear` slices it for one row: (P, in/P, out) views."""

    parts: torch.Tensor  # (P, in/P, out), a view of the column-major weight
    bias: torch.Tensor | None

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor | None, threads: int) -> _MatVec:
        n_out, n_in = weight.shape
        p = n_parts(n_in, threads)
        return cls(weight.t().view(p, n_in // p, n_out), bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (1, in) → (1, out), exactly as `linear` computes it."""
        p, n_slice, _ = self.parts.shape
        y = torch.bmm(x.reshape(p, 1, n_slice), self.parts).sum(0)  # (1, out)
        return y if self.bias is None else y + self.bias


@dataclass(frozen=True)
class _HalfMatVec:
    """A half-precision weight (`matvec.use_half_weights`): `linear` itself."""

    weight: torch.Tensor  # (out, in), row-major, bf16 or fp16
    bias: torch.Tensor | None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def _mat_vec(weight: torch.Tensor, bias: torch.Tensor | None, threads: int) -> _MatVec | _HalfMatVec:
    if weight.dtype in HALF_DTYPES:
        return _HalfMatVec(weight, bias)
    return _MatVec.of(weight, bias, threads)


@dataclass(frozen=True)
class _Layer:
    ln_1: tuple[torch.Tensor, torch.Tensor | None]
    qkv: _MatVec | _HalfMatVec
    proj: _MatVec | _HalfMatVec
    ln_2: tuple[torch.Tensor, torch.Tensor | None]
    fc: _MatVec | _HalfMatVec
    out: _MatVec | _HalfMatVec


def _norm(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    return module.weight, module.bias


class DecodePlan:
    """Per-layer weight views of one GPT for one thread count; `step` decodes one token."""

    def __init__(self, model: GPT, threads: int) -> None:
        tr = model.transformer
        self.threads = threads
        self.n_embd = model.config.n_embd
        self.n_head = model.config.n_head
        self.block_size = model.config.block_size
        self.wte = tr["wte"].weight
        self.wpe = tr["wpe"].weight
        self.ln_f = _norm(tr["ln_f"])
        self.head = model.lm_head.weight
        self.layers = [
            _Layer(
                ln_1=_norm(b.ln_1),
                qkv=_mat_vec(b.attn.c_attn.weight, b.attn.c_attn.bias, threads),
                proj=_mat_vec(b.attn.c_proj.weight, b.attn.c_proj.bias, threads),
                ln_2=_norm(b.ln_2),
                fc=_mat_vec(b.mlp.c_fc.weight, b.mlp.c_fc.bias, threads),
                out=_mat_vec(b.mlp.c_proj.weight, b.mlp.c_proj.bias, threads),
            )
            for b in tr["h"]
        ]
        self._heads: dict[tuple[int, int, int] | None, _MatVec | _HalfMatVec] = {}
        # What the views were taken from: a re-laid-out or moved weight makes the plan stale.
        self._sources = _weight_ids(model)

    def is_current(self, model: GPT, threads: int) -> bool:
        return threads == self.threads and _weight_ids(model) == self._sources

    def _head(self, vocab: slice | None) -> _MatVec | _HalfMatVec:
        key = None if vocab is None else (vocab.start, vocab.stop, vocab.step)
        head = self._heads.get(key)
        if head is None:
            weight = self.head if vocab is None else self.head[vocab]
            head = self._heads[key] = _mat_vec(weight, None, self.threads)
        return head

    def step(self, idx: torch.Tensor, cache: KVCache, vocab: slice | None) -> torch.Tensor:
        """Logits (1, 1, V) of one new token idx (1, 1) after the cache's positions."""
        past = cache.length
        if past + 1 > self.block_size:
            raise ValueError(f"sequence of {past + 1} exceeds the context of {self.block_size}")
        C, H = self.n_embd, self.n_head
        shape = (C,)
        x = F.embedding(idx.view(1), self.wte) + self.wpe[past : past + 1]  # (1, C)
        kv, end = cache.kv, past + 1  # kv: (n_layer, 2, 1, H, max_len, C/H)
        for i, layer in enumerate(self.layers):
            qkv = layer.qkv(F.layer_norm(x, shape, *layer.ln_1, 1e-5))  # (1, 3C)
            kv[i, :, 0, :, past] = qkv[0, C:].view(2, H, C // H)  # keys and values in one copy
            y = F.scaled_dot_product_attention(
                qkv[:, :C].view(1, H, 1, C // H), kv[i, 0, :, :, :end], kv[i, 1, :, :, :end]
            )  # (1, H, 1, C/H)
            x = x + layer.proj(y.view(1, C))
            h = F.gelu(layer.fc(F.layer_norm(x, shape, *layer.ln_2, 1e-5)))
            x = x + layer.out(h)
        cache.length = end
        logits = self._head(vocab)(F.layer_norm(x, shape, *self.ln_f, 1e-5))
        return logits.view(1, 1, -1)


def _weight_ids(model: GPT) -> list[int]:
    """Where each parameter's values live (a replaced Parameter counts as moved too)."""
    return [p.data_ptr() for p in model.parameters()]


def decode_plan(model: GPT) -> DecodePlan | None:
    """The model's current plan (built or rebuilt as needed), or None where it does not apply."""
    threads = torch.get_num_threads()
    plan: DecodePlan | None = getattr(model, "_decode_plan", None)
    if plan is not None and plan.is_current(model, threads):
        return plan
    head = model.lm_head.weight
    linears = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    if head.device.type != "cpu" or any(
        w.dtype not in HALF_DTYPES and w.stride(0) != 1 for w in linears
    ):
        return None
    plan = DecodePlan(model, threads)
    model._decode_plan = plan
    return plan
