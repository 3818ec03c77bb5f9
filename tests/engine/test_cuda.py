"""The engine on a CUDA GPU: skipped where torch sees none (CI has no GPU).

Run on a GPU machine with `python -m pytest -q tests/engine/test_cuda.py`.
Float32 with TF32 off must agree with the CPU (proven against the port in
test_reference.py) and with the port on the same GPU; bf16 and fp16 must run
end to end, deterministically by seed, and stop promptly when cancelled;
rows of a batch must equal their runs alone (the graph always steps all its
slots, so a row sees the same kernels whatever its neighbours).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine import EngineConfig, GenerationOptions
from bark_engine.engine import Engine, Request
from bark_engine.model.cuda_graphs import GraphStepper
from bark_engine.model.steps import EagerStepper, Feed
from bark_engine.stages.coarse import generate_coarse
from bark_engine.stages.fine import generate_fine
from bark_engine.stages.semantic import (
    SemanticRow,
    generate_semantic,
    semantic_context,
    semantic_rows,
)
from tests.engine.cancel_check import assert_cancel_is_prompt
from tests.engine.reference_port import tiny_model, to_port
from tests.engine.take_checks import assert_takes_equal_single_runs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SHORT = GenerationOptions(seed=11, max_duration_s=0.4)


@pytest.fixture(autouse=True)
def exact_float32():
    """TF32 matmuls would round float32 products to 10-bit mantissas."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@torch.no_grad()
def test_semantic_logits_match_the_port_on_the_gpu() -> None:
    model = tiny_model("semantic", seed=3)
    port = to_port(model, "semantic").cuda()
    model = model.cuda()
    ids = torch.from_numpy(semantic_context(list(range(500, 540)), None))[None].cuda()
    embeds = torch.cat(
        [
            port.input_embeds_layer(ids[:, :256]) + port.input_embeds_layer(ids[:, 256:512]),
            port.input_embeds_layer(ids[:, 512:]),
        ],
        dim=1,
    )
    theirs = port(inputs_embeds=embeds, use_cache=False).logits
    ours = model(ids, merge_context=True, last_only=False)
    err = (ours - theirs).abs().max().item()
    assert err <= 1e-4 * theirs.abs().max().item(), err
    cache = model.new_cache(1)
    extra = torch.tensor([[17, 4242, 9999]], device="cuda")
    steps = [model(ids, cache, merge_context=True)]
    steps += [model(extra[:, i : i + 1], cache) for i in range(3)]
    theirs = port(
        inputs_embeds=torch.cat([embeds, port.input_embeds_layer(extra)], dim=1), use_cache=False
    ).logits[:, -4:]
    err = (torch.cat(steps, dim=1) - theirs).abs().max().item()
    assert err <= 1e-4 * theirs.abs().max().item(), err


@pytest.mark.parametrize("graphs", [True, False])
@torch.no_grad()
def test_greedy_tokens_on_the_gpu_equal_the_cpu(graphs: bool) -> None:
    rng = np.random.default_rng(0)
    text = list(range(1000, 1030))
    sem_model = tiny_model("semantic", seed=1)
    cpu_sem = generate_semantic(sem_model, text, None, temperature=None, generator=None)
    sem_model = sem_model.cuda()
    stepper = GraphStepper(sem_model) if graphs else EagerStepper(sem_model)
    gpu_sem = generate_semantic(sem_model, text, None, temperature=None, generator=None,
                                stepper=stepper)
    np.testing.assert_array_equal(gpu_sem, cpu_sem)
    assert (getattr(stepper, "_graph", None) is not None) == graphs  # the graph really ran
    semantic = rng.integers(0, 10_000, 101)
    coarse_model = tiny_model("coarse", seed=6)
    history = rng.integers(0, 10_000, 300), rng.integers(0, 1024, (2, 450))
    cpu_coarse = generate_coarse(coarse_model, semantic, *history, temperature=None,
                                 generator=None)
    coarse_model = coarse_model.cuda()
    gpu_coarse = generate_coarse(coarse_model, semantic, *history, temperature=None,
                                 generator=None, stepper=GraphStepper(coarse_model) if graphs
                                 else EagerStepper(coarse_model))
    np.testing.assert_array_equal(gpu_coarse, cpu_coarse)
    fine_model = tiny_model("fine", seed=8)
    coarse = rng.integers(0, 1024, (2, 1300))
    history = rng.integers(0, 1024, (8, 700))
    cpu_fine = generate_fine(fine_model, coarse, history, temperature=None, generator=None)
    gpu_fine = generate_fine(fine_model.cuda(), coarse, history, temperature=None, generator=None)
    np.testing.assert_array_equal(gpu_fine, cpu_fine)


@torch.no_grad()
def test_graph_step_logits_follow_the_eager_step() -> None:
    model = tiny_model("coarse", seed=4).cuda()
    ids = torch.randint(0, 12_000, (300,), generator=torch.Generator().manual_seed(0)).cuda()
    vocab = slice(10_000, 12_048)
    runs = {}
    for graphs in (False, True):
        stepper = GraphStepper(model) if graphs else EagerStepper(model)
        cache = stepper.new_cache(2)
        out = [stepper.advance(cache, [Feed(1, ids[:280], fresh=True)], vocab)]
        out += [stepper.advance(cache, [Feed(1, ids[i : i + 1])], vocab) for i in range(280, 300)]
        runs[graphs] = torch.cat(out)
        assert cache.lengths[1] == 300
    err = (runs[True] - runs[False]).abs().max().item()
    assert err <= 1e-4 * runs[False].abs().max().item(), err
    stepper = GraphStepper(model)
    cache = stepper.new_cache(1)
    size = model.config.block_size
    stepper.advance(cache, [Feed(0, torch.zeros(size, dtype=torch.long, device="cuda"),
                                 fresh=True)], None)
    with pytest.raises(ValueError, match="exceeds"):
        stepper.advance(cache, [Feed(0, ids[:1])], None)


def test_rows_on_the_gpu_equal_their_runs_alone() -> None:
    model = tiny_model("semantic", seed=0).cuda()
    stepper = GraphStepper(model)

    def rows(seeds):
        return [SemanticRow(list(range(2000 + 3 * s, 2020 + 5 * s)), None, 1.0, min_eos_p=1e-4,
                            max_duration_s=[0.3, 1.0, 0.6][s % 3],
                            generator=torch.Generator(device="cuda").manual_seed(s))
                for s in seeds]

    with torch.inference_mode():
        alone = [semantic_rows(stepper, rows([s]))[0] for s in range(8)]
        batch = semantic_rows(stepper, rows(range(8)))
    for a, b in zip(alone, batch, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(
    scope="module",
    params=[("bfloat16", True), ("float16", True), ("float32", True), ("bfloat16", False)],
    ids=["bf16", "fp16", "fp32", "bf16-eager"],
)
def gpu_engine(request, tiny_models: Path) -> Engine:
    dtype, graphs = request.param
    engine = Engine(
        EngineConfig(models=str(tiny_models), device="cuda", dtype=dtype, cuda_graphs=graphs)
    )
    engine.load()
    return engine


def test_generate_on_the_gpu_is_whole_and_deterministic(gpu_engine: Engine) -> None:
    a = gpu_engine.generate("Hello from the GPU.", voice="v2/en_speaker_6", options=SHORT)
    b = gpu_engine.generate("Hello from the GPU.", voice="v2/en_speaker_6", options=SHORT)
    assert 0 < len(a.semantic) <= 21 and a.semantic.max() < 10_000
    assert a.coarse.shape[1] == a.fine.shape[1] > 0 and a.fine.max() < 1024
    assert a.audio.dtype == np.float32 and len(a.audio) == a.fine.shape[1] * 320
    assert np.isfinite(a.audio).all()
    for name in ("semantic", "coarse", "fine"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_takes_on_the_gpu_equal_single_runs(gpu_engine: Engine) -> None:
    assert_takes_equal_single_runs(gpu_engine, "Two takes at once.", [5, 6],
                                   exact=("semantic", "coarse", "fine"))


def test_a_batch_of_segments_on_the_gpu_equals_each_alone(gpu_engine: Engine) -> None:
    texts = ["One.", "A second, longer line.", "Three.", "Four is here."]
    reqs = [Request(t, "v2/en_speaker_6" if i % 2 else None,
                    GenerationOptions(seed=i, max_duration_s=0.5), segment=i)
            for i, t in enumerate(texts)]
    for req, take in zip(reqs, gpu_engine.generate_batch(reqs), strict=True):
        alone = gpu_engine.generate(req.text, req.voice, req.options)
        for name in ("semantic", "coarse", "fine"):
            np.testing.assert_array_equal(getattr(take, name), getattr(alone, name))


def test_cancel_on_the_gpu_is_prompt(gpu_engine: Engine) -> None:
    assert_cancel_is_prompt(gpu_engine, then=SHORT)


def test_repeated_takes_do_not_grow_gpu_memory(gpu_engine: Engine) -> None:
    """Each take makes new KV caches; their graphs must go with them, so memory held
    after many takes equals what it was after the first few (nothing accumulates)."""
    for _ in range(3):
        gpu_engine.generate("Memory stays flat.", options=SHORT)
    torch.cuda.synchronize()
    settled = torch.cuda.memory_allocated()
    for _ in range(12):
        gpu_engine.generate("Memory stays flat.", options=SHORT)
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= settled
