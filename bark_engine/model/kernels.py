"""The compiled CPU kernels (`_kernels.c`) seen from torch: packed weights, the
batch-invariant linear product and the attention over a kernel-layout KV cache
(whole GPT blocks, which chain them in one call, are in `kernel_blocks`).

A row's result never depends on the other rows of the call or on the thread
count (see the C file's header for the exact order of operations). This
module checks shapes, dtypes and contiguity before handing addresses to C,
and says whether the kernels run here (`status`): they are built at install
time when a C compiler is present, and used where the CPU has AVX2 and FMA
or AVX-512 (or, on other CPUs, through their generic C path).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch
import torch.nn.functional as F

try:  # built by setup.py when a compiler is present; optional
    from . import _kernels as _native
except ImportError as exc:  # pragma: no cover - depends on the install
    _native = None
    _WHY_NOT = f"not built ({exc})"
else:
    _WHY_NOT = ""
# Fixed for the process (probed once when the module loads), read on every product.
_BF16_DOT = _native is not None and bool(_native.bf16_dot())

PANEL = 16  # outputs per weight panel (the C file's PW)
WEIGHT_KINDS = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2, torch.int8: 3}
MAX_KEYS = 4096  # the C attention's scratch per (query, head)
KV_KINDS = {torch.float32: 0, torch.bfloat16: 1}  # the KV cache's dtypes (the C weight kinds)


@dataclass(frozen=True)
class KernelStatus:
    """Which CPU path the engine takes, in words for `bark-tui info`."""

    available: bool
    isa: str | None  # "avx512" | "avx2" | "generic" | None
    threads: str  # "OpenMP" | "single thread" | ""
    reason: str  # why not, when not available
    extras: tuple[str, ...] = ()  # "VNNI" (int8 rows), "BF16 dot" (bf16 rows), "AMX" (both)

    def describe(self) -> str:
        if not self.available:
            return f"pure-torch fallback: compiled kernels {self.reason}"
        return f"compiled kernels ({', '.join((self.isa, self.threads, *self.extras))})"


def status() -> KernelStatus:
    """Whether the compiled kernels run on this machine, and with what."""
    if _native is None:
        return KernelStatus(False, None, "", _WHY_NOT)
    isa = _native.isa()
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    if isa == "generic" and x86:  # fmaf in software: slower than torch
        return KernelStatus(False, None, "", "built, but this CPU lacks AVX2/FMA")
    extras = tuple(name for name, here in (("VNNI", _native.vnni()),
                                           ("BF16 dot", _native.bf16_dot()),
                                           ("AMX", _native.amx())) if here)
    return KernelStatus(True, isa, "OpenMP" if _native.openmp() else "single thread", "", extras)


def available() -> bool:
    return status().available


def set_isa(name: str) -> None:
    """Use "generic", "avx2" or "avx512" (up to this CPU's best) from now on (tests
    compare the paths: they give the same bits)."""
    if _native is None:
        raise RuntimeError("the compiled kernels are not built")
    _native.set_isa(name)


def isa() -> str | None:
    return None if _native is None else _native.isa()


def bf16_dot() -> bool:
    """Whether this CPU has AVX512-BF16 dot products: then bf16 weights multiply the
    rows of prefills and fine passes rounded to bf16 (`linear(..., narrow_rows=True)`)."""
    return _BF16_DOT


def use_bf16_reference(on: bool) -> None:
    """Run bf16 x bf16 products on the C reference of vdpbf16ps (tests compare)."""
    if _native is None:
        raise RuntimeError("the compiled kernels are not built")
    _native.bf16_reference(bool(on))


def amx() -> bool:
    """Whether narrow rows (`linear(..., narrow_rows=True)`) and their attention
    (`attend(..., narrow=True)`) run on AMX tiles: int8 rows give the same integer
    sums as on VNNI, bf16 rows and the attention the tiles' own sums."""
    return _native is not None and bool(_native.amx())


def amx_here() -> bool:
    """Whether this CPU has AMX tiles for int8 and bf16 and Linux lets us use them."""
    return _native is not None and bool(_native.amx_here())


def use_amx(on: bool) -> None:
    """Run narrow rows on AMX tiles (where the CPU and Linux allow it) or not (tests
    compare the paths)."""
    if _native is None:
        raise RuntimeError("the compiled kernels are not built")
    _native.set_amx(bool(on))


def vnni() -> bool:
    """Whether int8 x int8 products (`linear(..., int8_rows=True)`) run on AVX512-VNNI
    (else on the generic C path: the same integer sums, slower)."""
    return _native is not None and bool(_native.vnni())


@dataclass(frozen=True)
class Packed:
    """A linear layer's weight in column panels, for `linear`.

    `panels` (n_panels, n_in, 16) holds output j of the layer at
    [j // 16, :, j % 16], zero-padded past `n_out`; `bias` (n_panels·16,)
    float32, zero-padded, or None; `scale` (n_panels·16,) float32, the
    per-output scale of int8 panels (None for the float kinds). One
    contiguous stream per panel is what makes the product read its weights at
    the memory's speed.
    """

    panels: torch.Tensor
    bias: torch.Tensor | None
    n_out: int
    n_in: int
    scale: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if (self.panels.dtype == torch.int8) != (self.scale is not None):
            raise ValueError("int8 panels need a scale per output; float panels take none")
        # What every product passes to C, worked out once (a decode step makes ~50).
        object.__setattr__(self, "_args", (
            self.panels.data_ptr(), WEIGHT_KINDS[self.panels.dtype],
            self.n_in * PANEL * self.panels.element_size(),
            0 if self.scale is None else self.scale.data_ptr(),
            0 if self.bias is None else self.bias.data_ptr()))

    @property
    def dtype(self) -> torch.dtype:
        return self.panels.dtype

    @property
    def nbytes(self) -> int:
        extra = 0 if self.scale is None else self.scale.numel() * 4
        return self.panels.numel() * self.panels.element_size() + extra


def pack(weight: torch.Tensor, bias: torch.Tensor | None = None,
         dtype: torch.dtype | None = None, scale: torch.Tensor | None = None) -> Packed:
    """(n_out, n_in) weight → panels in `dtype` (the weight's own by default).

    An int8 weight (already quantised, see `model.quantize`) comes with its
    (n_out,) float32 `scale`: output j is (x · weight[j]) · scale[j].
    """
    if weight.dim() != 2:
        raise ValueError(f"a linear weight is 2-D, not {tuple(weight.shape)}")
    dtype = dtype or weight.dtype
    if dtype not in WEIGHT_KINDS:
        raise ValueError(f"packed weights are float32, bfloat16, float16 or int8, not {dtype}")
    if (dtype == torch.int8) != (scale is not None) or (
            dtype == torch.int8 and weight.dtype != torch.int8):
        raise ValueError("int8 panels are packed from an int8 weight and its scales")
    n_out, n_in = weight.shape
    n_panels = -(-n_out // PANEL)
    pad = n_panels * PANEL - n_out
    with torch.no_grad():
        w = weight.detach().to(dtype)
        if pad:
            w = F.pad(w, (0, 0, 0, pad))
        panels = w.view(n_panels, PANEL, n_in).transpose(1, 2).contiguous()  # (P, in, 16)
        b = s = None
        if bias is not None:
            b = F.pad(bias.detach().float(), (0, pad)).contiguous()
        if scale is not None:
            s = F.pad(scale.detach().float().reshape(n_out), (0, pad), value=1.0).contiguous()
    return Packed(panels, b, n_out, n_in, s)


def unpack(p: Packed) -> torch.Tensor:
    """The (n_out, n_in) float32 weight back (tests, and the fine model's tied heads);
    int8 panels come back dequantised (the values the products use)."""
    w = p.panels.float().transpose(1, 2).reshape(-1, p.n_in)
    if p.scale is not None:
        w = w * p.scale[:, None]
    return w[: p.n_out]


def linear(x: torch.Tensor, p: Packed, cols: slice | None = None,
           threads: int | None = None, narrow_rows: bool = False) -> torch.Tensor:
    """x (M, n_in) float32 → (M, n_out) float32 (or the output columns `cols`).

    Row m of the result is the same bits whatever the other rows and the
    thread count. `cols` reads only the panels that cover those outputs.
    `narrow_rows`: for int8 panels, quantise each row of x to int8 on its own
    and multiply in exact integer sums (AMX tiles or AVX512-VNNI where the CPU
    has them: the same sums); for bf16 panels on a CPU with AVX512-BF16
    (`bf16_dot()`), round each row to bf16 and sum pairs as vdpbf16ps does, or
    on AMX tiles (`amx()`: their own sums); no effect otherwise. Faster for many
    rows and another result than float rows, so a caller chooses it by the kind
    of work (prefills), never by the number of rows.
    """
    if _native is None:
        raise RuntimeError("the compiled kernels are not built")
    if x.dim() != 2 or x.shape[1] != p.n_in or x.dtype != torch.float32 or x.device.type != "cpu":
        raise ValueError(f"x must be (M, {p.n_in}) float32 on the CPU, got {x.dtype} "
                         f"{tuple(x.shape)} on {x.device}")
    if x.stride(1) != 1:
        x = x.contiguous()
    start, stop = 0, p.n_out
    if cols is not None:
        start, stop, step = cols.indices(p.n_out)
        if step != 1 or stop <= start:
            raise ValueError(f"cols must be a non-empty slice with step 1, got {cols}")
    first = start // PANEL
    n_panels = -(-stop // PANEL) - first
    ncols = stop - first * PANEL
    M = x.shape[0]
    y = torch.empty(M, ncols, dtype=torch.float32)
    ptr, kind, panel_bytes, scale, bias = p._args
    if M and narrow_rows and narrows(p):
        _native.linear_rows(kind, x.data_ptr(), x.stride(0), M, p.n_in,
                            ptr + first * panel_bytes, n_panels, y.data_ptr(), ncols,
                            scale and scale + 4 * first * PANEL, bias and bias + 4 * first * PANEL,
                            ncols, threads or torch.get_num_threads())
    elif M:
        _native.linear(x.data_ptr(), x.stride(0), M, p.n_in, ptr + first * panel_bytes, kind,
                       n_panels, y.data_ptr(), ncols, scale and scale + 4 * first * PANEL,
                       bias and bias + 4 * first * PANEL, ncols,
                       threads or torch.get_num_threads())
    skip = start - first * PANEL
    return y[:, skip:] if skip else y


def narrows(p: Packed) -> bool:
    """Whether `linear(..., narrow_rows=True)` narrows the rows for these panels:
    int8 panels (K a multiple of 4), and bf16 panels where the CPU has AVX512-BF16
    (K even); the other kinds always take float rows."""
    return (p.dtype == torch.int8 and p.n_in % 4 == 0) or (
        p.dtype == torch.bfloat16 and p.n_in % 2 == 0 and _BF16_DOT)


def attend(
    qkv: torch.Tensor,  # (N, 3C) float32: each row's query, key and value
    kT: torch.Tensor,  # (slots, H, max_len/16, hd, 16) float32|bf16: one layer's keys, in panels
    v: torch.Tensor,  # (slots, H, hd/16, max_len, 16) same dtype: one layer's values, in panels
    slots: torch.Tensor,  # (N,) int64: the cache slot of each row
    pos: torch.Tensor,  # (N,) int64: where each row's key and value are written
    lens: torch.Tensor,  # (N,) int64: how many keys each row attends to (0..lens-1)
    qrows: torch.Tensor,  # (NQ,) int64: the rows whose attention output is wanted
    n_head: int,
    threads: int | None = None,
    validate: bool = True,
    narrow: bool = False,
) -> torch.Tensor:
    """Write every row's key and value into the cache, then attend: (NQ, C) float32.

    `narrow` (the attention of narrow rows: prefills and fine passes of int8
    or bf16 weights): over a bf16 cache with heads 64 wide, on AMX tiles where
    `amx()`, queries and probabilities rounded to bf16; no effect otherwise.

    A causal row at position p has lens = p + 1; a non-causal window of T
    rows has lens = T for all. Each (query, head) is one fixed computation,
    so a row's output does not depend on the other rows. A caller that has
    checked the index tensors already (the kernel stepper, once per step for
    all layers) passes `validate=False`.
    """
    if _native is None:
        raise RuntimeError("the compiled kernels are not built")
    N, C3 = qkv.shape
    C = C3 // 3
    S, H, key_panels, hd, _ = kT.shape
    max_len = key_panels * PANEL
    if (n_head != H or H * hd != C or hd % PANEL or kT.shape[-1] != PANEL
            or max_len > MAX_KEYS):
        raise ValueError(f"attention shapes do not fit: qkv {tuple(qkv.shape)}, keys "
                         f"{tuple(kT.shape)}, {n_head} heads")
    if (v.shape != (S, H, hd // PANEL, max_len, PANEL)
            or not (kT.is_contiguous() and v.is_contiguous())):
        raise ValueError("the cache's keys and values must be contiguous panels of one shape")
    if qkv.dtype != torch.float32 or kT.dtype not in KV_KINDS or v.dtype != kT.dtype:
        raise ValueError("the kernel attention takes float32 rows and a float32 or bfloat16 "
                         "cache")
    if validate:
        check_rows(slots, pos, lens, qrows, N, S, max_len)
    if qkv.stride(1) != 1:
        qkv = qkv.contiguous()
    NQ = qrows.shape[0]
    y = torch.empty(NQ, C, dtype=torch.float32)
    _native.attend(qkv.data_ptr(), qkv.stride(0), N, C, H, kT.data_ptr(), v.data_ptr(),
                   kT.stride(0), v.stride(0), max_len, max_len, slots.data_ptr(), pos.data_ptr(),
                   lens.data_ptr(), qrows.data_ptr(), NQ, y.data_ptr(), C,
                   threads or torch.get_num_threads(), KV_KINDS[kT.dtype], int(narrow))
    return y


def check_rows(slots: torch.Tensor, pos: torch.Tensor, lens: torch.Tensor, qrows: torch.Tensor,
               n_rows: int, n_slots: int, max_len: int) -> None:
    """Raise ValueError unless every index of an `attend` call lies inside the cache."""
    for name, t in (("slots", slots), ("pos", pos), ("lens", lens), ("qrows", qrows)):
        if t.dtype != torch.int64 or not t.is_contiguous() or t.dim() != 1:
            raise ValueError(f"{name} must be 1-D contiguous int64")
    if not slots.shape[0] == pos.shape[0] == lens.shape[0] == n_rows:
        raise ValueError("slots, pos and lens need one entry per row")
    bad = n_rows and (
        int(slots.min()) < 0 or int(slots.max()) >= n_slots or int(pos.min()) < 0
        or int(pos.max()) >= max_len or int(lens.min()) < 1 or int(lens.max()) > max_len
    )
    if bad or (qrows.numel() and (int(qrows.min()) < 0 or int(qrows.max()) >= n_rows)):
        raise ValueError("a row's slot, position, length or query index is outside the cache")
