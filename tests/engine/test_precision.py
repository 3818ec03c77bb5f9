"""Half precision on the CPU: half matrix weights, float32 everything else.

What must hold, on the compiled kernels and on the pure-torch fallback: only
the linear layers' weights change dtype (embeddings, norms and the KV cache
stay float32); logits stay close to float32's; a whole generation runs, is
deterministic by seed, and a batch of takes equals the single runs; the
advice names the precisions that are slow where they would run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bark_engine import EngineConfig
from bark_engine.engine import Engine
from bark_engine.loading.checkpoints import load_checkpoint, safe_torch_load
from bark_engine.model import kernels
from bark_engine.model.gpt import LayerNorm
from bark_engine.model.precision import (
    PackedLinear,
    linear_layers,
    precision_advice,
    weight_bytes,
    weight_of,
)
from bark_engine.model.steps import Feed
from bark_engine.model.strategy import stepper_for
from bark_engine.testing.checkpoint_files import save_checkpoint
from tests.engine.take_checks import assert_takes_equal_single_runs, assert_whole_and_deterministic

HALF = [torch.bfloat16, torch.float16]
PATHS = [pytest.param(True, id="kernels", marks=pytest.mark.skipif(
    not kernels.available(), reason="CPU kernels not built here")),
    pytest.param(False, id="fallback")]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.fixture(scope="module", params=HALF, ids=["bf16", "fp16"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.mark.parametrize("use_kernels", PATHS)
def test_only_the_linear_weights_are_half(tiny_models: Path, dtype, use_kernels) -> None:
    model = load_checkpoint(tiny_models / "text.pt", "causal", dtype=dtype,
                            use_kernels=use_kernels)
    layers = linear_layers(model)
    assert layers and all(weight_of(m).dtype == dtype for _, _, m in layers)
    assert all(isinstance(m, PackedLinear) == use_kernels for _, _, m in layers)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Embedding, LayerNorm)):
            assert all(p.dtype == torch.float32 for p in module.parameters(recurse=False)), name
    cache = stepper_for(model).new_cache(1)
    # the kernels keep a bf16 KV cache beside narrow weights (rounded once as written);
    # the fallback a float32 one
    assert (cache.kT if use_kernels else cache.kv).dtype == (
        torch.bfloat16 if use_kernels else torch.float32)
    full = load_checkpoint(tiny_models / "text.pt", "causal", use_kernels=use_kernels)
    assert weight_bytes(model) < weight_bytes(full)


@pytest.mark.parametrize("use_kernels", PATHS)
def test_logits_stay_close_to_float32(tiny_models: Path, dtype, use_kernels) -> None:
    """After a prefill and after each one-token step, through the stage's own stepper."""
    path = tiny_models / "text.pt"
    full = stepper_for(load_checkpoint(path, "causal", use_kernels=use_kernels))
    half = stepper_for(load_checkpoint(path, "causal", dtype=dtype, use_kernels=use_kernels))
    ids = torch.randint(0, 10_000, (70,), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        caches = full.new_cache(1), half.new_cache(1)
        errors = []
        for t in [60, *range(61, 71)]:  # a prefill of 60, then the same tokens into both
            feed = [Feed(0, ids[:60], fresh=True)] if t == 60 else [Feed(0, ids[t - 1 : t])]
            a, b = full.advance(caches[0], feed, None), half.advance(caches[1], feed, None)
            errors.append(rel_err(b, a))
    assert b.dtype == torch.float32
    assert all(0 < e < 1e-2 for e in errors), errors  # half rounding: close, not equal


@pytest.fixture(scope="module", params=PATHS)
def bf16_engine(request, tiny_models: Path) -> Engine:
    engine = Engine(EngineConfig(models=str(tiny_models), device="cpu", dtype="bfloat16",
                                 kernels=request.param))
    engine.load()
    return engine


def test_bf16_generation_is_whole_and_deterministic(bf16_engine: Engine) -> None:
    a = assert_whole_and_deterministic(bf16_engine, "Half weights.")
    fallback = not bf16_engine.uses_kernels
    rows = ""
    if bf16_engine.uses_kernels and kernels.bf16_dot():
        rows = ", bf16 rows, AMX tiles" if kernels.amx() else ", bf16 rows"
    assert a.model_id.endswith("bfloat16 on cpu" + (", torch fallback" if fallback else "") + rows)


def test_bf16_batched_takes_equal_single_runs(bf16_engine: Engine) -> None:
    assert_takes_equal_single_runs(bf16_engine, "Two at once.", [5, 6],
                                   exact=("semantic", "coarse", "fine"))


def test_advice_names_the_slow_half_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert precision_advice(torch.float32, cpu, False) is None
    assert precision_advice(torch.bfloat16, gpu, False) is None
    # On the kernels a half weight is only widened as it is read: never slow.
    assert precision_advice(torch.float16, cpu, True) is None
    assert precision_advice(torch.bfloat16, cpu, True) is None
    assert "float16 on the CPU without the compiled kernels" in precision_advice(
        torch.float16, cpu, False)
    # a CPU without native bf16 (most laptops): simulated through torch's own probe
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert "no native bfloat16" in precision_advice(torch.bfloat16, cpu, False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert precision_advice(torch.bfloat16, cpu, False) is None


@pytest.mark.parametrize("use_kernels", PATHS)
def test_a_half_checkpoint_file_still_gets_float32_activations(
    tiny_models: Path, tmp_path: Path, use_kernels: bool
) -> None:
    """Community checkpoints are sometimes saved in float16: loading one as bf16 on
    the CPU still gives float32 embeddings, norms and cache, and bf16 matrices."""
    ckpt = safe_torch_load(tiny_models / "text.pt")
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    save_checkpoint(ckpt, tmp_path / "text.pt")
    model = load_checkpoint(tmp_path / "text.pt", "causal", dtype=torch.bfloat16,
                            use_kernels=use_kernels)
    assert model.transformer["wte"].weight.dtype == torch.float32
    assert model.transformer["ln_f"].weight.dtype == torch.float32
    assert weight_of(model.transformer["h"][0].attn.c_attn).dtype == torch.bfloat16
    cache = stepper_for(model).new_cache(1)
    assert (cache.kT if use_kernels else cache.kv).dtype == (
        torch.bfloat16 if use_kernels else torch.float32)
