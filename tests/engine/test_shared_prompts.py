"""Takes of one prompt share its keys and values (`KernelCache.share`).

Rows whose fresh prompts are the same ids run that prompt once; the others
read its whole panels of keys and values from the first row's slot. These
tests hold the sharing to its promise: every row's logits are the bits it
gets alone, on each instruction set, in float32 and bfloat16 caches, and
also after the slot that holds the prompt is written anew.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from bark_engine.config import stage_configs
from bark_engine.model import kernel_blocks
from bark_engine.model.kernel_step import KernelStepper, same_prompts
from bark_engine.model.steps import Feed
from tests.engine.reference_port import laid_out, tiny_model
from tests.engine.test_steps import stepper_logits

from .isa_runs import run_isa

VOCAB = slice(0, 10_001)
PROMPT = 41  # two whole panels of keys (shared) and 9 positions more (copied)


def _ids(seed: int, n: int) -> torch.Tensor:
    return torch.randint(0, 10_000, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model():
    return laid_out(tiny_model("semantic", seed=5), "kernels")


def alone(stepper: KernelStepper, prompt: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Logits (1 + len(tokens), V) of one row in a cache of its own."""
    return stepper_logits(stepper, torch.cat([prompt, tokens]), len(prompt), VOCAB)


@torch.inference_mode()
@pytest.mark.parametrize("kv", [torch.float32, torch.bfloat16], ids=["f32 kv", "bf16 kv"])
def test_takes_of_one_prompt_share_it_and_get_the_bits_of_running_alone(model, kv, each_isa):
    stepper = KernelStepper(model, kv_dtype=kv)
    prompt = _ids(1, PROMPT)
    other = _ids(2, PROMPT)
    tokens = [_ids(10 + b, 12) for b in range(4)]  # each take draws its own tokens
    prompts = [prompt, prompt, other, prompt]
    expected = [alone(stepper, p, t) for p, t in zip(prompts, tokens, strict=True)]
    for isa in each_isa:
        def run():
            cache = stepper.new_cache(4)
            first = stepper.advance(cache, [Feed(b, p, fresh=True) for b, p in enumerate(prompts)],
                                    VOCAB)
            # slots 1 and 3 read slot 0's first 32 positions; slot 2's prompt is its own
            assert cache.source.tolist() == [0, 0, 2, 0]
            assert cache.shared.tolist() == [0, 32, 0, 32]
            assert cache.lengths == [PROMPT] * 4
            out = [first]
            for t in range(12):
                out.append(stepper.advance(cache, [Feed(b, tokens[b][t][None]) for b in range(4)],
                                           VOCAB))
            return torch.stack(out, 1)  # (4, 13, V)
        got = run_isa(isa, run)
        for b in range(4):
            assert torch.equal(got[b], expected[b]), (isa, b)


@torch.inference_mode()
@pytest.mark.parametrize("kv", [torch.float32, torch.bfloat16], ids=["f32 kv", "bf16 kv"])
def test_many_rows_read_a_shared_prompt_as_their_own(kv, each_isa):
    """Continuations of 7 and 20 tokens on a slot that shares (several rows and,
    with 32-wide heads, several value panels per product: every kernel shape)."""
    cfg = replace(stage_configs("tiny")["semantic"], n_head=1)
    wide = laid_out(tiny_model("semantic", seed=7, cfg=cfg), "kernels")
    stepper = KernelStepper(wide, kv_dtype=kv)
    prompt, more = _ids(8, PROMPT), [_ids(9, 7), _ids(10, 20)]

    def run(slots: int) -> list[torch.Tensor]:
        cache = stepper.new_cache(slots)
        stepper.advance(cache, [Feed(b, prompt, fresh=True) for b in range(slots)], VOCAB)
        assert cache.shared.tolist()[-1] == (32 if slots > 1 else 0)
        return [stepper.advance(cache, [Feed(slots - 1, ids)], VOCAB)[0] for ids in more]

    for isa in each_isa:
        expected = run_isa(isa, lambda: run(1))
        got = run_isa(isa, lambda: run(2))  # slot 1 reads slot 0's prompt
        assert all(torch.equal(g, e) for g, e in zip(got, expected, strict=True)), isa


@torch.inference_mode()
def test_a_prompt_written_anew_leaves_the_rows_that_shared_it_their_copy(model):
    """Slot 0 holds the shared prompt, then starts a new one while slots 1 and 2
    go on: they get a copy first, and every row keeps its own bits."""
    stepper = KernelStepper(model)
    prompt, fresh = _ids(3, PROMPT), _ids(4, 23)
    tokens = [_ids(20 + b, 10) for b in range(3)]
    cache = stepper.new_cache(3)
    stepper.advance(cache, [Feed(b, prompt, fresh=True) for b in range(3)], VOCAB)
    got: list[list[torch.Tensor]] = [[], [], []]
    for t in range(4):
        out = stepper.advance(cache, [Feed(b, tokens[b][t][None]) for b in range(3)], VOCAB)
        for b in range(3):
            got[b].append(out[b])
    out = stepper.advance(cache, [Feed(0, fresh, fresh=True)]
                          + [Feed(b, tokens[b][4][None]) for b in (1, 2)], VOCAB)
    assert cache.shared.tolist() == [0, 0, 0] and cache.source.tolist() == [0, 1, 2]
    restart = [out[0]]
    for b in (1, 2):
        got[b].append(out[b])
    for t in range(5, 10):
        out = stepper.advance(cache, [Feed(0, tokens[0][t][None])]
                              + [Feed(b, tokens[b][t][None]) for b in (1, 2)], VOCAB)
        restart.append(out[0])
        for b in (1, 2):
            got[b].append(out[b])
    for b in (1, 2):
        expected = alone(stepper, prompt, tokens[b])
        assert torch.equal(torch.stack(got[b]), expected[1:]), b
    assert torch.equal(torch.stack(restart), alone(stepper, fresh, tokens[0][5:10]))


def test_only_fresh_prompts_of_the_same_ids_and_kind_are_twins():
    a, b = _ids(1, 8), _ids(2, 8)
    feeds = [Feed(0, a, fresh=True), Feed(1, a.clone(), fresh=True), Feed(2, b, fresh=True),
             Feed(3, a, fresh=True, merge_context=True), Feed(4, a), Feed(5, a[:1], fresh=True),
             Feed(6, a[:1], fresh=True), Feed(7, a.clone(), fresh=True)]
    firsts, twins = same_prompts(feeds)
    assert twins == {1: 0, 7: 0}
    assert firsts == [0, 2, 3, 4, 5, 6]


@torch.inference_mode()
def test_shares_that_point_outside_the_cache_or_split_a_panel_are_refused(model):
    stepper = KernelStepper(model)
    cache = stepper.new_cache(2)
    x = torch.zeros(1, model.config.n_embd)
    one = torch.zeros(1, dtype=torch.long)
    bad = [(torch.tensor([0, 2]), torch.tensor([0, 16])),  # no slot 2
           (torch.tensor([0, 0]), torch.tensor([0, 8])),  # half a panel
           (torch.tensor([0, 0]), torch.tensor([0, 16], dtype=torch.int32)),
           (torch.tensor([0]), torch.tensor([0]))]  # one entry per slot
    for shares in bad:
        with pytest.raises(ValueError, match="share"):
            kernel_blocks.blocks(stepper.plan, x.clone(), cache.kT, cache.v, one, one, one + 1,
                                 None, model.config.n_head, 1e-5, shares=shares)
    three = stepper.new_cache(3)
    chain = (torch.tensor([0, 0, 1]), torch.tensor([0, 16, 16]))  # slot 1 shares already
    inside = (torch.tensor([0, 0, 2]), torch.tensor([0, 16, 0]))  # a row at 0 of slot 1
    for shares, slot in ((chain, 0), (inside, 1)):
        with pytest.raises(ValueError, match="share"):
            kernel_blocks.blocks(stepper.plan, x.clone(), three.kT, three.v, one + slot, one,
                                 one + 1, None, model.config.n_head, 1e-5, shares=shares)


def test_a_cache_made_in_inference_mode_is_shared_and_released_outside_it(model):
    stepper = KernelStepper(model)
    prompt = _ids(6, PROMPT)
    with torch.inference_mode():
        cache = stepper.new_cache(2)
    with torch.no_grad():
        first = stepper.advance(cache, [Feed(b, prompt, fresh=True) for b in range(2)], VOCAB)
        assert cache.shared.tolist() == [0, 32]
        stepper.advance(cache, [Feed(0, prompt[:20], fresh=True)], VOCAB)  # a copy for slot 1
        assert cache.shared.tolist() == [0, 0]
    assert torch.equal(first[0], first[1])
