"""int8 weights and the `auto` precision.

int8: each linear layer's weight quantised per output channel (symmetric,
±127) once at load; embeddings, norms, attention and the KV cache stay
float32. What must hold: the quantisation error is within its bound for every
layer; logits stay close to float32's after a prefill and over decode steps,
on the kernels and on the fallback; a generation is deterministic by seed and
a batch of takes equals the single runs; the model id and the advice say what
runs. `auto`: bfloat16 where it pays (the kernels, or native bf16 in the
fallback: the probe's answer is injected both ways), float32 elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bark_engine import EngineConfig
from bark_engine.engine import Engine
from bark_engine.errors import BadInputError
from bark_engine.loading.checkpoints import load_checkpoint, safe_torch_load
from bark_engine.model import kernels
from bark_engine.model.precision import (
    DTYPES,
    PackedLinear,
    auto_dtype,
    full_state_dict,
    linear_layers,
    precision_advice,
    resolve_dtype,
    weight_bytes,
    weight_of,
)
from bark_engine.model.quantize import QMAX, dequantize, quantize_rows, relative_error
from bark_engine.model.steps import Feed
from bark_engine.model.strategy import stepper_for
from bark_engine.options import PRECISIONS
from tests.engine.take_checks import assert_takes_equal_single_runs, assert_whole_and_deterministic

PATHS = [pytest.param(True, id="kernels", marks=pytest.mark.skipif(
    not kernels.available(), reason="CPU kernels not built here")),
    pytest.param(False, id="fallback")]
CPU = torch.device("cpu")


def test_quantisation_error_is_within_half_a_step_for_every_layer(tiny_models: Path) -> None:
    for name in ("text.pt", "coarse.pt", "fine.pt"):
        state = safe_torch_load(tiny_models / name)["model"]
        weights = {k: v for k, v in state.items() if k.endswith(".weight") and v.dim() == 2
                   and "wte" not in k and "wpe" not in k}
        assert weights, name
        for key, w in weights.items():
            q, scale = quantize_rows(w)
            assert q.dtype == torch.int8 and int(q.abs().max()) <= QMAX
            err = (dequantize(q, scale) - w.float()).abs()
            assert (err <= scale[:, None] / 2 * (1 + 1e-5)).all(), key  # round to nearest
            assert 0 < relative_error(w) < 1e-2, key
            # each row's largest weight is exactly representable: ±127 steps
            assert (q.abs().amax(dim=1) == QMAX).all(), key


def test_a_row_of_zeros_stays_zero() -> None:
    w = torch.randn(3, 8)
    w[1] = 0
    q, scale = quantize_rows(w)
    assert scale[1] == 1 and not q[1].any() and relative_error(torch.zeros(2, 2)) == 0


@pytest.mark.parametrize("use_kernels", PATHS)
def test_only_the_linear_weights_are_int8(tiny_models: Path, use_kernels: bool) -> None:
    model = load_checkpoint(tiny_models / "text.pt", "causal", dtype=torch.int8,
                            use_kernels=use_kernels)
    layers = linear_layers(model)
    # the kernels hold int8 panels; the fallback holds the same values dequantised
    assert all(isinstance(m, PackedLinear) == use_kernels for _, _, m in layers)
    want = torch.int8 if use_kernels else torch.float32
    assert layers and all(weight_of(m).dtype == want for _, _, m in layers)
    assert model.transformer["wte"].weight.dtype == torch.float32
    full = load_checkpoint(tiny_models / "text.pt", "causal", use_kernels=use_kernels)
    state, original = full_state_dict(model), full_state_dict(full)
    key = "transformer.h.0.attn.c_attn.weight"
    torch.testing.assert_close(state[key], dequantize(*quantize_rows(original[key])))
    if use_kernels:
        half = load_checkpoint(tiny_models / "text.pt", "causal", dtype=torch.bfloat16)
        assert weight_bytes(model) < weight_bytes(half) < weight_bytes(full)


def test_the_kernels_and_the_fallback_multiply_the_same_int8_values(tiny_models: Path) -> None:
    """One-token steps (float rows on both paths; the kernels' KV cache is bf16)."""
    if not kernels.available():
        pytest.skip("CPU kernels not built here")
    path = tiny_models / "coarse.pt"
    a = stepper_for(load_checkpoint(path, "causal", dtype=torch.int8))
    b = stepper_for(load_checkpoint(path, "causal", dtype=torch.int8, use_kernels=False))
    ids = torch.randint(0, 10_000, (12,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ca, cb = a.new_cache(1), b.new_cache(1)
        for t in range(12):
            feed = [Feed(0, ids[t : t + 1], fresh=t == 0)]
            torch.testing.assert_close(a.advance(ca, feed, None), b.advance(cb, feed, None),
                                       rtol=1e-2, atol=1e-2)


@pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")
@pytest.mark.parametrize("n_in", [96, 100])  # whole vectors of 16, and a ragged tail
def test_int8_rows_are_exact_integer_sums_and_row_local(n_in: int) -> None:
    """Many rows of int8 panels, each row quantised on its own: against a float64
    product of the same quantised values, the same bits for any split of the rows,
    thread count and instruction set; and close to the float rows' product."""
    gen = torch.Generator().manual_seed(3)
    w, bias = torch.randn(200, n_in, generator=gen) * 0.02, torch.randn(200, generator=gen)
    q, scale = quantize_rows(w)
    p = kernels.pack(q, bias, torch.int8, scale)
    x = torch.randn(40, n_in, generator=gen)
    # rounding ties: with a maximum of 127 the scale is 1, so x / s is x, on a half
    x[5] = torch.arange(n_in, dtype=torch.float32) % 9 - 3.5
    x[6] = -(torch.arange(n_in, dtype=torch.float32) % 11) - 0.5
    x[5, 0], x[6, 0] = 127, -127
    y = kernels.linear(x, p, narrow_rows=True)
    sx = x.abs().amax(1) / QMAX
    xq = torch.round(x / sx[:, None]).clamp(-QMAX, QMAX)  # round half to even, as rintf
    ref = (xq.double() @ q.double().T) * scale.double() * sx.double()[:, None] + bias.double()
    assert (y.double() - ref).abs().max() < 1e-5
    for rows in (slice(0, 1), slice(7, 30), slice(3, 10)):
        assert torch.equal(kernels.linear(x[rows], p, narrow_rows=True), y[rows])
    assert torch.equal(kernels.linear(x, p, narrow_rows=True, threads=1), y)
    best = kernels.isa()
    order = ["generic", "avx2", "avx512"]
    try:
        for name in order[: order.index(best) + 1]:
            kernels.set_isa(name)
            assert torch.equal(kernels.linear(x, p, narrow_rows=True), y), name
    finally:
        kernels.set_isa(best)
    floats = kernels.linear(x, p)
    assert ((y - floats).norm() / floats.norm()) < 2e-2
    assert torch.equal(kernels.linear(x, p, slice(20, 180), narrow_rows=True), y[:, 20:180])


@pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")
def test_int8_rows_of_nan_inf_and_underflow_are_the_same_bits_on_every_path() -> None:
    """Rows no model should make, quantised alike on every instruction set: a NaN
    becomes 0, an infinity makes its row's scale infinite, a maximum too small
    to divide by 127 makes it 0."""
    gen = torch.Generator().manual_seed(5)
    q, scale = quantize_rows(torch.randn(48, 36, generator=gen) * 0.02)
    p = kernels.pack(q, None, torch.int8, scale)
    x = torch.randn(12, 36, generator=gen)
    x[1, 3] = x[2, 20] = x[2, 35] = float("nan")  # in a whole vector of 16, and in the tail
    x[3, 5] = float("inf")
    x[4] = 0.0
    x[4, 0] = 1e-45  # the scale underflows to 0
    bits = []
    best = kernels.isa()
    order = ["generic", "avx2", "avx512"]
    try:
        for name in order[: order.index(best) + 1]:
            kernels.set_isa(name)
            bits.append(kernels.linear(x, p, narrow_rows=True).view(torch.int32))
    finally:
        kernels.set_isa(best)
    assert all(torch.equal(b, bits[0]) for b in bits)
    y = bits[0].view(torch.float32)
    assert torch.isfinite(y[[0, 1, 2, 4, 5]]).all()  # a NaN costs its element, not its row


@pytest.mark.parametrize("use_kernels", PATHS)
def test_int8_logits_stay_close_to_float32(tiny_models: Path, use_kernels: bool) -> None:
    """Within 2 % (relative L2) after a prefill and after each one-token step."""
    path = tiny_models / "text.pt"
    full = stepper_for(load_checkpoint(path, "causal", use_kernels=use_kernels))
    q = stepper_for(load_checkpoint(path, "causal", dtype=torch.int8, use_kernels=use_kernels))
    ids = torch.randint(0, 10_000, (70,), generator=torch.Generator().manual_seed(0))
    errors = []
    with torch.inference_mode():
        caches = full.new_cache(1), q.new_cache(1)
        for t in [60, *range(61, 71)]:
            feed = [Feed(0, ids[:60], fresh=True)] if t == 60 else [Feed(0, ids[t - 1 : t])]
            a, b = full.advance(caches[0], feed, None), q.advance(caches[1], feed, None)
            errors.append(((b - a).norm() / a.norm()).item())
    assert all(0 < e < 2e-2 for e in errors), errors


@pytest.fixture(scope="module", params=PATHS)
def int8_engine(request, tiny_models: Path) -> Engine:
    engine = Engine(EngineConfig(models=str(tiny_models), device="cpu", dtype="int8",
                                 kernels=request.param))
    engine.load()
    return engine


def test_int8_generation_is_whole_and_deterministic(int8_engine: Engine) -> None:
    a = assert_whole_and_deterministic(int8_engine, "Quarter weights.")
    fallback = not int8_engine.uses_kernels
    tiles = ", AMX tiles" if int8_engine.uses_kernels and kernels.amx() else ""
    assert a.model_id.endswith("int8 on cpu" + (", torch fallback" if fallback else "") + tiles)
    assert int8_engine.dtype_name == "int8"
    assert (int8_engine.precision_advice is None) == int8_engine.uses_kernels


def test_int8_batched_takes_equal_single_runs(int8_engine: Engine) -> None:
    assert_takes_equal_single_runs(int8_engine, "Four at once.", [5, 6, 7, 8],
                                   exact=("semantic", "coarse", "fine"))


def test_auto_takes_bf16_only_where_it_pays() -> None:
    # the kernels widen bf16 exactly: it pays on any CPU they run on
    assert auto_dtype(CPU, with_kernels=True, has_native_bf16=False) == torch.bfloat16
    # the fallback multiplies with torch's own bf16 kernels: only with native bf16
    assert auto_dtype(CPU, with_kernels=False, has_native_bf16=True) == torch.bfloat16
    assert auto_dtype(CPU, with_kernels=False, has_native_bf16=False) == torch.float32
    assert resolve_dtype(None, CPU, False, has_native_bf16=False) == torch.float32
    assert resolve_dtype("auto", CPU, True) == torch.bfloat16
    assert resolve_dtype("float32", CPU, True) == torch.float32  # one setting away


def test_auto_in_the_engine_follows_the_probe(monkeypatch: pytest.MonkeyPatch,
                                              tiny_models: Path) -> None:
    """Without the kernels, the engine's auto asks torch's own probe (injected here)."""
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    for native, want in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n)
        engine = Engine(EngineConfig(models=str(tiny_models), device="cpu", kernels=False))
        assert engine.dtype_name == want
    if kernels.available():
        assert Engine(EngineConfig(models=str(tiny_models), device="cpu")).dtype_name == "bfloat16"


def test_precision_names_and_refusals() -> None:
    assert ("auto", *DTYPES) == PRECISIONS  # one list, without torch, for the CLI and settings
    with pytest.raises(BadInputError, match="unknown precision 'int4'"):
        Engine(EngineConfig(device="cpu", dtype="int4"))
    with pytest.raises(ValueError, match="int8 weights run on the CPU only"):
        resolve_dtype("int8", torch.device("cuda"), False)


def test_advice_for_int8_without_the_kernels() -> None:
    assert precision_advice(torch.int8, CPU, True) is None
    assert "float32's speed" in precision_advice(torch.int8, CPU, False)


@pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")
@pytest.mark.parametrize("precision", list(DTYPES))
def test_the_footprint_before_loading_is_what_loading_takes(tiny_models: Path,
                                                             precision: str) -> None:
    """`bark-tui info` counts bytes on the meta device; they equal the loaded models'."""
    from bark_engine.model.footprint import model_bytes

    for name, kind in (("text.pt", "causal"), ("fine.pt", "fine")):
        model = load_checkpoint(tiny_models / name, kind, dtype=DTYPES[precision])
        assert model_bytes(model.config, kind == "fine", precision) == weight_bytes(model), name


@pytest.mark.skipif(not kernels.available(), reason="CPU kernels not built here")
@pytest.mark.parametrize("dtype", [torch.int8, pytest.param(torch.bfloat16, marks=pytest.mark.skipif(
    not kernels.bf16_dot(), reason="bf16 rows need AVX512-BF16"))], ids=["int8", "bf16"])
def test_a_call_mixing_prefills_and_steps_equals_each_feed_alone(tiny_models: Path,
                                                                 dtype: torch.dtype) -> None:
    """Prefills take narrow rows and steps float rows: a call with both runs them as
    two passes, and each feed's logits are those of its call alone."""
    stepper = stepper_for(load_checkpoint(tiny_models / "coarse.pt", "causal", dtype=dtype))
    assert stepper.narrow
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randint(0, 10_000, (30,), generator=gen), torch.randint(0, 10_000, (20,),
                                                                            generator=gen)
    with torch.inference_mode():
        alone = stepper.new_cache(2)
        stepper.advance(alone, [Feed(1, b, fresh=True)], None)
        want_a = stepper.advance(alone, [Feed(0, a, fresh=True)], None)
        want_b = stepper.advance(alone, [Feed(1, a[:1])], None)
        mixed = stepper.new_cache(2)
        stepper.advance(mixed, [Feed(1, b, fresh=True)], None)
        got = stepper.advance(mixed, [Feed(1, a[:1]), Feed(0, a, fresh=True)], None)
    assert torch.equal(got[0], want_b[0]) and torch.equal(got[1], want_a[0])
