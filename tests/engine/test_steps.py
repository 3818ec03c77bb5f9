"""The step seam (`model.steps`): every strategy gives the plain model's logits.

The eager stepper is `GPT.forward` itself, so its logits are the forward's
bit for bit; the CPU kernels and the fixed-shape GPU step (run eagerly here,
no GPU needed) agree with it to float rounding, for prefills, one-token
steps and any mix of rows in one call. Which strategy a model gets is
decided by its device and layout, once.
"""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest
import torch

from bark_engine.config import stage_configs
from bark_engine.model import kernels
from bark_engine.model.cache import KernelCache, KVCache
from bark_engine.model.cuda_graphs import GraphStepper
from bark_engine.model.kernel_step import KernelFine, KernelStepper
from bark_engine.model.steps import EagerFine, EagerStepper, Feed
from bark_engine.model.strategy import fine_runner_for, stepper_for
from tests.engine.reference_port import laid_out, tiny_model

VOCAB = slice(0, 10_001)


def forward_logits(model, ids: torch.Tensor, split: int, vocab) -> torch.Tensor:
    """`GPT.forward`: prefill ids[:split], then one id at a time; logits per call (n, V)."""
    cache = model.new_cache(1)
    out = [model(ids[None, :split], cache, vocab=vocab)[0, 0]]
    out += [model(ids[None, t : t + 1], cache, vocab=vocab)[0, 0] for t in range(split, len(ids))]
    return torch.stack(out)


def stepper_logits(stepper, ids: torch.Tensor, split: int, vocab, slot: int = 1) -> torch.Tensor:
    cache = stepper.new_cache(3)
    out = [stepper.advance(cache, [Feed(slot, ids[:split], fresh=True)], vocab)[0]]
    out += [stepper.advance(cache, [Feed(slot, ids[t : t + 1])], vocab)[0]
            for t in range(split, len(ids))]
    return torch.stack(out)


@pytest.fixture(scope="module", params=[False, True], ids=["no bias", "bias"])
def semantic(request):
    cfg = replace(stage_configs("tiny")["semantic"], bias=request.param)
    return tiny_model("semantic", seed=3, cfg=cfg)


@torch.inference_mode()
def test_the_eager_stepper_is_the_forward_bit_for_bit(semantic) -> None:
    ids = torch.randint(0, 10_000, (50,), generator=torch.Generator().manual_seed(1))
    expected = forward_logits(semantic, ids, 40, VOCAB)
    assert torch.equal(stepper_logits(EagerStepper(semantic), ids, 40, VOCAB), expected)


@torch.inference_mode()
@pytest.mark.parametrize("strategy", ["kernels", "graph"])
def test_every_strategy_gives_the_forward_logits(semantic, strategy: str) -> None:
    ids = torch.randint(0, 10_000, (50,), generator=torch.Generator().manual_seed(1))
    expected = forward_logits(semantic, ids, 40, VOCAB)
    if strategy == "kernels":
        model = laid_out(tiny_model("semantic", seed=3, cfg=semantic.config), "kernels")
        stepper = KernelStepper(model)
    else:
        stepper = GraphStepper(semantic, slots=4, capture=False)  # the graph's step, eagerly
    torch.testing.assert_close(stepper_logits(stepper, ids, 40, VOCAB), expected,
                               rtol=1e-4, atol=1e-4)


@torch.inference_mode()
@pytest.mark.parametrize("strategy", ["eager", "kernels", "graph"])
def test_a_call_may_mix_prefills_and_steps_of_several_slots(strategy: str) -> None:
    """One call: a prefill in slot 0, a one-token step in slot 2, a three-token
    continuation in slot 1 — each gets what it would get alone."""
    model = tiny_model("coarse", seed=4)
    if strategy == "kernels":
        model = laid_out(model, "kernels")
    stepper = {"eager": EagerStepper, "kernels": KernelStepper,
               "graph": lambda m: GraphStepper(m, slots=3, capture=False)}[strategy](model)
    gen = torch.Generator().manual_seed(2)
    a, b, c = (torch.randint(0, 12_096, (n,), generator=gen) for n in (30, 20, 12))
    cache = stepper.new_cache(3)
    stepper.advance(cache, [Feed(1, b[:17], fresh=True), Feed(2, c[:11], fresh=True)], None)
    mixed = stepper.advance(cache, [Feed(0, a, fresh=True), Feed(2, c[11:]), Feed(1, b[17:])],
                            None)
    alone = stepper.new_cache(3)
    want = [stepper.advance(alone, [Feed(0, a, fresh=True)], None)[0]]
    stepper.advance(alone, [Feed(2, c[:11], fresh=True)], None)
    want.append(stepper.advance(alone, [Feed(2, c[11:])], None)[0])
    stepper.advance(alone, [Feed(1, b[:17], fresh=True)], None)
    want.append(stepper.advance(alone, [Feed(1, b[17:])], None)[0])
    if strategy == "kernels":  # row-wise in a fixed order: the same bits
        assert torch.equal(mixed, torch.stack(want))
    else:
        torch.testing.assert_close(mixed, torch.stack(want), rtol=1e-5, atol=1e-5)
    assert cache.lengths == [30, 20, 12]


@pytest.mark.parametrize("strategy", ["eager", "kernels", "graph"])
def test_feeds_are_checked(strategy: str) -> None:
    model = tiny_model("coarse", seed=4)
    if strategy == "kernels":
        model = laid_out(model, "kernels")
    stepper = {"eager": EagerStepper, "kernels": KernelStepper,
               "graph": lambda m: GraphStepper(m, slots=2, capture=False)}[strategy](model)
    cache = stepper.new_cache(2)
    one = torch.tensor([5])
    with torch.inference_mode():
        with pytest.raises(ValueError, match="distinct slots"):
            stepper.advance(cache, [Feed(0, one, fresh=True), Feed(0, one, fresh=True)], None)
        with pytest.raises(ValueError, match="distinct slots"):
            stepper.advance(cache, [Feed(2, one, fresh=True)], None)
        size = model.config.block_size
        stepper.advance(cache, [Feed(1, torch.zeros(size, dtype=torch.long), fresh=True)], None)
        with pytest.raises(ValueError, match=f"sequence of {size + 1} exceeds"):
            stepper.advance(cache, [Feed(1, one)], None)


@torch.inference_mode()
def test_fine_runners_agree_with_the_forward() -> None:
    model = tiny_model("fine", seed=5)
    codes = torch.randint(0, 1025, (2, 1024, 8), generator=torch.Generator().manual_seed(3))
    eager = EagerFine(model).logits([codes[0], codes[1]], [512, 0], 3)
    assert torch.equal(eager[0], model(3, codes[:1], rows=slice(512, None))[0])
    packed = laid_out(tiny_model("fine", seed=5), "kernels")
    fast = KernelFine(packed).logits([codes[0], codes[1]], [512, 0], 3)
    for a, b in zip(fast, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_strategy_follows_the_device_and_the_layout() -> None:
    plain = tiny_model("coarse", seed=4)
    assert type(stepper_for(plain)) is EagerStepper
    assert type(fine_runner_for(tiny_model("fine", seed=4))) is EagerFine
    assert type(stepper_for(laid_out(tiny_model("coarse", seed=4), "fallback"))) is EagerStepper
    if kernels.available():
        packed = laid_out(tiny_model("coarse", seed=4), "kernels")
        assert type(stepper_for(packed)) is KernelStepper
        assert isinstance(stepper_for(packed).new_cache(2), KernelCache)
        assert type(fine_runner_for(laid_out(tiny_model("fine", seed=4), "kernels"))) is KernelFine
    assert isinstance(EagerStepper(plain).new_cache(2), KVCache)


def test_the_graph_stepper_makes_a_new_graph_for_each_cache() -> None:
    """No GPU needed for the bookkeeping: a graph belongs to one cache (a stage run)
    and is dropped with the next one, so no dead KV cache stays alive."""
    model = tiny_model("coarse", seed=4)
    stepper = GraphStepper(model, slots=2, capture=False)
    one = torch.tensor([3])
    with torch.inference_mode():
        cache = stepper.new_cache(2)
        stepper.advance(cache, [Feed(0, one, fresh=True)], None)
        stepper.advance(cache, [Feed(0, one)], None)
        first = stepper._graph
        stepper.advance(cache, [Feed(0, one)], None)
        assert stepper._graph is first and first.cache is cache
        other = stepper.new_cache(2)
        assert stepper._graph is None
        del cache, first
        gc.collect()
        stepper.advance(other, [Feed(1, one, fresh=True)], None)
        stepper.advance(other, [Feed(1, one)], None)
        assert stepper._graph.cache is other
    with pytest.raises(ValueError, match="at most 2 rows"):
        stepper.new_cache(3)
