"""KV caches: the keys and values of every layer for a few rows ("slots"),
preallocated once per stage run and written in place. The cache owns its
writes: the model hands it a layer's new keys and values and reads back the
ones it may attend to.

Two layouts, one per way of stepping (see `steps`):

- `KVCache`: (n_layer, 2, slots, H, max_len, hd), what torch's attention
  reads; `forward` of the plain model and the CUDA graph step use it.
- `KernelCache`: keys and values in panels of 16 (as the kernels' weights):
  keys (n_layer, slots, H, max_len/16, hd, 16), values (n_layer, slots, H,
  hd/16, max_len, 16), the layout the CPU kernels' attention streams
  (`kernels.attend`).

Each slot has its own length: rows of a batch sit at different positions.
Rows whose prompts are the same (the takes of one text and voice) can share
one copy of it in a `KernelCache` (`share`): a decode step then reads those
keys and values once for all of them.
"""

from __future__ import annotations

import torch

from ..config import GPTConfig
from .kernel_blocks import Scratch
from .kernels import PANEL  # keys per key panel, value dims per value panel


class KVCache:
    """Keys and values of `slots` rows in torch's layout, and each slot's length."""

    def __init__(self, cfg: GPTConfig, slots: int, max_len: int, device: torch.device,
                 dtype: torch.dtype) -> None:
        head_dim = cfg.n_embd // cfg.n_head
        shape = (cfg.n_layer, 2, slots, cfg.n_head, max_len, head_dim)
        self.kv = torch.zeros(shape, device=device, dtype=dtype)  # zeros: finite when masked
        self.max_len = max_len
        self.lengths = [0] * slots

    @property
    def slots(self) -> int:
        return len(self.lengths)

    def view(self, slot: int) -> CacheView:
        """One slot as a batch of one, for `GPT.forward`."""
        return CacheView(self, slot)

    def clone(self) -> KVCache:
        """An independent copy: the same positions, its own tensor."""
        new = KVCache.__new__(KVCache)
        new.kv, new.max_len, new.lengths = self.kv.clone(), self.max_len, list(self.lengths)
        return new


class CacheView:
    """Slot `slot` of a `KVCache`: what one row's forward writes and reads."""

    def __init__(self, cache: KVCache, slot: int) -> None:
        self.cache, self.slot = cache, slot
        self.kv = cache.kv[:, :, slot : slot + 1]  # (n_layer, 2, 1, H, max_len, hd), a view

    @property
    def length(self) -> int:
        return self.cache.lengths[self.slot]

    @length.setter
    def length(self, value: int) -> None:
        self.cache.lengths[self.slot] = value

    def reset(self) -> None:
        self.length = 0

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (1, H, T, hd) after the slot's positions; return every key
        and value up to them (1, H, length + T, hd). `length` moves on only when
        the whole forward is done (`GPT.forward` sets it)."""
        start, end = self.length, self.length + k.shape[2]
        if end > self.cache.max_len:
            raise ValueError(f"sequence of {end} exceeds the cache's {self.cache.max_len} positions")
        self.kv[layer, 0, :, :, start:end] = k
        self.kv[layer, 1, :, :, start:end] = v
        return self.kv[layer, 0, :, :, :end], self.kv[layer, 1, :, :, :end]


class KernelCache:
    """Keys and values of `slots` rows in panels, for the CPU kernels: float32, or
    bfloat16 (each key and value rounded once as it is written, widened exactly
    as it is read: half the bytes an attention step reads)."""

    def __init__(self, cfg: GPTConfig, slots: int, max_len: int,
                 dtype: torch.dtype = torch.float32) -> None:
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"the kernels' KV cache is float32 or bfloat16, not {dtype}")
        H, hd = cfg.n_head, cfg.n_embd // cfg.n_head
        max_len = -(-max_len // PANEL) * PANEL  # whole panels of keys
        self.kT = torch.zeros(cfg.n_layer, slots, H, max_len // PANEL, hd, PANEL, dtype=dtype)
        self.v = torch.zeros(cfg.n_layer, slots, H, hd // PANEL, max_len, PANEL, dtype=dtype)
        self.max_len = max_len
        self.lengths = [0] * slots
        self.scratch = Scratch()  # the blocks' working rows, for as long as the cache lives
        # Slot s reads its first shared[s] positions (whole panels) from slot source[s].
        self.source = torch.arange(slots)  # (slots,) int64
        self.shared = torch.zeros(slots, dtype=torch.int64)  # (slots,) int64

    def shares(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(source, shared) for `kernel_blocks.blocks`, or None when no slot shares."""
        return (self.source, self.shared) if bool(self.shared.any()) else None

    @torch.inference_mode()  # in-place, whether the cache was made inside inference mode or not
    def share(self, dst: int, src: int) -> None:
        """Slot dst takes slot src's positions (its prompt, just written): the
        whole panels by reference, the rest by copy. src must hold its own."""
        if dst == src or int(self.shared[src]):
            raise ValueError("a slot shares the positions of another slot that holds its own")
        self.release(dst)
        length = self.lengths[src]
        whole = length // PANEL * PANEL
        self.kT[:, dst, :, whole // PANEL : -(-length // PANEL)] = \
            self.kT[:, src, :, whole // PANEL : -(-length // PANEL)]
        self.v[:, dst, :, :, whole:length] = self.v[:, src, :, :, whole:length]
        self.source[dst], self.shared[dst] = (src if whole else dst), whole
        self.lengths[dst] = length

    @torch.inference_mode()
    def release(self, slot: int) -> None:
        """Before slot is written from position 0 again: it holds its own from
        now on, and the slots that read its positions get their own copy first."""
        for d in (self.source == slot).nonzero().flatten().tolist():
            n = int(self.shared[d])
            if d != slot and n:
                self.kT[:, d, :, : n // PANEL] = self.kT[:, slot, :, : n // PANEL]
                self.v[:, d, :, :, :n] = self.v[:, slot, :, :, :n]
                self.source[d], self.shared[d] = d, 0
        self.source[slot], self.shared[slot] = slot, 0

    @property
    def slots(self) -> int:
        return len(self.lengths)

    def keys(self, layer: int, slot: int, end: int) -> torch.Tensor:
        """Slot `slot`'s keys 0..end-1 of one layer as (H, end, hd) (a copy; tests)."""
        k = self.kT[layer, slot].float()  # (H, P, hd, 16)
        return k.permute(0, 1, 3, 2).reshape(k.shape[0], -1, k.shape[2])[:, :end]

    def values(self, layer: int, slot: int, end: int) -> torch.Tensor:
        """Slot `slot`'s values 0..end-1 of one layer as (H, end, hd) (a copy; tests)."""
        v = self.v[layer, slot].float()  # (H, hd/16, max_len, 16)
        return v.permute(0, 2, 1, 3).reshape(v.shape[0], v.shape[2], -1)[:, :end]
