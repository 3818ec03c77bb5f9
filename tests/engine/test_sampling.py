"""Sampling primitives: top-p, top-k, temperature, draws, per-row generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bark_engine.stages.sampling import (
    apply_top_k,
    apply_top_p,
    draw,
    filter_logits,
    is_greedy,
    probabilities,
    sample,
)


def original_top_p(logits: np.ndarray, top_p: float) -> np.ndarray:
    """The original's NumPy nucleus filter, written out independently for comparison."""
    order = np.argsort(logits)[::-1]
    sorted_logits = logits[order]
    p = np.exp(sorted_logits - sorted_logits.max())
    cumulative = np.cumsum(p / p.sum())
    remove = cumulative > top_p
    remove = np.concatenate([[False], remove[:-1]])
    out = logits.copy()
    out[order[remove]] = -np.inf
    return out


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_matches_the_original_filter(top_p: float) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = 3 * torch.randn(1001, generator=gen)
        ours = apply_top_p(logits, top_p)
        expected = original_top_p(logits.double().numpy(), top_p)
        np.testing.assert_array_equal(torch.isinf(ours).numpy(), np.isinf(expected))
        kept = ~torch.isinf(ours)
        torch.testing.assert_close(ours[kept], logits[kept], rtol=0, atol=0)


def test_top_p_keeps_the_token_that_crosses_the_threshold() -> None:
    # probabilities 0.5, 0.3, 0.15, 0.05, listed out of order
    logits = torch.tensor([0.15, 0.5, 0.05, 0.3]).log()
    kept = ~torch.isinf(apply_top_p(logits, 0.6))
    assert kept.tolist() == [False, True, False, True]  # 0.5 alone is under 0.6: 0.3 crosses
    kept = ~torch.isinf(apply_top_p(logits, 0.85))
    assert kept.tolist() == [True, True, False, True]
    kept = ~torch.isinf(apply_top_p(logits, 0.0))
    assert kept.tolist() == [False, True, False, False]  # the top token always survives


def test_top_p_and_top_k_work_row_by_row() -> None:
    logits = torch.randn(4, 300, generator=torch.Generator().manual_seed(1))
    batched = filter_logits(logits, top_k=17, top_p=0.7)
    for row, out in zip(logits, batched, strict=True):
        torch.testing.assert_close(out, filter_logits(row, top_k=17, top_p=0.7))


def test_top_k_keeps_exactly_k_and_tolerates_large_k() -> None:
    logits = torch.randn(500, generator=torch.Generator().manual_seed(2))
    out = apply_top_k(logits, 10)
    kept = ~torch.isinf(out)
    assert kept.sum() == 10
    assert set(torch.nonzero(kept).flatten().tolist()) == set(logits.topk(10).indices.tolist())
    assert not torch.isinf(apply_top_k(logits, 10_000)).any()


def test_filter_order_is_top_p_then_top_k() -> None:
    # top-k first would keep 2 tokens whose renormalised mass changes top-p's cut.
    logits = torch.tensor([0.4, 0.35, 0.25]).log()
    out = filter_logits(logits, top_k=2, top_p=0.5)
    assert (~torch.isinf(out)).tolist() == [True, True, False]
    assert filter_logits(logits) is logits


@pytest.mark.parametrize("temperature", [None, 0, 0.0])
def test_greedy_temperatures_take_the_argmax(temperature) -> None:
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(3))
    assert is_greedy(temperature)
    assert sample(logits, temperature).tolist() == logits.argmax(-1).tolist()


def test_probabilities_are_temperature_scaled() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0])
    torch.testing.assert_close(probabilities(logits, 0.5), torch.softmax(logits * 2, -1))
    assert probabilities(logits.half(), 1.0).dtype == torch.float32


def test_draws_follow_the_distribution() -> None:
    probs = torch.tensor([0.1, 0.6, 0.0, 0.3])
    draws = draw(probs.expand(20_000, 4), torch.Generator().manual_seed(4))
    freq = torch.bincount(draws, minlength=4).float() / 20_000
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
    assert freq[2] == 0


def test_same_seed_same_tokens_different_seed_different_tokens() -> None:
    logits = torch.zeros(64, 1000)  # uniform: every draw is pure randomness

    def run(seed: int) -> list[int]:
        return sample(logits, 1.0, torch.Generator().manual_seed(seed)).tolist()

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_per_row_generators_match_single_row_draws() -> None:
    logits = torch.randn(3, 200, generator=torch.Generator().manual_seed(7))
    gens = [torch.Generator().manual_seed(s) for s in (10, 11, 12)]
    batched = sample(logits, 0.8, gens)
    single = [
        sample(row[None], 0.8, torch.Generator().manual_seed(s)).item()
        for row, s in zip(logits, (10, 11, 12), strict=True)
    ]
    assert batched.tolist() == single
    with pytest.raises(ValueError):
        sample(logits, 0.8, gens[:2])


def test_sampled_tokens_stay_inside_the_filtered_set() -> None:
    logits = torch.randn(2000, 100, generator=torch.Generator().manual_seed(8))
    tokens = sample(logits, 1.5, torch.Generator().manual_seed(9), top_k=5, top_p=0.9)
    allowed = ~torch.isinf(filter_logits(logits, top_k=5, top_p=0.9))
    assert allowed.gather(1, tokens[:, None]).all()
