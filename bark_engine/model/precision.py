"""How a model's linear layers hold and multiply their weights, per device and dtype.

- On the CPU with the compiled kernels (`kernels.available()`), every linear
  layer becomes a `PackedLinear`: its weight in column panels, in float32,
  bfloat16, float16 or int8 (per-output scales, `quantize`), multiplied by
  the batch-invariant kernel (float32 sums; a narrow weight is widened
  exactly as it is read). Embeddings, norms, attention and the KV cache stay
  float32.
- On the CPU without them (the pure-torch fallback), a float32 weight is
  stored column-major so one-row products split across threads (`Linear`),
  a half weight stays row-major for torch's own kernels, and an int8 weight
  is held dequantised in float32 (the same values, float32's speed).
- On a GPU the whole model takes the dtype; torch multiplies.

`prepare_model` makes that choice once, at load. Each original weight that was
a view of a memory-mapped checkpoint has its file pages handed back as soon
as its new copy exists (`pages.MappedPages`), so the process holds the
weights once.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import kernels
from .pages import MappedPages
from .quantize import dequantize, quantize_rows

# Weight dtypes the CPU keeps in half precision, with float32 activations.
HALF_DTYPES = (torch.bfloat16, torch.float16)
# Every precision by the name `--dtype`, the settings and EngineConfig use
# (options.PRECISIONS lists them with "auto", without importing torch).
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "int8": torch.int8}

# Rows from which a CPU float32 product of the fallback goes to oneDNN (it did
# prefills and fine passes in ~15 % less CPU time than the BLAS behind
# F.linear), and only for real-sized weights: on small matrices its per-call
# weight reordering costs more than the product.
ONEDNN_MIN_ROWS = 32
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


@functools.lru_cache(maxsize=64)
def n_parts(n_in: int, threads: int) -> int:
    """How many slices of the input dimension a one-row fallback product cuts:
    one per thread, fewer when the width does not divide evenly."""
    parts = max(1, min(threads, 16))
    while n_in % parts:
        parts -= 1
    return parts


def torch_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, weight, bias)` with the fallback's faster CPU paths.

    A half weight gets its input rounded to its dtype and gives float32 back.
    Many float32 rows go to oneDNN. One row with a column-major weight (see
    `use_decode_layout`) is cut into one slice of the input per thread and
    multiplied with `bmm`, which reads the slices in parallel.
    """
    if x.device.type != "cpu":
        return F.linear(x, weight, bias)
    if weight.dtype != x.dtype:
        y = F.linear(x.to(weight.dtype), weight).to(x.dtype)
        return y if bias is None else y + bias
    n_out, n_in = weight.shape
    if (
        x.numel() >= ONEDNN_MIN_ROWS * n_in
        and weight.numel() >= ONEDNN_MIN_WEIGHT
        and x.dtype == torch.float32
        # whole matrices only: on a row slice of a column-major weight oneDNN took ~1000x longer
        and (weight.is_contiguous() or weight.t().is_contiguous())
        and _onednn_linear() is not None
    ):
        return _onednn_linear()(x, weight, bias, "none", [], "")
    if x.numel() != n_in or weight.stride(0) != 1:
        return F.linear(x, weight, bias)
    parts = n_parts(n_in, torch.get_num_threads())
    slices = weight.t().view(parts, n_in // parts, n_out)  # (P, in/P, out), a view
    y = torch.bmm(x.reshape(parts, 1, n_in // parts), slices).sum(0)  # (1, out)
    if bias is not None:
        y = y + bias
    return y.view(*x.shape[:-1], n_out)


class Linear(nn.Linear):
    """`nn.Linear` (the checkpoints' parameter names) whose product can be limited
    to some outputs (`cols`) and takes the fallback's CPU paths (`torch_linear`)."""

    def forward(self, x: torch.Tensor, cols: slice | None = None) -> torch.Tensor:
        w, b = self.weight, self.bias
        if cols is not None:
            w = w[cols]
            b = None if b is None else b[cols]
        return torch_linear(x, w, b)


class PackedLinear(nn.Module):
    """A linear layer whose weight lives in column panels (`kernels.Packed`) and
    is multiplied by the batch-invariant CPU kernel."""

    def __init__(self, packed: kernels.Packed) -> None:
        super().__init__()
        self.packed = packed
        self.in_features, self.out_features = packed.n_in, packed.n_out

    def forward(self, x: torch.Tensor, cols: slice | None = None) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        y = kernels.linear(rows, self.packed, cols)
        return y.view(*x.shape[:-1], y.shape[-1])

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, {self.packed.dtype}, panels"


def project(layer: nn.Module, x: torch.Tensor, cols: slice | None) -> torch.Tensor:
    """layer(x) limited to the outputs `cols` (an output head's vocabulary slice)."""
    if cols is None:
        return layer(x)
    if isinstance(layer, (Linear, PackedLinear)):
        return layer(x, cols)
    return F.linear(x, layer.weight[cols], None if layer.bias is None else layer.bias[cols])


def linear_layers(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, name, layer) of every linear layer, packed or not."""
    return [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, (nn.Linear, PackedLinear))
    ]


def weight_of(layer: nn.Module) -> torch.Tensor:
    """A linear layer's (out, in) weight in its stored dtype (a packed one unpacked;
    an int8 one without its scales)."""
    if isinstance(layer, PackedLinear):
        p = layer.packed
        return p.panels.transpose(1, 2).reshape(-1, p.n_in)[: p.n_out]
    return layer.weight


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The checkpoint's names and values, packed layers included (unpacked): what
    the loaded model computes with, for comparing with the file."""
    state = dict(model.state_dict())
    for name, layer in model.named_modules():
        if isinstance(layer, PackedLinear):  # int8 dequantised: the values multiplied
            p = layer.packed
            state[f"{name}.weight"] = weight_of(layer) if p.scale is None else kernels.unpack(p)
            if layer.packed.bias is not None:
                state[f"{name}.bias"] = layer.packed.bias[: layer.out_features]
    return state


def is_packed(model: nn.Module) -> bool:
    """True when every linear layer of the model runs on the CPU kernels."""
    layers = linear_layers(model)
    return bool(layers) and all(isinstance(m, PackedLinear) for _, _, m in layers)


def _tied(model: nn.Module) -> set[int]:
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}


def pack_model(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Every linear layer → `PackedLinear` in `dtype`, in place (CPU, kernels built).

    A head tied to an embedding (the fine model's) is packed as a copy and the
    embedding keeps the original; any other original weight is dropped once
    packed, its mapped file pages handed back.
    """
    tied = _tied(model)
    mapped = MappedPages()
    with torch.inference_mode(False), torch.no_grad():
        for parent, name, layer in linear_layers(model):
            if isinstance(layer, PackedLinear):
                continue
            if dtype == torch.int8:
                q, scale = quantize_rows(layer.weight)
                packed = PackedLinear(kernels.pack(q, layer.bias, dtype, scale))
            else:
                packed = PackedLinear(kernels.pack(layer.weight, layer.bias, dtype))
            setattr(parent, name, packed)
            if id(layer.weight) not in tied:
                mapped.release(layer.weight.data)
            del layer
    return model


def _replace_each(weights: list[torch.Tensor],
                  convert: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """`w.data = convert(w.data)` for each weight, one at a time, handing back the
    mapped file pages of each original once its copy exists."""
    mapped = MappedPages()  # reads /proc/self/smaps: only when there is work to do
    with torch.inference_mode(False), torch.no_grad():
        for w in weights:
            original = w.data
            w.data = convert(original)
            mapped.release(original)
            del original


def _untied_weights(model: nn.Module) -> list[torch.Tensor]:
    tied = _tied(model)
    return [m.weight for _, _, m in linear_layers(model)
            if isinstance(m, nn.Linear) and id(m.weight) not in tied]


def use_decode_layout(model: nn.Module) -> nn.Module:
    """The fallback's float32 layout: every untied Linear weight column-major, in
    place (same shapes and values), so `torch_linear` splits one-row products
    across threads. Idempotent; a no-op off the CPU and for half weights."""
    todo = [w for w in _untied_weights(model) if w.dtype == torch.float32 and w.stride(0) != 1]
    if todo and todo[0].device.type == "cpu":
        _replace_each(todo, lambda original: original.t().contiguous().t())
    return model


def use_half_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """The fallback's half precision: untied Linear weights in `dtype`, row-major;
    the rest of the model stays float32. CPU only."""
    if dtype not in HALF_DTYPES:
        raise ValueError(f"half weights are bfloat16 or float16, not {dtype}")
    todo = [w for w in _untied_weights(model) if w.dtype != dtype]
    if todo and todo[0].device.type == "cpu":
        _replace_each(todo, lambda original: original.to(dtype).contiguous())
    return model


def use_int8_values(model: nn.Module) -> nn.Module:
    """The fallback's int8: every untied Linear weight replaced by its int8
    values dequantised to float32 (what the kernels would multiply), in the
    float32 decode layout. Applied once: a weight is quantised a single time."""
    todo = _untied_weights(model)
    if todo and todo[0].device.type == "cpu":
        _replace_each(todo, lambda original: dequantize(*quantize_rows(original)))
    return use_decode_layout(model)


def prepare_model(model: nn.Module, device: torch.device, dtype: torch.dtype,
                  use_kernels: bool | None = None) -> nn.Module:
    """The model on `device` in `dtype`, its linear layers laid out for the way
    it will run (see the module docstring). `use_kernels=None` takes the CPU
    kernels where they are available. int8 runs on the CPU only."""
    if device.type != "cpu":
        if dtype == torch.int8:
            raise ValueError("int8 weights run on the CPU only")
        return model.to(device=device, dtype=dtype)
    model = model.to(device=device, dtype=torch.float32)  # a half checkpoint file too
    if use_kernels is None:
        use_kernels = kernels.available()
    if use_kernels:
        return pack_model(model, dtype)
    if dtype == torch.int8:
        return use_int8_values(model)
    if dtype in HALF_DTYPES:
        return use_half_weights(model, dtype)
    return use_decode_layout(model)


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and packed weights (each tensor once)."""
    seen, total = set(), 0
    for t in model.parameters():
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    for _, _, m in linear_layers(model):
        if isinstance(m, PackedLinear):
            total += m.packed.nbytes
    return total


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` → "bfloat16": the name `--dtype` and EngineConfig use."""
    return str(dtype).removeprefix("torch.")


def native_bf16() -> bool | None:
    """Whether this CPU has native bfloat16 dot products (AVX512-BF16); None
    where torch cannot tell (not x86: ARM has its own bf16)."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    if not x86 or probe is None:
        return None
    return bool(probe())


def auto_dtype(device: torch.device, with_kernels: bool,
               has_native_bf16: bool | None = None) -> torch.dtype:
    """What `auto` precision runs: the fastest precision that is still Bark's.

    On the CPU: bfloat16 weights where the compiled kernels run (they widen a
    bf16 weight exactly as it is read, so the memory-bound decode steps read
    half of float32's bytes, and the sums stay float32), or, in the fallback,
    where the CPU has native bf16 dot products (`has_native_bf16`, probed when
    None); float32 elsewhere. On a GPU: bf16, or fp16 where bf16 is missing.
    int8 is never chosen for the user (it changes the weights most).
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    if has_native_bf16 is None:
        has_native_bf16 = bool(native_bf16())
    return torch.bfloat16 if with_kernels or has_native_bf16 else torch.float32


def resolve_dtype(name: str | None, device: torch.device, with_kernels: bool,
                  has_native_bf16: bool | None = None) -> torch.dtype:
    """The torch dtype a precision name asks for ("auto" or None: `auto_dtype`).

    Raises ValueError for an unknown name and for int8 off the CPU.
    """
    if name is None or name == "auto":
        return auto_dtype(device, with_kernels, has_native_bf16)
    if name not in DTYPES:
        raise ValueError(f"unknown precision '{name}': use auto or one of {', '.join(DTYPES)}")
    if name == "int8" and device.type != "cpu":
        raise ValueError(f"int8 weights run on the CPU only, not on {device.type}: "
                         "use bfloat16 there")
    return DTYPES[name]


def precision_advice(dtype: torch.dtype, device: torch.device,
                     with_kernels: bool | None = None) -> str | None:
    """A one-line caution when this precision is likely slow on this CPU, else None.

    With the compiled kernels a narrow weight is only widened as it is read
    (half or a quarter of float32's bytes, the same float32 sums), so bf16,
    fp16 and int8 pay on any CPU they run on. In the pure-torch fallback bf16
    needs native bf16 dot products (AVX512-BF16), fp16 has no fast many-row
    CPU kernel and int8 is held dequantised (float32's speed). `with_kernels`
    says whether the models run on the kernels (None: wherever they are built).
    """
    if with_kernels is None:
        with_kernels = kernels.available()
    if device.type != "cpu" or dtype == torch.float32 or with_kernels:
        return None
    rebuild = ("they are built but turned off (--no-kernels)" if kernels.available()
               else "reinstall with a C compiler present to get them")
    if dtype == torch.float16:
        return f"float16 on the CPU without the compiled kernels is no faster than float32; {rebuild}"
    if dtype == torch.int8:
        return ("int8 without the compiled kernels runs at float32's speed (its weights are "
                f"held dequantised); {rebuild}")
    if native_bf16() is False:
        return ("this CPU has no native bfloat16 (AVX512-BF16) and the compiled kernels are "
                "missing: bfloat16 will likely run slower than float32 here")
    return None
