"""Narrow rows and their attention on AMX tiles (prefills and fine passes in
int8 and bf16).

int8 rows must be the VNNI path's bits exactly (the same integer sums); bf16
rows and the attention are the tiles' own sums, so they are held to float64 or
the float path and to the same invariances as every other kernel: a row's bits
do not depend on the other rows, their number, the threads or a shared prompt.
On a CPU without AMX these tests skip.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine import Engine, EngineConfig, GenerationOptions
from bark_engine.config import stage_configs
from bark_engine.model import kernels
from bark_engine.model.kernel_step import KernelFine, KernelStepper
from bark_engine.model.precision import pack_model
from bark_engine.model.steps import Feed
from tests.engine.reference_port import tiny_model

from .isa_runs import amx, isas, run_isa
from .test_kernels import pack_as

pytestmark = pytest.mark.skipif(not kernels.amx_here(),
                                reason="no AMX tiles here (or Linux refused them)")

# (n_out, n_in): ragged panels, inputs short of one tile, several tiles, Bark's shapes
VOCAB = slice(0, 10_001)
SHAPES = [(70, 100), (16, 64), (200, 36), (2304, 768), (768, 3072)]
ROWS = (1, 15, 16, 17, 32, 45, 100)  # around the tiles' 16 and the blocks' 32 rows


def rows_of(n: int, n_in: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(n, n_in, generator=gen) * 2


@pytest.mark.parametrize(("n_out", "n_in"), SHAPES)
def test_int8_rows_on_tiles_are_the_vnni_and_generic_bits(n_out: int, n_in: int) -> None:
    gen = torch.Generator().manual_seed(n_in)
    p = pack_as(torch.randn(n_out, n_in, generator=gen) * 0.02, torch.randn(n_out, generator=gen),
                torch.int8)
    x = rows_of(max(ROWS), n_in, gen)
    x[3, 1] = float("nan")  # a NaN becomes 0 on every path
    for M in ROWS:
        with amx(True):
            tiles = kernels.linear(x[:M], p, narrow_rows=True)
        for name in isas():
            with amx(False):
                other = run_isa(name, lambda rows=x[:M]: kernels.linear(rows, p, narrow_rows=True))
            assert torch.equal(tiles.view(torch.int32), other.view(torch.int32)), (M, name)


@pytest.mark.parametrize(("n_out", "n_in"), SHAPES)
def test_bf16_rows_on_tiles_are_close_to_float64_and_row_local(n_out: int, n_in: int) -> None:
    gen = torch.Generator().manual_seed(n_out)
    weight, bias = torch.randn(n_out, n_in, generator=gen), torch.randn(n_out, generator=gen)
    p = pack_as(weight, bias, torch.bfloat16)
    exact = kernels.unpack(p).double()
    x = rows_of(max(ROWS), n_in, gen)
    with amx(True):
        y = kernels.linear(x, p, narrow_rows=True)
        ref = x.bfloat16().double() @ exact.T + bias.double()
        assert ((y.double() - ref).abs().max() / ref.abs().max()) < 1e-5
        for M in ROWS:
            assert torch.equal(kernels.linear(x[:M], p, narrow_rows=True), y[:M]), M
        for rows in (slice(7, 30), slice(max(ROWS) - 1, None)):
            assert torch.equal(kernels.linear(x[rows], p, narrow_rows=True), y[rows]), rows
        for threads in (1, 3):
            assert torch.equal(kernels.linear(x, p, narrow_rows=True, threads=threads), y)
        if n_out > 40:
            assert torch.equal(kernels.linear(x, p, slice(20, n_out - 3), narrow_rows=True),
                               y[:, 20 : n_out - 3])
    with amx(False):  # vdpbf16ps's pair sums: another rounding of the same products
        pairs = kernels.linear(x, p, narrow_rows=True)
    assert ((y - pairs).abs().max() / ref.abs().max()) < 1e-5


def test_status_and_switch() -> None:
    assert kernels.amx() and "AMX" in kernels.status().extras
    with amx(False):
        assert not kernels.amx() and "AMX" not in kernels.status().extras
    assert kernels.amx()


@pytest.fixture(scope="module")
def engines(tiny_models: Path) -> dict[str, Engine]:
    out = {}
    for dtype in ("int8", "bfloat16"):
        out[dtype] = Engine(EngineConfig(models=str(tiny_models), device="cpu", dtype=dtype))
        out[dtype].load()
    return out


def generate(engine: Engine, on: bool):
    with amx(on):
        return engine.generate("Tiles or lanes.", voice="v2/en_speaker_6",
                               options=GenerationOptions(seed=11, max_duration_s=0.4))


def test_generation_on_tiles_says_so_and_batches_exactly(engines: dict[str, Engine]) -> None:
    for dtype, rows in (("int8", ""), ("bfloat16", ", bf16 rows")):
        engine = engines[dtype]
        tiles = generate(engine, True)
        assert tiles.model_id.endswith(f"{dtype} on cpu{rows}, AMX tiles"), tiles.model_id
        assert generate(engine, False).model_id.endswith(f"{dtype} on cpu{rows}")
        np.testing.assert_array_equal(generate(engine, True).semantic, tiles.semantic)
        takes = engine.generate_takes("Tiles or lanes.", voice="v2/en_speaker_6", seeds=[11, 12],
                                      options=GenerationOptions(max_duration_s=0.4))
        for name in ("semantic", "coarse", "fine"):
            np.testing.assert_array_equal(getattr(takes[0], name), getattr(tiles, name))


# The attention of narrow rows on tiles: heads 64 wide over a bf16 cache.
H, HD = 2, 64


def bf16_cache(slots: int, max_len: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values in panels, NaN until written: an unwritten key must not leak."""
    kT = torch.full((slots, H, max_len // 16, HD, 16), float("nan"), dtype=torch.bfloat16)
    v = torch.full((slots, H, HD // 16, max_len, 16), float("nan"), dtype=torch.bfloat16)
    return kT, v


def test_attention_on_tiles_is_close_to_the_float_attention_and_row_local() -> None:
    gen = torch.Generator().manual_seed(21)
    # slot 0: a causal prefill of 77 rows (several query blocks, odd key counts);
    # slot 1: 19 rows continuing at position 30
    slots = torch.tensor([0] * 77 + [1] * 19)
    pos = torch.cat([torch.arange(77), torch.arange(30, 49)])
    qkv = torch.randn(len(pos), 3 * H * HD, generator=gen)
    kT, v = bf16_cache(2)
    kernels.attend(torch.randn(30, 3 * H * HD, generator=gen), kT, v,
                   torch.ones(30, dtype=torch.long), torch.arange(30), torch.arange(1, 31),
                   torch.arange(0), H)  # slot 1's first 30 keys
    with amx(True):
        tiles = kernels.attend(qkv, kT.clone(), v.clone(), slots, pos, pos + 1,
                               torch.arange(len(pos)), H, narrow=True)
        assert torch.isfinite(tiles).all()
        floats = kernels.attend(qkv, kT.clone(), v.clone(), slots, pos, pos + 1,
                                torch.arange(len(pos)), H)
        assert 0 < ((tiles - floats).norm() / floats.norm()) < 5e-3
        for threads in (1, 3):
            again = kernels.attend(qkv, kT.clone(), v.clone(), slots, pos, pos + 1,
                                   torch.arange(len(pos)), H, threads=threads, narrow=True)
            assert torch.equal(again, tiles), threads
        alone = kernels.attend(qkv[:77], *bf16_cache(1), slots[:77], pos[:77], pos[:77] + 1,
                               torch.arange(77), H, narrow=True)
        assert torch.equal(alone, tiles[:77])  # slot 1's rows beside it change nothing
        some = torch.tensor([3, 40, 76])
        picked = kernels.attend(qkv[:77], *bf16_cache(1), slots[:77], pos[:77], pos[:77] + 1,
                                some, H, narrow=True)
        assert torch.equal(picked, tiles[some])
    with amx(False):  # without tiles, narrow attention is the float one
        off = kernels.attend(qkv, kT.clone(), v.clone(), slots, pos, pos + 1,
                             torch.arange(len(pos)), H, narrow=True)
        assert torch.equal(off, floats)


@torch.inference_mode()
def test_a_shared_prompt_read_on_tiles_gives_a_rows_own_bits() -> None:
    """Narrow continuations (7 and 20 tokens) on a slot that reads another's prompt:
    the tiles see the same keys and values as from a copy of its own."""
    cfg = replace(stage_configs("tiny")["semantic"], n_embd=HD, n_head=1)
    wide = pack_model(tiny_model("semantic", seed=7, cfg=cfg), torch.int8)
    stepper = KernelStepper(wide)
    assert stepper.narrow and stepper.kv_dtype == torch.bfloat16
    ids = torch.randint(0, 10_000, (68,), generator=torch.Generator().manual_seed(8))
    prompt, more = ids[:41], [ids[41:48], ids[48:]]

    def run(slots: int) -> list[torch.Tensor]:
        cache = stepper.new_cache(slots)
        stepper.advance(cache, [Feed(b, prompt, fresh=True) for b in range(slots)], VOCAB)
        assert cache.shared.tolist()[-1] == (32 if slots > 1 else 0)
        return [stepper.advance(cache, [Feed(slots - 1, x)], VOCAB)[0] for x in more]

    with amx(True):
        expected, got = run(1), run(2)
    assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True))
    with amx(False):
        lanes = run(1)
    assert not torch.equal(lanes[1], expected[1])  # the tiles did run


@pytest.mark.parametrize("max_len", [48, 80])  # whole panels of 16, not whole tiles of 32 keys
def test_attention_on_tiles_fills_a_cache_of_an_odd_number_of_panels(max_len: int) -> None:
    gen = torch.Generator().manual_seed(max_len)
    n = max_len  # the last rows attend to every key, the first to a few: all of a block's shapes
    qkv = torch.randn(n, 3 * H * HD, generator=gen)
    slots, pos = torch.zeros(n, dtype=torch.long), torch.arange(n)
    with amx(True):
        tiles = kernels.attend(qkv, *bf16_cache(1, max_len), slots, pos, pos + 1, pos, H,
                               narrow=True)
    floats = kernels.attend(qkv, *bf16_cache(1, max_len), slots, pos, pos + 1, pos, H)
    per_row = (tiles - floats).norm(dim=1) / floats.norm(dim=1)
    assert torch.isfinite(tiles).all() and per_row.max() < 1e-2


@torch.inference_mode()
def test_fine_windows_on_tiles_are_row_local_and_close_to_the_float_cache() -> None:
    """A fine pass of narrow weights keeps its windows' keys in bf16 where the tiles
    run, so its attention runs on them too: each window still gets its own bits."""
    cfg = replace(stage_configs("tiny")["fine"], n_embd=HD, n_head=1)
    fine = KernelFine(pack_model(tiny_model("fine", seed=3, cfg=cfg), torch.int8))
    gen = torch.Generator().manual_seed(4)
    windows = [torch.randint(0, 1024, (40, 8), generator=gen) for _ in range(2)]
    with amx(True):
        both = fine.logits(windows, [0, 5], 3)
        assert fine._window_cache.kT.dtype == torch.bfloat16
        alone = fine.logits(windows[1:], [5], 3)
        assert torch.equal(alone[0], both[1])
    with amx(False):
        floats = fine.logits(windows, [0, 5], 3)
        assert fine._window_cache.kT.dtype == torch.float32
    for tiles, lanes in zip(both, floats, strict=True):
        assert 0 < ((tiles - lanes).norm() / lanes.norm()) < 2e-2
