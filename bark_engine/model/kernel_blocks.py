"""Whole GPT blocks in one call into the compiled kernels (`_kernels.c`'s `blocks_impl`).

`block_plan` turns a stack of blocks' packed weights into a table of
addresses once per stepper; `blocks` runs every block of it over N rows:
the norms, products, attention, GELU and residuals of each row in one fixed
order (see the C file), so a row's values depend on that row alone. The
shapes, dtypes and indices are checked here before any address reaches C.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .kernels import KV_KINDS, MAX_KEYS, PANEL, Packed, _native, check_rows, narrows

SCRATCH_PER_ROW = 8  # floats of scratch per row and model width (the C blocks' layout)


class Scratch:
    """The working rows of `blocks` calls, kept by their caller and grown when a
    call needs more: a fresh buffer per call would be tens of MB of new pages for
    a prefill, each faulted in and zeroed by the kernel before it is written."""

    def __init__(self) -> None:
        self._buf = torch.empty(0, dtype=torch.float32)

    def floats(self, n: int) -> torch.Tensor:
        """At least n contiguous float32 (contents undefined)."""
        if self._buf.numel() < n:
            self._buf = torch.empty(0, dtype=torch.float32)  # the old one goes first
            self._buf = torch.empty(n, dtype=torch.float32)
        return self._buf


class BlockWeights(Protocol):
    """One GPT block as `block_plan` reads it: two layer norms' (weight, bias)
    (either may be None) and four packed products."""

    ln_1: tuple[torch.Tensor | None, torch.Tensor | None]
    qkv: Packed  # C → 3C
    proj: Packed  # C → C
    ln_2: tuple[torch.Tensor | None, torch.Tensor | None]
    fc: Packed  # C → F
    out: Packed  # F → C


def _ptr(t: torch.Tensor | None, n: int) -> int:
    if t is None:
        return 0
    if t.dtype != torch.float32 or t.shape != (n,) or not t.is_contiguous():
        raise ValueError(f"a layer norm's weight and bias are ({n},) contiguous float32")
    return t.data_ptr()


@dataclass(frozen=True)
class BlockPlan:
    """What `blocks` passes to C for a stack of blocks, worked out once per stepper:
    `table` (n_layer, 36) int64, the addresses and sizes of the C file's BlockDesc,
    and the blocks' width C. The layers' tensors must outlive it."""

    table: torch.Tensor
    width: int

    @property
    def n_layer(self) -> int:
        return self.table.shape[0]


def block_plan(layers: Sequence[BlockWeights]) -> BlockPlan:
    """The plan of these layers (ValueError unless each is a block of one width)."""
    if not layers:
        raise ValueError("a plan needs at least one block")
    C = layers[0].qkv.n_in
    rows = []
    for layer in layers:
        shapes = ((layer.qkv, C, 3 * C), (layer.proj, C, C), (layer.fc, C, layer.fc.n_out),
                  (layer.out, layer.fc.n_out, C))
        if any(p.n_in != i or p.n_out != o for p, i, o in shapes) or layer.fc.n_out > 4 * C:
            raise ValueError("a block's products must be C → 3C, C → C, C → F and F → C, "
                             "with F at most 4C")
        row = []
        for norm, products in ((layer.ln_1, shapes[:2]), (layer.ln_2, shapes[2:])):
            row += [_ptr(norm[0], C), _ptr(norm[1], C)]
            for p, _, _ in products:
                ptr, kind, _, scale, bias = p._args
                row += [ptr, kind, p.panels.shape[0], p.n_out, p.n_in, scale, bias,
                        int(narrows(p))]
        rows.append(row)
    return BlockPlan(torch.tensor(rows, dtype=torch.int64).reshape(len(rows), 36), C)


def blocks(
    plan: BlockPlan,  # from `block_plan`
    x: torch.Tensor,  # (N, C) float32 contiguous: the rows' input; overwritten
    kT: torch.Tensor,  # (n_layer, slots, H, max_len/16, hd, 16): every layer's keys
    v: torch.Tensor,  # (n_layer, slots, H, hd/16, max_len, 16): every layer's values
    slots: torch.Tensor,  # (N,) int64, as for `attend`
    pos: torch.Tensor,  # (N,) int64
    lens: torch.Tensor,  # (N,) int64
    wanted: torch.Tensor | None,  # (NW,) int64 rows the last block keeps (None: all)
    n_head: int,
    eps: float,
    narrow_rows: bool = False,
    threads: int | None = None,
    scratch: Scratch | None = None,  # kept across calls by the caller (None: a fresh one)
    shares: tuple[torch.Tensor, torch.Tensor] | None = None,  # (source, shared) per slot
) -> torch.Tensor:
    """Every block of a GPT over the rows x in one call: (NW, C), or (N, C).

    Each block is ln_1 → qkv → attention (each row's key and value written to
    the cache first) → proj, + x → ln_2 → fc → GELU → out, + x, with the norms,
    GELU and residuals in C too (see the C file). The indices are checked as
    `check_rows` does. `narrow_rows` as for `linear` (and `attend`'s `narrow`).
    An empty `wanted` still writes every row's keys and values (and computes
    them all, into x).
    `scratch` holds the call's working rows (see `Scratch`). `shares`: slot s
    reads its first shared[s] keys and values (a multiple of 16) from slot
    source[s], both (slots,) int64 (see `KernelCache.share`); the same bits as a
    copy of its own. A source holds its own positions, and no row of the call
    lies inside its slot's shared ones (ValueError otherwise).
    """
    if _native is None:
        raise RuntimeError("the compiled kernels are not built")
    if x.dim() != 2:
        raise ValueError("blocks take (N, C) rows")
    N, C = x.shape
    n_layer = plan.n_layer
    if (x.dtype != torch.float32 or not x.is_contiguous() or x.device.type != "cpu"
            or plan.width != C):
        raise ValueError(f"blocks take contiguous float32 (N, C) rows on the CPU, C the "
                         f"plan's width C = {plan.width}, got {tuple(x.shape)}")
    if kT.dim() != 6 or kT.shape[0] != n_layer or v.dim() != 6 or v.shape[0] != n_layer:
        raise ValueError(f"the cache has {kT.shape[0]} layers, the plan {n_layer}")
    S, H, key_panels, hd, width = kT.shape[1:]
    max_len = key_panels * PANEL
    if (n_head != H or H * hd != C or hd % PANEL or width != PANEL or max_len > MAX_KEYS
            or v.shape != (n_layer, S, H, hd // PANEL, max_len, PANEL)
            or not (kT.is_contiguous() and v.is_contiguous()) or kT.device.type != "cpu"
            or kT.dtype not in KV_KINDS or v.dtype != kT.dtype):
        raise ValueError(f"the cache does not fit the rows: x {tuple(x.shape)}, keys "
                         f"{tuple(kT.shape)}, {n_head} heads")
    if wanted is not None and wanted.shape[0] > N:
        raise ValueError(f"the last block keeps at most the call's {N} rows")
    every = torch.arange(N)
    check_rows(slots, pos, lens, every if wanted is None else wanted, N, S, max_len)
    NW = N if wanted is None else wanted.shape[0]
    out = x if wanted is None else torch.empty(NW, C, dtype=torch.float32)
    src = shared = 0
    if shares is not None:
        source, prefix = shares
        for t in shares:
            if t.dtype != torch.int64 or t.shape != (S,) or not t.is_contiguous():
                raise ValueError(f"shares are two ({S},) contiguous int64 tensors, one per slot")
        if (S and (int(source.min()) < 0 or int(source.max()) >= S or int(prefix.min()) < 0
                   or int(prefix.max()) > max_len or bool((prefix % PANEL).any()))):
            raise ValueError("a shared prefix comes from a slot of the cache and is whole "
                             "panels of keys")
        if bool(prefix[source[prefix > 0]].any()) or bool((pos < prefix[slots]).any()):
            raise ValueError("a shared prefix comes from a slot that holds its own, and a "
                             "call writes past it")
        src, shared = source.data_ptr(), prefix.data_ptr()
    work = (scratch if scratch is not None else Scratch()).floats(SCRATCH_PER_ROW * N * C)
    es = kT.element_size()
    _native.blocks(plan.table.data_ptr(), n_layer, x.data_ptr(), N, C, H, float(eps), kT.data_ptr(),
                   v.data_ptr(), kT.stride(0) * es, v.stride(0) * es, kT.stride(1),
                   v.stride(1), max_len, slots.data_ptr(), pos.data_ptr(), lens.data_ptr(),
                   every.data_ptr(), 0 if wanted is None else wanted.data_ptr(), NW,
                   out.data_ptr(), work.data_ptr(), threads or torch.get_num_threads(),
                   KV_KINDS[kT.dtype], int(narrow_rows), src, shared)
    return out
