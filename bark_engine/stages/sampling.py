"""Pure sampling functions on logits tensors: top-p, top-k, temperature, draw.

Every function takes logits shaped (..., V) and works row-wise, so a batch of
rows (B, V) goes through unchanged. The stage loops use B = 1; for B > 1 each
row may bring its own `torch.Generator`, so one take's random stream does not
depend on which other takes share its batch.

Order and semantics follow the original Bark: top-p on the raw logits first,
then top-k, then the temperature, then one multinomial draw. A temperature of
0 or None means greedy (argmax), the limit of sampling as temperature → 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def is_greedy(temperature: float | None) -> bool:
    """True when `temperature` asks for argmax decoding (None or 0)."""
    return temperature is None or temperature == 0


def apply_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the nucleus: the most likely tokens up to and including the first one
    whose cumulative probability exceeds `top_p`; the rest become -inf.

    The token that crosses `top_p` is kept (the original's shift-by-one), so at
    least one token always survives. Returns a new tensor of the same shape.
    """
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = torch.zeros_like(cumulative, dtype=torch.bool)
    drop_sorted[..., 1:] = cumulative[..., :-1] > top_p  # drop once the mass *before* exceeds top_p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def apply_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the `top_k` highest logits of each row (ties with the k-th included)."""
    k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Top-p then top-k, as the original orders them; a no-op when both are None."""
    if top_p is not None:
        logits = apply_top_p(logits, top_p)
    if top_k is not None:
        logits = apply_top_k(logits, top_k)
    return logits


def probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / temperature) over the last axis, computed in float32."""
    return torch.softmax(logits.float() / temperature, dim=-1)


def draw(probs: torch.Tensor, generator: Generators = None) -> torch.Tensor:
    """One multinomial draw per row: (..., V) → (...) int64.

    `generator` is one generator for all rows (the B = 1 fast path) or one per
    row of a (B, V) batch.
    """
    if generator is None or isinstance(generator, torch.Generator):
        flat = probs.reshape(-1, probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
    if probs.dim() != 2 or len(generator) != probs.shape[0]:
        raise ValueError("per-row generators need probs of shape (B, V) and B generators")
    rows = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generator, strict=True)]
    return torch.cat(rows)


def sample(
    logits: torch.Tensor,
    temperature: float | None,
    generator: Generators = None,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Token ids (...) drawn from logits (..., V); argmax when greedy."""
    logits = filter_logits(logits, top_k, top_p)
    if is_greedy(temperature):
        return logits.argmax(dim=-1)
    return draw(probabilities(logits, temperature), generator)
