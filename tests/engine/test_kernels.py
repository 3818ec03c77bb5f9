"""The compiled CPU kernels: right (against float64), and batch-invariant by construction.

Every value must be the same bits whatever the other rows of the call, the
number of rows, the thread count and the instruction set (the AVX2 path and
the generic C path run the same operations in the same order).
"""

from __future__ import annotations

import math

import pytest
import torch

from bark_engine.model import kernels
from bark_engine.model.quantize import quantize_rows

from .isa_runs import amx, isas, run_isa

pytestmark = pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.int8]
IDS = ["fp32", "bf16", "fp16", "int8"]
SHAPES = [(100, 48), (2304, 768), (10_048, 32)]  # (out, in): a ragged last panel, Bark's


def pack_as(weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype) -> kernels.Packed:
    """Panels in `dtype`; int8 quantised per output first, as the models are."""
    if dtype == torch.int8:
        q, scale = quantize_rows(weight)
        return kernels.pack(q, bias, dtype, scale)
    return kernels.pack(weight, bias, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize(("n_out", "n_in"), SHAPES)
def test_linear_equals_float64_and_is_batch_and_thread_invariant(dtype, n_out, n_in) -> None:
    gen = torch.Generator().manual_seed(n_out)
    weight, bias = torch.randn(n_out, n_in, generator=gen), torch.randn(n_out, generator=gen)
    packed = pack_as(weight, bias, dtype)
    exact = kernels.unpack(packed).double()  # the weight as stored (rounded or quantised)
    for M in (1, 2, 3, 4, 5, 7, 8, 9, 13, 257):
        x = torch.randn(M, n_in, generator=gen)
        y = kernels.linear(x, packed)
        ref = x.double() @ exact.T + bias.double()
        assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < 1e-5, M
        # a row's bits do not depend on its neighbours, their number or the threads
        for rows in (slice(0, 1), slice(M // 2, M), slice(M - 1, M)):
            assert torch.equal(kernels.linear(x[rows], packed), y[rows]), (M, rows)
        for threads in (1, 2, 3):
            assert torch.equal(kernels.linear(x, packed, threads=threads), y), (M, threads)


def test_linear_output_columns_and_layout() -> None:
    gen = torch.Generator().manual_seed(1)
    weight = torch.randn(12_096, 64, generator=gen)
    packed = kernels.pack(weight)
    assert packed.panels.shape == (756, 64, 16) and packed.bias is None
    assert torch.equal(kernels.unpack(packed), weight)
    x = torch.randn(3, 64, generator=gen)
    full = kernels.linear(x, packed)
    for cols in (slice(10_000, 12_048), slice(0, 10_001), slice(5, 70), slice(12_095, 12_096)):
        assert torch.equal(kernels.linear(x, packed, cols), full[:, cols]), cols
    strided = torch.randn(3, 128, generator=gen)[:, ::2]  # not contiguous
    torch.testing.assert_close(kernels.linear(strided, packed), strided @ weight.T)
    assert kernels.linear(x[:0], packed).shape == (0, 12_096)
    # int8: the columns read their own scales
    narrow = pack_as(weight, torch.randn(12_096, generator=gen), torch.int8)
    full = kernels.linear(x, narrow)
    for cols in (slice(10_000, 12_048), slice(5, 70), slice(12_095, 12_096)):
        assert torch.equal(kernels.linear(x, narrow, cols), full[:, cols]), cols


def test_linear_refuses_what_does_not_fit() -> None:
    packed = kernels.pack(torch.randn(32, 16))
    with pytest.raises(ValueError, match=r"\(M, 16\) float32"):
        kernels.linear(torch.randn(2, 15), packed)
    with pytest.raises(ValueError, match="float32"):
        kernels.linear(torch.randn(2, 16, dtype=torch.float64), packed)
    with pytest.raises(ValueError, match="step 1"):
        kernels.linear(torch.randn(2, 16), packed, slice(0, 32, 2))
    with pytest.raises(ValueError, match="2-D"):
        kernels.pack(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="float32, bfloat16, float16 or int8"):
        kernels.pack(torch.randn(4, 4), dtype=torch.float64)
    with pytest.raises(ValueError, match="int8 weight and its scales"):
        kernels.pack(torch.randn(4, 4), dtype=torch.int8)  # not quantised
    with pytest.raises(ValueError, match="int8 weight and its scales"):
        kernels.pack(torch.ones(4, 4, dtype=torch.int8), dtype=torch.int8)  # no scales


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_every_instruction_set_gives_the_same_bits(dtype, each_isa) -> None:
    gen = torch.Generator().manual_seed(2)
    packed = pack_as(torch.randn(200, 96, generator=gen), torch.randn(200, generator=gen),
                     dtype)
    x = torch.randn(11, 96, generator=gen)
    results = [run_isa(name, lambda: kernels.linear(x, packed)) for name in each_isa]
    assert all(torch.equal(r, results[0]) for r in results)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_panels_multiply_as_float32_panels_of_the_same_values(dtype, each_isa) -> None:
    """Many rows of half weights widen groups of panels to float32 once: exact, so
    the bits are those of float32 panels holding the same values, for every row
    count (the widening starts past 8 rows) and on every instruction set."""
    gen = torch.Generator().manual_seed(4)
    half = kernels.pack(torch.randn(200, 96, generator=gen), torch.randn(200, generator=gen),
                        dtype)  # 13 panels: groups of 4, 4, 4 and a ragged 1
    wide = kernels.pack(kernels.unpack(half), half.bias[:200])
    x = torch.randn(50, 96, generator=gen)
    for name in each_isa:
        for M in (8, 9, 13, 50):
            got = run_isa(name, lambda m=M: kernels.linear(x[:m], half))
            assert torch.equal(got, kernels.linear(x[:M], wide)), (name, M)


def attention_reference(qkv: torch.Tensor, slots, pos, H: int, rows) -> torch.Tensor:
    """Causal attention of `rows` over their slot's rows at positions <= their own, in float64."""
    N, C3 = qkv.shape
    C, hd = C3 // 3, C3 // 3 // H
    out = []
    for n in rows:
        keys = [m for m in range(N) if slots[m] == slots[n] and pos[m] <= pos[n]]
        q = qkv[n, :C].view(H, 1, hd).double()
        k = torch.stack([qkv[m, C : 2 * C].view(H, hd) for m in keys], 1).double()
        v = torch.stack([qkv[m, 2 * C :].view(H, hd) for m in keys], 1).double()
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), -1)
        out.append((weights @ v).reshape(C))
    return torch.stack(out)


def new_cache(slots: int, H: int, hd: int, max_len: int):
    """One layer's keys and values for the kernels, in panels of 16."""
    return (torch.zeros(slots, H, max_len // 16, hd, 16),
            torch.zeros(slots, H, hd // 16, max_len, 16))


@pytest.mark.parametrize(("H", "hd"), [(2, 16), (4, 64)])
def test_attention_equals_float64_and_rows_are_independent(H: int, hd: int, each_isa) -> None:
    gen = torch.Generator().manual_seed(H)
    lengths = [100, 70, 3, 410]  # four rows (slots) of very different lengths
    slots = torch.tensor([s for s, n in enumerate(lengths) for _ in range(n)])
    pos = torch.tensor([p for n in lengths for p in range(n)])
    qkv = torch.randn(len(pos), 3 * H * hd, generator=gen)
    every = torch.arange(len(pos))
    y = kernels.attend(qkv, *new_cache(4, H, hd, 416), slots, pos, pos + 1, every, H)
    checked = [0, 1, 99, 100, 169, 170, 172, 173, 400, 582]  # ends and middles of each row
    ref = attention_reference(qkv, slots.tolist(), pos.tolist(), H, checked)
    assert (y[checked].double() - ref).abs().max().item() < 1e-5
    # Only some queries, other threads, one instruction set or the other: the same bits.
    some = torch.tensor([3, 120, 171, len(pos) - 1, *range(200, 560)])
    for threads in (1, 2, 3):
        for name in each_isa:
            part = run_isa(name, lambda t=threads: kernels.attend(
                qkv, *new_cache(4, H, hd, 416), slots, pos, pos + 1, some, H, threads=t))
            assert torch.equal(part, y[some]), (threads, name)
    # A row alone in its own cache, with no other rows in the call: the same bits.
    last = slots == 3
    alone = kernels.attend(qkv[last], *new_cache(1, H, hd, 416),
                           torch.zeros(410, dtype=torch.long), pos[last], pos[last] + 1,
                           torch.arange(410), H)
    assert torch.equal(alone, y[last])


def test_a_bfloat16_cache_holds_rounded_keys_and_keeps_rows_independent() -> None:
    """Keys and values are rounded to bf16 once, as they are written; the attention
    is then the float64 attention over those rounded keys and values, and a row's
    bits still do not depend on the other rows."""
    gen = torch.Generator().manual_seed(9)
    H, hd = 2, 32
    lengths = [40, 7, 90]
    slots = torch.tensor([s for s, n in enumerate(lengths) for _ in range(n)])
    pos = torch.tensor([p for n in lengths for p in range(n)])
    qkv = torch.randn(len(pos), 3 * H * hd, generator=gen)
    every = torch.arange(len(pos))
    kT, v = (t.to(torch.bfloat16) for t in new_cache(3, H, hd, 96))
    y = kernels.attend(qkv, kT, v, slots, pos, pos + 1, every, H)
    C = H * hd
    rounded = qkv.clone()
    rounded[:, C:] = qkv[:, C:].to(torch.bfloat16).float()
    assert torch.equal(kT[2, :, 0, :, 5], rounded[47 + 5, C : 2 * C].view(H, hd).bfloat16())
    checked = [0, 39, 40, 46, 47, 136]
    ref = attention_reference(rounded, slots.tolist(), pos.tolist(), H, checked)
    assert (y[checked].double() - ref).abs().max().item() < 1e-5
    last = slots == 2
    alone = kernels.attend(qkv[last], *(t.to(torch.bfloat16) for t in new_cache(1, H, hd, 96)),
                           torch.zeros(90, dtype=torch.long), pos[last], pos[last] + 1,
                           torch.arange(90), H)
    assert torch.equal(alone, y[last])
    with pytest.raises(ValueError, match="float32 or bfloat16 cache"):
        kernels.attend(qkv, kT, v.float(), slots, pos, pos + 1, every, H)


def test_attention_writes_the_cache_and_reads_earlier_positions() -> None:
    """A step after a prefill attends to the keys the prefill wrote."""
    gen = torch.Generator().manual_seed(5)
    H, hd = 2, 16
    qkv = torch.randn(9, 3 * H * hd, generator=gen)
    kT, v = new_cache(2, H, hd, 16)
    slot = torch.ones(9, dtype=torch.long)
    pos = torch.arange(9)
    whole = kernels.attend(qkv, *new_cache(2, H, hd, 16), slot, pos, pos + 1, pos, H)
    kernels.attend(qkv[:8], kT, v, slot[:8], pos[:8], pos[:8] + 1, pos[:8], H)
    step = kernels.attend(qkv[8:], kT, v, slot[8:], pos[8:], pos[8:] + 1, torch.arange(1), H)
    assert torch.equal(step, whole[8:])  # continuing from the cache: the same bits
    assert torch.equal(kT[1, :, 0, :, 3], qkv[3, H * hd : 2 * H * hd].view(H, hd))
    assert torch.equal(v[1, :, :, 3].reshape(H, hd), qkv[3, 2 * H * hd :].view(H, hd))
    assert kT[0].abs().sum() == 0  # the other slot untouched


def test_attention_refuses_indices_outside_the_cache() -> None:
    qkv = torch.randn(2, 96)
    kT, v = new_cache(1, 2, 16, 16)
    rows = torch.arange(2)
    with pytest.raises(ValueError, match="outside the cache"):
        kernels.attend(qkv, kT, v, torch.tensor([0, 1]), rows, rows + 1, rows, 2)  # slot 1
    with pytest.raises(ValueError, match="outside the cache"):
        kernels.attend(qkv, kT, v, torch.zeros(2, dtype=torch.long), torch.tensor([0, 16]),
                       torch.tensor([1, 17]), rows, 2)
    with pytest.raises(ValueError, match="outside the cache"):
        kernels.attend(qkv, kT, v, torch.zeros(2, dtype=torch.long), rows, rows + 1,
                       torch.tensor([2]), 2)
    with pytest.raises(ValueError, match="do not fit"):
        kernels.attend(qkv, kT, v, torch.zeros(2, dtype=torch.long), rows, rows + 1, rows, 3)


def test_status_says_what_runs() -> None:
    status = kernels.status()
    assert status.available and status.isa in ("avx512", "avx2", "generic")
    assert status.describe().startswith(f"compiled kernels ({status.isa}")
    off = kernels.KernelStatus(False, None, "", "not built (no compiler)")
    assert off.describe() == "pure-torch fallback: compiled kernels not built (no compiler)"


@pytest.mark.skipif(not kernels.bf16_dot(), reason="no AVX512-BF16 dot products here")
def test_bf16_rows_are_the_instructions_pair_sums_and_row_local() -> None:
    """Many rows of bf16 panels, each row rounded to bf16: the hardware's pair sums
    equal the C reference of vdpbf16ps bit for bit, for any split of the rows and
    thread count; and stay close to the float rows' product."""
    gen = torch.Generator().manual_seed(6)
    w, bias = torch.randn(200, 96, generator=gen), torch.randn(200, generator=gen)
    p = kernels.pack(w, bias, torch.bfloat16)
    x = torch.randn(40, 96, generator=gen) * 3
    x[3] = 1 + (torch.arange(96) % 4 * 2 + 1) * 2.0**-8  # halfway between two bf16: to even
    with amx(False):  # AMX tiles sum their own way (test_amx)
        y = kernels.linear(x, p, narrow_rows=True)
        for name in isas():  # rows rounded to bf16 alike, 16 at a time or one by one
            assert torch.equal(run_isa(name, lambda: kernels.linear(x, p, narrow_rows=True)), y)
        kernels.use_bf16_reference(True)
        try:
            assert torch.equal(kernels.linear(x, p, narrow_rows=True), y)
        finally:
            kernels.use_bf16_reference(False)
        for rows in (slice(0, 1), slice(7, 30)):
            assert torch.equal(kernels.linear(x[rows], p, narrow_rows=True), y[rows])
        assert torch.equal(kernels.linear(x, p, narrow_rows=True, threads=1), y)
    ref = x.bfloat16().double() @ kernels.unpack(p).double().T + bias.double()
    assert ((y.double() - ref).abs().max() / ref.abs().max()) < 1e-5
    floats = kernels.linear(x, p)
    assert 0 < ((y - floats).norm() / floats.norm()) < 1e-2
