"""Whole GPT blocks in the CPU kernels (`kernel_blocks.blocks`): the layer norms, GELU
and residuals run in C between the products, so they must be right (against a
float64 block) and keep a row's bits independent of everything else: the other
rows, the thread count, the instruction set, which rows the last block keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from bark_engine.model import kernel_blocks, kernels
from bark_engine.model.quantize import quantize_rows

from .isa_runs import run_isa

pytestmark = pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")

H, HD = 4, 16
C = H * HD
EPS = 1e-5


@dataclass
class Layer:
    """One block's float64 weights and their packed float32 panels."""

    w: dict[str, torch.Tensor]
    ln_1: tuple[torch.Tensor | None, torch.Tensor | None]
    ln_2: tuple[torch.Tensor | None, torch.Tensor | None]
    qkv: kernels.Packed
    proj: kernels.Packed
    fc: kernels.Packed
    out: kernels.Packed


def make_layer(gen: torch.Generator, ln_bias: bool, hidden: int = 4 * C,
               dtype: torch.dtype = torch.float32) -> Layer:
    def r(*shape, s=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * s).float().double()

    w = {"ln1_w": 1 + r(C, s=0.2), "ln2_w": 1 + r(C, s=0.2),
         "ln1_b": r(C, s=0.1) if ln_bias else None, "ln2_b": r(C, s=0.1) if ln_bias else None,
         "qkv": r(3 * C, C, s=C ** -0.5), "qkv_b": r(3 * C, s=0.1), "proj": r(C, C, s=C ** -0.5),
         "fc": r(hidden, C, s=C ** -0.5), "fc_b": r(hidden, s=0.5), "out": r(C, hidden, s=hidden ** -0.5)}

    def f32(t):
        return None if t is None else t.float().contiguous()

    def pack(name, bias=None):
        weight = w[name].float()
        if dtype != torch.int8:
            return kernels.pack(weight, bias)
        q, scale = quantize_rows(weight)
        w[name] = (q.double() * scale.double().reshape(-1, 1))  # what the products use
        return kernels.pack(q, bias, torch.int8, scale)

    return Layer(w, (f32(w["ln1_w"]), f32(w["ln1_b"])), (f32(w["ln2_w"]), f32(w["ln2_b"])),
                 pack("qkv", w["qkv_b"].float()), pack("proj"), pack("fc", w["fc_b"].float()),
                 pack("out"))


def reference(layers: list[Layer], x: torch.Tensor) -> torch.Tensor:
    """One row's causal blocks in float64, GELU with the exact erf."""
    x = x.double()
    T = x.shape[0]
    for layer in layers:
        w = layer.w
        h = F.layer_norm(x, (C,), w["ln1_w"], w["ln1_b"], EPS)
        q, k, v = (h @ w["qkv"].T + w["qkv_b"]).split(C, dim=1)
        q, k, v = (t.reshape(T, H, HD).transpose(0, 1) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + a.transpose(0, 1).reshape(T, C) @ w["proj"].T
        h = F.gelu(F.layer_norm(x, (C,), w["ln2_w"], w["ln2_b"], EPS) @ w["fc"].T + w["fc_b"])
        x = x + h @ w["out"].T
    return x


def cache(slots: int, n_layer: int, max_len: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.zeros(n_layer, slots, H, max_len // 16, HD, 16),
            torch.zeros(n_layer, slots, H, HD // 16, max_len, 16))


def run(layers, x, slots, pos, wanted=None, threads=None, n_slots=2, narrow=False,
        scratch=None):
    plan = kernel_blocks.block_plan(layers)
    return kernel_blocks.blocks(plan, x.clone(), *cache(n_slots, len(layers)), slots, pos,
                                pos + 1, wanted, H, EPS, narrow, threads, scratch)


@pytest.fixture(scope="module")
def setup():
    gen = torch.Generator().manual_seed(7)
    # The second MLP is 196 wide: GELU's tails past 16 and 8 lanes run too.
    layers = [make_layer(gen, ln_bias=True), make_layer(gen, ln_bias=False, hidden=196)]
    lengths = [37, 5]  # two rows of a call, in two cache slots
    slots = torch.tensor([s for s, n in enumerate(lengths) for _ in range(n)])
    pos = torch.tensor([p for n in lengths for p in range(n)])
    x = torch.randn(len(pos), C, generator=gen) * 2
    return layers, lengths, slots, pos, x


def test_blocks_equal_the_float64_blocks(setup) -> None:
    layers, lengths, slots, pos, x = setup
    y = run(layers, x, slots, pos)
    for s in range(len(lengths)):
        rows = slots == s
        ref = reference(layers, x[rows])
        err = (y[rows].double() - ref).abs().max().item()
        assert err < 2e-5 * ref.abs().max().item(), (s, err)


def test_a_rows_bits_depend_on_that_row_alone(setup, each_isa) -> None:
    layers, lengths, slots, pos, x = setup
    y = run(layers, x, slots, pos)
    for name in each_isa:
        for threads in (1, 2, 3):
            again = run_isa(name, lambda t=threads: run(layers, x, slots, pos, threads=t))
            assert torch.equal(again, y), (name, threads)
    # The short row alone in its own call and cache: the same bits.
    short = slots == 1
    alone = run(layers, x[short], torch.zeros(5, dtype=torch.long), pos[short], n_slots=1)
    assert torch.equal(alone, y[short])
    # The last block keeping only some rows (each feed's last): those rows' bits.
    wanted = torch.tensor([36, 41])
    assert torch.equal(run(layers, x, slots, pos, wanted), y[wanted])


def test_a_kept_scratch_is_grown_and_its_old_contents_never_read(setup) -> None:
    layers, lengths, slots, pos, x = setup
    y = run(layers, x, slots, pos)
    scratch = kernel_blocks.Scratch()
    small = scratch.floats(10)
    assert run(layers, x, slots, pos, scratch=scratch).equal(y)
    kept = scratch.floats(0)
    assert kept.numel() >= kernel_blocks.SCRATCH_PER_ROW * len(pos) * C > small.numel()
    for _ in range(2):  # left over from earlier calls: NaN everywhere, then a smaller call
        kept.fill_(float("nan"))
        assert run(layers, x, slots, pos, scratch=scratch).equal(y)
        assert scratch.floats(0).data_ptr() == kept.data_ptr()  # the same buffer, not a new one
        short = slots == 1
        alone = run(layers, x[short], torch.zeros(5, dtype=torch.long), pos[short], n_slots=1,
                    scratch=scratch)
        assert alone.equal(y[short])


def test_int8_blocks_with_int8_rows_are_row_local_on_every_instruction_set(each_isa) -> None:
    """Narrow rows (each row quantised to int8 on its own, exact integer sums)
    through whole blocks: near the float64 blocks of the dequantised weights,
    and a row's bits still its own."""
    gen = torch.Generator().manual_seed(11)
    layers = [make_layer(gen, True, dtype=torch.int8), make_layer(gen, True, dtype=torch.int8)]
    slots = torch.tensor([0] * 20 + [1] * 9)
    pos = torch.cat([torch.arange(20), torch.arange(9)])
    x = torch.randn(29, C, generator=gen)
    y = run(layers, x, slots, pos, narrow=True)
    ref = reference(layers, x[:20])
    assert (y[:20].double() - ref).abs().max().item() < 0.05 * ref.abs().max().item()
    assert not torch.equal(y, run(layers, x, slots, pos))  # float rows: another result
    for name in each_isa:
        assert torch.equal(run_isa(name, lambda: run(layers, x, slots, pos, narrow=True)), y)
    alone = run(layers, x[20:], torch.zeros(9, dtype=torch.long), pos[20:], n_slots=1,
                narrow=True)
    assert torch.equal(alone, y[20:])


def test_the_plan_refuses_products_that_are_not_a_block(setup) -> None:
    layers = setup[0]
    bad = Layer(**{**layers[0].__dict__, "proj": kernels.pack(torch.randn(2 * C, C))})
    with pytest.raises(ValueError, match="C → 3C, C → C"):
        kernel_blocks.block_plan([bad])
    with pytest.raises(ValueError, match="layer norm"):
        kernel_blocks.block_plan([Layer(**{**layers[0].__dict__, "ln_1": (torch.ones(C + 1), None)})])
    plan = kernel_blocks.block_plan(layers)
    with pytest.raises(ValueError, match="the cache has 1 layers, the plan 2"):
        kernel_blocks.blocks(plan, torch.zeros(3, C), *cache(1, 1), torch.zeros(3, dtype=torch.long),
                       torch.arange(3), torch.arange(3) + 1, None, H, EPS)
    rows = (torch.zeros(3, dtype=torch.long), torch.arange(3), torch.arange(3) + 1)
    with pytest.raises(ValueError, match="at most the call's 3 rows"):
        kernel_blocks.blocks(plan, torch.zeros(3, C), *cache(1, 2), *rows, torch.tensor([0, 1, 2, 2]),
                       H, EPS)
    with pytest.raises(ValueError, match="width C"):
        kernel_blocks.blocks(plan, torch.zeros(3, 2 * C), *cache(1, 2), *rows, None, H, EPS)
    kT, v = cache(1, 2)
    with pytest.raises(ValueError, match="does not fit"):
        kernel_blocks.blocks(plan, torch.zeros(3, C), kT[..., :8].contiguous(), v, *rows, None, H, EPS)
    with pytest.raises(ValueError, match="outside the cache"):
        kernel_blocks.blocks(plan, torch.zeros(3, C), kT, v, rows[0], rows[1] + 70, rows[2], None, H,
                       EPS)
