"""Narrow rows on AMX tiles (prefills and fine passes in int8 and bf16).

int8 rows must be the VNNI path's bits exactly (the same integer sums); bf16
rows are the tiles' own sums, so they are held to float64 and to the same
invariances as every other kernel: a row's bits do not depend on the other
rows, their number or the threads. On a CPU without AMX these tests skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine import Engine, EngineConfig, GenerationOptions
from bark_engine.model import kernels

from .isa_runs import amx, isas, run_isa
from .test_kernels import pack_as

pytestmark = pytest.mark.skipif(not kernels.amx_here(),
                                reason="no AMX tiles here (or Linux refused them)")

# (n_out, n_in): ragged panels, inputs short of one tile, several tiles, Bark's shapes
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


def test_int8_generation_on_tiles_is_the_vnni_generation(engines: dict[str, Engine]) -> None:
    tiles, lanes = generate(engines["int8"], True), generate(engines["int8"], False)
    assert tiles.model_id == lanes.model_id  # the same bits: nothing to tell apart
    for name in ("semantic", "coarse", "fine", "audio"):
        np.testing.assert_array_equal(getattr(tiles, name), getattr(lanes, name))


def test_bf16_generation_on_tiles_says_so_and_batches_exactly(engines: dict[str, Engine]) -> None:
    engine = engines["bfloat16"]
    tiles = generate(engine, True)
    assert tiles.model_id.endswith("bfloat16 on cpu, bf16 AMX rows")
    assert generate(engine, False).model_id.endswith("bfloat16 on cpu, bf16 rows")
    np.testing.assert_array_equal(generate(engine, True).semantic, tiles.semantic)
    takes = engine.generate_takes("Tiles or lanes.", voice="v2/en_speaker_6", seeds=[11, 12],
                                  options=GenerationOptions(max_duration_s=0.4))
    for name in ("semantic", "coarse", "fine"):
        np.testing.assert_array_equal(getattr(takes[0], name), getattr(tiles, name))
