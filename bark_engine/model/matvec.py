"""Weight-reading primitives of the decode path on the CPU: the thread-split
matrix-vector product (`linear`) and the column-major weight layout it reads
(`use_decode_layout`). Kept apart from the model classes that call them.
"""

from __future__ import annotations

import functools
import platform
import threading
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .pages import MappedPages


@functools.lru_cache(maxsize=64)
def n_parts(n_in: int, threads: int) -> int:
    """How many slices of the input dimension `linear` cuts: one per thread,
    fewer when the width does not divide evenly."""
    parts = max(1, min(threads, 16))
    while n_in % parts:
        parts -= 1
    return parts


# Weight dtypes `use_half_weights` stores on the CPU, with float32 activations.
HALF_DTYPES = (torch.bfloat16, torch.float16)

# Rows from which a CPU float32 `linear` goes to oneDNN: its AVX-512 matmul
# kernels did the prefill and fine-pass products (257-1024 rows) in ~15% less
# CPU time than the BLAS behind `F.linear` on the AMD EPYC here.
ONEDNN_MIN_ROWS = 32
# ... and only for real-sized weights: on small matrices (the tiny test models)
# oneDNN's per-call weight reordering costs far more than the product (~15x).
ONEDNN_MIN_WEIGHT = 1 << 18


@functools.cache
def _onednn_linear():
    """oneDNN's linear op when this torch build has it, else None."""
    try:
        if torch.backends.mkldnn.is_available():
            return torch.ops.mkldnn._linear_pointwise.default
    except (AttributeError, RuntimeError):
        pass
    return None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, with faster CPU paths for many rows and for one.

    Many rows (a prefill, a fine pass) are compute-bound: on CPU in float32
    they go to oneDNN's matmul (see `ONEDNN_MIN_ROWS`).

    Decoding one token is a matrix-vector product bound by reading the weights,
    and a plain `F.linear` on one row reads them on one thread. With the weight
    stored column-major (see `use_decode_layout`) its transpose (in, out) is
    contiguous; cut into one slice of the input dimension per thread, `bmm`
    reads the slices in parallel and the partial products are summed.
    """
    n_out, n_in = weight.shape
    if weight.dtype != x.dtype and x.device.type == "cpu":  # half weights (`use_half_weights`)
        y = _half_linear(x, weight)
        return y if bias is None else y + bias
    if (
        x.numel() >= ONEDNN_MIN_ROWS * n_in
        and weight.numel() >= ONEDNN_MIN_WEIGHT
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        # whole matrices only: on a row slice of a column-major weight oneDNN took ~1000x longer
        and (weight.is_contiguous() or weight.t().is_contiguous())
        and _onednn_linear() is not None
    ):
        return _onednn_linear()(x, weight, bias, "none", [], "")
    if x.numel() != n_in or weight.stride(0) != 1 or x.device.type != "cpu":
        return F.linear(x, weight, bias)
    parts = n_parts(n_in, torch.get_num_threads())
    slices = weight.t().view(parts, n_in // parts, n_out)  # (P, in/P, out), a view
    y = torch.bmm(x.reshape(parts, 1, n_in // parts), slices).sum(0)  # (1, out)
    if bias is not None:
        y = y + bias
    return y.view(*x.shape[:-1], n_out)


def use_decode_layout(model: nn.Module) -> nn.Module:
    """Store every Linear weight column-major, in place: same shapes, names and
    values, one matrix copied at a time.

    Matrix-vector products read such weights faster on CPU, and `linear` can
    split them across threads; on other devices this does nothing. Idempotent
    and cheap once done. Weights tied to
    an embedding (the fine model's heads) stay row-major for fast lookups.

    A weight that was a view of a memory-mapped checkpoint (see
    `checkpoints.load_checkpoint`) has its file pages handed back right after
    its copy (`pages.MappedPages`), so the process holds each weight once, and
    at most one matrix twice while converting, instead of keeping the read
    original resident next to the copy.
    """
    todo = [
        w for w in _untied_linear_weights(model)
        # float32 only: half weights have their own layout (`use_half_weights`)
        if w.dtype == torch.float32 and w.stride(0) != 1
    ]
    # Only the CPU mat-vec gains from it; GPUs multiply either layout alike.
    if not todo or todo[0].device.type != "cpu":
        return model
    _replace_each(todo, lambda original: original.t().contiguous().t())
    return model


def _replace_each(
    weights: list[torch.Tensor], convert: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    """`w.data = convert(w.data)` for each weight, one at a time, handing back the
    mapped file pages of each original once its copy exists (`pages.MappedPages`),
    so at most one matrix is held twice."""
    mapped = MappedPages()  # reads /proc/self/smaps: only when there is work to do
    with torch.inference_mode(False), torch.no_grad():
        for w in weights:
            original = w.data
            w.data = convert(original)
            mapped.release(original)
            del original


def _untied_linear_weights(model: nn.Module) -> list[torch.Tensor]:
    """Every Linear weight but those tied to an embedding (the fine model's heads)."""
    tied = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return [
        m.weight for m in model.modules()
        if isinstance(m, nn.Linear) and id(m.weight) not in tied
    ]


# The oneDNN switch behind `torch.backends.mkldnn.flags`, called directly: the
# public context manager costs ~9 µs a call (~0.45 ms a decode step). Private
# API, so looked up once and done without where a torch build lacks it.
_GET_MKLDNN = getattr(torch._C, "_get_mkldnn_enabled", None)
_SET_MKLDNN = getattr(torch._C, "_set_mkldnn_enabled", None) if _GET_MKLDNN else None
# Held around every bf16 product: while one thread has oneDNN switched off for a
# one-row product, another thread's many-row bf16 product must not run, or it
# would take torch's own kernel, round in another order and give other tokens
# for the same seed (two generations can overlap in the studio).
_ONEDNN_SWITCH = threading.Lock()


def _half_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T for a float32 x and a bf16/fp16 weight, in x's dtype, on the
    fastest of torch's CPU paths measured here. The input is rounded to the
    weight's dtype for the product; sums are float32 inside every kernel used.

    One row (a decode step): torch's own half-precision gemv (float32
    accumulation, threaded) read the weights at ~24-33 GB/s, oneDNN at ~11.
    For fp16, `torch.mv` reaches it directly; for bf16 only F.linear with
    oneDNN switched off does, and that switch is process-wide (`_SET_MKLDNN`,
    ~0.1 µs): it is turned off for that call only, under `_ONEDNN_SWITCH`,
    and restored at once. (Other torch work on another thread in that instant,
    e.g. a voice audition's EnCodec, may take a slower kernel; the engine's own
    bf16 products wait for the lock, so tokens never depend on timing.)

    Many rows in bf16 belong to oneDNN (bf16 GEMM ran at ~2.7x the float32
    rate). fp16 has no fast many-row kernel on CPUs without AVX512-FP16 (~5x
    slower than float32 here), so its weight is widened to float32 (exactly)
    for those products instead.
    """
    one_row = x.numel() == weight.shape[1]
    if weight.dtype == torch.float16:
        if one_row:
            y = torch.mv(weight, x.reshape(-1).to(weight.dtype))  # (out,)
            return y.view(*x.shape[:-1], -1).to(x.dtype)
        return F.linear(x, weight.to(x.dtype))
    h = x.to(weight.dtype)
    with _ONEDNN_SWITCH:
        if not (one_row and _SET_MKLDNN is not None and _GET_MKLDNN()):
            return F.linear(h, weight).to(x.dtype)
        _SET_MKLDNN(False)
        try:
            return F.linear(h, weight).to(x.dtype)
        finally:
            _SET_MKLDNN(True)


def use_half_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Store every untied Linear weight in `dtype` (bf16 or fp16), in place; the
    rest of the model (embeddings, norms, biases, tied heads) stays float32.

    This is what "bfloat16 on the CPU" means here. Matrix products are what
    half precision speeds up on a CPU: decoding reads half the bytes per token,
    and prefills and the fine passes run on bf16 dot-product instructions
    (AVX512-BF16) at about twice the float32 rate. Everything else ran slower
    in bf16 on the CPU here (attention over a bf16 KV cache took ~2.5x as long
    as float32), so activations, attention and the KV cache stay float32, and
    `linear` casts its input to the weight's dtype and the product back.

    Half weights stay row-major (`_half_linear` reads that layout fastest).
    Mapped file pages of each original are handed back as it is copied, as in
    `use_decode_layout`. CPU only: on a GPU the whole model is cast instead.
    """
    if dtype not in HALF_DTYPES:
        raise ValueError(f"half weights are bfloat16 or float16, not {dtype}")
    todo = [w for w in _untied_linear_weights(model) if w.dtype != dtype]
    if not todo or todo[0].device.type != "cpu":
        return model
    _replace_each(todo, lambda original: original.to(dtype).contiguous())
    return model


def half_weights_advice(dtype: torch.dtype, device: torch.device) -> str | None:
    """A one-line caution when half weights on this CPU are likely slower, else None.

    Their gain comes from native bf16 dot products (AVX512-BF16, e.g. AMD Zen 4,
    Intel Sapphire Rapids); without them torch emulates bf16 products, and
    float16 products have no fast many-row CPU kernel at all (~5x slower than
    float32 where measured). Private torch probes, so an unknown answer says nothing.
    """
    if device.type != "cpu" or dtype not in HALF_DTYPES:
        return None
    if dtype == torch.float16:
        return ("float16 on the CPU is no faster than float32 (its many-row products "
                "run in float32); bfloat16 is the faster choice where the CPU has AVX512-BF16")
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    if x86 and probe is not None and not probe():  # ARM has its own bf16: no verdict there
        return ("this CPU has no native bfloat16 (AVX512-BF16): bfloat16 will likely run "
                "slower than float32 here")
    return None
