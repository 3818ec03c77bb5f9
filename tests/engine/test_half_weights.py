"""bf16/fp16 on the CPU (`matvec.use_half_weights`): half matrices, float32 everything else.

What must hold: only the untied Linear weights change dtype; the fast decode
path still applies and equals the generic forward bit for bit; packed and
plain half weights compute the same products; results stay close to float32;
and a whole generation (single and batched) runs and is deterministic by seed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from bark_engine.model.decode import decode_plan
from torch import nn

from bark_engine import EngineConfig, GenerationOptions
from bark_engine.engine import Engine
from bark_engine.loading.checkpoints import load_checkpoint
from bark_engine.model import matvec
from bark_engine.model.gpt import LayerNorm, use_decode_layout
from tests.engine.take_checks import assert_takes_equal_single_runs
from tests.engine.test_decode import decode_run


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.fixture(scope="module", params=[torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def pair(request, tiny_models: Path):
    """The tiny semantic model in float32 and with half weights, from the same checkpoint."""
    path = tiny_models / "text.pt"
    return load_checkpoint(path, "causal"), load_checkpoint(path, "causal", dtype=request.param)


def test_only_the_untied_matrices_are_half(pair, tiny_models: Path) -> None:
    _, half = pair
    dtype = half.lm_head.weight.dtype
    assert dtype in (torch.bfloat16, torch.float16)
    kinds = {nn.Linear: 0, nn.Embedding: 0, LayerNorm: 0}
    for name, module in half.named_modules():
        if isinstance(module, nn.Linear):
            assert module.weight.dtype == dtype and module.weight.is_contiguous(), name
        elif isinstance(module, (nn.Embedding, LayerNorm)):
            assert all(p.dtype == torch.float32 for p in module.parameters(recurse=False)), name
        kinds[type(module)] = kinds.get(type(module), 0) + 1
    assert all(kinds[k] > 0 for k in (nn.Linear, nn.Embedding, LayerNorm))
    assert half.new_cache(1).kv.dtype == torch.float32  # attention stays float32
    fine = load_checkpoint(tiny_models / "fine.pt", "fine", dtype=dtype)
    assert all(h.weight.dtype == torch.float32 for h in fine.lm_heads)  # tied to embeddings
    assert fine.transformer["h"][0].mlp.c_fc.weight.dtype == dtype


def test_logits_stay_close_to_float32(pair) -> None:
    """After a prefill (many-row products) and after each one-token step (gemv)."""
    full, half = pair
    ids = torch.randint(0, 10_000, (1, 70), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        caches = full.new_cache(1), half.new_cache(1)
        a, b = full(ids[:, :60], caches[0]), half(ids[:, :60], caches[1])
        errors = [rel_err(b, a)]
        for t in range(60, 70):  # the same tokens into both
            a, b = full(ids[:, t : t + 1], caches[0]), half(ids[:, t : t + 1], caches[1])
            errors.append(rel_err(b, a))
    assert b.dtype == torch.float32
    assert all(0 < e < 1e-2 for e in errors), errors  # half rounding: close, not equal


@pytest.mark.parametrize("vocab", [None, slice(0, 10_001)])
def test_decode_plan_applies_and_equals_the_generic_forward(pair, vocab) -> None:
    _, half = pair
    use_decode_layout(half)  # leaves half weights alone
    fast = decode_run(half, True, vocab)
    assert decode_plan(half) is not None
    assert torch.equal(fast, decode_run(half, False, vocab))


def test_one_row_product_matches_many_rows_and_leaves_onednn_on(pair) -> None:
    """One row goes through torch's own gemv with oneDNN switched off for that
    call only (the switch must be back on after it); it agrees with oneDNN's
    many-row product of the same row to rounding."""
    _, half = pair
    w = half.transformer["h"][0].mlp.c_fc.weight
    rows = torch.randn(5, w.shape[1], generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        one = matvec.linear(rows[2:3], w)
        assert torch._C._get_mkldnn_enabled()
        many = matvec.linear(rows, w)
    assert one.dtype == many.dtype == torch.float32
    torch.testing.assert_close(one[0], many[2], rtol=1e-2, atol=1e-2)


@pytest.fixture(scope="module")
def bf16_engine(tiny_models: Path) -> Engine:
    engine = Engine(EngineConfig(models=str(tiny_models), device="cpu", dtype="bfloat16"))
    engine.load()
    return engine


def test_bf16_generation_is_whole_and_deterministic(bf16_engine: Engine) -> None:
    options = GenerationOptions(seed=4, max_duration_s=0.5)
    a = bf16_engine.generate("Half weights.", voice="v2/en_speaker_6", options=options)
    b = bf16_engine.generate("Half weights.", voice="v2/en_speaker_6", options=options)
    assert len(a.semantic) > 0 and a.coarse.shape[1] == a.fine.shape[1] > 0
    assert a.audio.dtype == np.float32 and np.isfinite(a.audio).all()
    for name in ("semantic", "coarse", "fine", "audio"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_bf16_batched_takes_equal_single_runs(bf16_engine: Engine) -> None:
    assert_takes_equal_single_runs(bf16_engine, "Two at once.", [5, 6],
                                   exact=("semantic", "coarse", "fine"))


def test_advice_names_the_slow_half_precisions(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert matvec.half_weights_advice(torch.float32, cpu) is None
    assert matvec.half_weights_advice(torch.bfloat16, gpu) is None
    assert "float16 on the CPU is no faster" in matvec.half_weights_advice(torch.float16, cpu)
    # a CPU without native bf16 (most laptops): simulated through torch's own probe
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert "no native bfloat16" in matvec.half_weights_advice(torch.bfloat16, cpu)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert matvec.half_weights_advice(torch.bfloat16, cpu) is None


def test_a_half_checkpoint_file_still_gets_float32_activations(
    tiny_models: Path, tmp_path: Path
) -> None:
    """Community checkpoints are sometimes saved in float16: loading one as bf16 on
    the CPU still gives float32 embeddings, norms and cache, and bf16 matrices."""
    from bark_engine.loading.checkpoints import safe_torch_load
    from bark_engine.testing.checkpoint_files import save_checkpoint

    ckpt = safe_torch_load(tiny_models / "text.pt")
    ckpt["model"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    save_checkpoint(ckpt, tmp_path / "text.pt")
    model = load_checkpoint(tmp_path / "text.pt", "causal", dtype=torch.bfloat16)
    assert model.transformer["wte"].weight.dtype == torch.float32
    assert model.transformer["ln_f"].weight.dtype == torch.float32
    assert model.transformer["h"][0].attn.c_attn.weight.dtype == torch.bfloat16
    assert model.new_cache(1).kv.dtype == torch.float32


def test_the_onednn_switch_is_restored_after_an_error_and_left_as_found() -> None:
    w = torch.randn(64, 32).bfloat16()
    with pytest.raises(RuntimeError):
        matvec._half_linear(torch.randn(1, 31), w)  # one row of the wrong width
    assert torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)  # a user who turned oneDNN off keeps it off
    try:
        assert matvec.linear(torch.randn(1, 32), w).shape == (1, 64)
        assert not torch._C._get_mkldnn_enabled()
    finally:
        torch._C._set_mkldnn_enabled(True)


def test_bf16_products_do_not_depend_on_another_threads_decode_steps() -> None:
    """Two generations can overlap in the studio: a many-row bf16 product must give
    the same bits while another thread runs one-row products (which switch oneDNN
    off for an instant), or the same seed would give other tokens."""
    gen = torch.Generator().manual_seed(0)
    big_w = torch.randn(1024, 768, generator=gen).bfloat16()
    rows = torch.randn(300, 768, generator=gen)
    reference = matvec.linear(rows, big_w)
    small_w = torch.randn(768, 768, generator=gen).bfloat16()
    one = torch.randn(1, 768, generator=gen)
    stop = threading.Event()

    def decode_steps() -> None:
        while not stop.is_set():
            matvec.linear(one, small_w)

    thread = threading.Thread(target=decode_steps)
    thread.start()
    try:
        same = [torch.equal(matvec.linear(rows, big_w), reference) for _ in range(40)]
    finally:
        stop.set()
        thread.join()
    assert all(same), f"{same.count(False)} of 40 products differed"
