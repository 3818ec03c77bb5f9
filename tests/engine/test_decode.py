"""`decode.DecodePlan`: the one-token fast path gives the generic forward's logits bit for bit."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from bark_engine.config import stage_configs
from bark_engine.model.decode import DecodePlan, decode_plan
from bark_engine.model.gpt import GPT, use_decode_layout
from tests.engine.reference_port import tiny_model


def decode_run(model: GPT, fast: bool, vocab: slice | None, steps: int = 12) -> torch.Tensor:
    """Prefill random ids, then sample `steps` tokens; the logits of every step (steps, V)."""
    model.fast_decode = fast
    ids = torch.Generator().manual_seed(1)
    draws = torch.Generator().manual_seed(2)
    out = []
    with torch.inference_mode():
        cache = model.new_cache(1)
        logits = model(torch.randint(0, 10_000, (1, 40), generator=ids), cache, vocab=vocab)
        for _ in range(steps):
            token = torch.multinomial(logits[0, 0].softmax(-1), 1, generator=draws)
            logits = model(token.view(1, 1), cache, vocab=vocab)
            out.append(logits[0, 0].clone())
    return torch.stack(out)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("vocab", [None, slice(0, 10_001)])
def test_plan_logits_equal_the_generic_forward(bias: bool, vocab: slice | None) -> None:
    model = use_decode_layout(
        tiny_model("semantic", seed=3, cfg=replace(stage_configs("tiny")["semantic"], bias=bias))
    )
    plan = decode_run(model, True, vocab)
    assert decode_plan(model) is not None  # the fast path really ran
    assert torch.equal(plan, decode_run(model, False, vocab))


def test_plan_needs_the_decode_layout_and_follows_it() -> None:
    model = tiny_model("coarse", seed=4)
    assert decode_plan(model) is None  # row-major weights: the generic path
    use_decode_layout(model)
    plan = decode_plan(model)
    assert isinstance(plan, DecodePlan) and decode_plan(model) is plan  # built once, reused
    with torch.inference_mode(False), torch.no_grad():
        head = model.lm_head.weight
        head.data = head.data.t().contiguous().t().clone()  # a new tensor: views are stale
    fresh = decode_plan(model)
    assert fresh is not None and fresh is not plan
    assert fresh.head.data_ptr() == model.lm_head.weight.data_ptr()


def test_plan_follows_the_thread_count() -> None:
    model = use_decode_layout(tiny_model("coarse", seed=4))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decode_plan(model)
        torch.set_num_threads(2)
        two = decode_plan(model)
    finally:
        torch.set_num_threads(before)
    assert one is not None and two is not None and one is not two
    assert one.layers[0].fc.parts.shape[0] == 1
    assert two.layers[0].fc.parts.shape[0] == 2


def test_plan_refuses_to_run_past_the_context() -> None:
    model = use_decode_layout(tiny_model("coarse", seed=4))
    size = model.config.block_size
    with torch.inference_mode():
        cache = model.new_cache(1)
        model(torch.zeros(1, size, dtype=torch.long), cache)
        with pytest.raises(ValueError, match=f"sequence of {size + 1} exceeds"):
            model(torch.zeros(1, 1, dtype=torch.long), cache)


def test_cuda_graph_bookkeeping_drops_graphs_with_their_caches() -> None:
    """The graphs' registry (no GPU needed to build entries): one per cache and vocab,
    reused while the cache lives, gone with it, so no dead KV cache is kept alive."""
    import gc

    from bark_engine.model.cuda_graphs import graph_step

    model = tiny_model("coarse", seed=4)
    cache = model.new_cache(1, max_len=8)
    first = graph_step(model, cache, None)
    assert graph_step(model, cache, None) is first
    other = model.new_cache(1, max_len=8)
    second = graph_step(model, other, slice(0, 10))
    assert graph_step(model, other, None) is not second  # another vocab, another graph
    assert len(model._cuda_graphs) == 3
    del cache, first
    gc.collect()
    graph_step(model, other, slice(0, 10))
    assert len(model._cuda_graphs) == 2
    assert all(step.cache is other for step in model._cuda_graphs.values())
