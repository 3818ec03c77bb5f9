"""The CPU strategy: every feed of a call as rows of one pass through the kernels.

A prefill of T ids and a one-token step are the same thing here: rows, each
with a slot and a position. All rows of a call go through every block in one
call into C (`kernel_blocks.blocks`): the linear products, the attention, and the
layer norms, GELU and residuals between them, each in a fixed order per row
(the embeddings, the final norm and the head stay in torch). A row's
values therefore do not depend on the other rows of the call, nor on the
thread count; and since every op is row-wise with a fixed order, a window
that continues from the cache gives the same bits as prefilling it anew.

Only the rows whose logits are wanted (each feed's last) go through the
last block's attention, MLP and the output head; every row's key and value
still reach the cache.

With int8 weights (and bf16 weights on a CPU with AVX512-BF16), the rows of
a multi-token feed (a prefill, a coarse window, a fine pass: compute-bound)
are narrowed too — int8 with exact integer sums, or bf16 with vdpbf16ps's
pair sums (`kernels.linear(narrow_rows=True)`); on AMX tiles, their
attention too, over a bf16 cache (`kernels.attend(narrow=True)`) — while
one-token steps (memory-bound) keep float rows. The choice follows the kind
of feed, so a row's values still depend only on that row; a call that mixes
the two runs them as two passes.

Fresh prompts that repeat one another in a call (the takes of one text and
voice) run once; the other rows share its keys and values (`same_prompts`,
`KernelCache.share`), so each decode step reads that prompt once for all of
them. Sharing changes where a key is read from, not what it is: the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import kernel_blocks, kernels
from .cache import KernelCache
from .gpt import GPT, Block, FineGPT, LayerNorm
from .precision import linear_layers, project
from .steps import Feed, check_feeds


@dataclass(frozen=True)
class _Layer:
    """One block's weights as the kernels read them (collected once per stepper, so a
    step calls the kernels directly instead of going through the modules)."""

    ln_1: tuple[torch.Tensor, torch.Tensor | None]
    qkv: kernels.Packed
    proj: kernels.Packed
    ln_2: tuple[torch.Tensor, torch.Tensor | None]
    fc: kernels.Packed
    out: kernels.Packed
    n_head: int

    @classmethod
    def of(cls, block: Block) -> _Layer:
        return cls((block.ln_1.weight, block.ln_1.bias), block.attn.c_attn.packed,
                   block.attn.c_proj.packed, (block.ln_2.weight, block.ln_2.bias),
                   block.mlp.c_fc.packed, block.mlp.c_proj.packed, block.attn.n_head)


def _blocks(x: torch.Tensor, plan: kernel_blocks.BlockPlan, n_head: int, cache: KernelCache,
            slots: torch.Tensor, pos: torch.Tensor, lens: torch.Tensor,
            wanted: torch.Tensor | None, narrow_rows: bool = False) -> torch.Tensor:
    """x (N, C) through every block; (len(wanted), C) out, or (N, C) when wanted is None."""
    return kernel_blocks.blocks(plan, x.contiguous(), cache.kT, cache.v, slots, pos, lens, wanted,
                                n_head, LayerNorm.EPS, narrow_rows, scratch=cache.scratch,
                                shares=cache.shares())


def cache_dtype_for(model: GPT) -> torch.dtype:
    """The KV cache of a decoding model: float32 beside float32 weights (the
    precision whose tokens are the original Bark's), bfloat16 beside narrower
    ones, which were chosen for speed (a decode step's attention then reads half
    the bytes; each key and value is rounded once, as it is written)."""
    wide = all(layer.packed.dtype == torch.float32 for _, _, layer in linear_layers(model))
    return torch.float32 if wide else torch.bfloat16


def uses_narrow_rows(model: GPT | FineGPT) -> bool:
    """Whether the model's multi-token feeds take narrow rows: int8 weights always,
    bf16 weights where the CPU has AVX512-BF16 dot products."""
    dtypes = {layer.packed.dtype for _, _, layer in linear_layers(model)}
    return dtypes == {torch.int8} or (dtypes == {torch.bfloat16} and kernels.bf16_dot())


def same_prompts(feeds: Sequence[Feed]) -> tuple[list[int], dict[int, int]]:
    """The feeds to run, and each fresh prompt that repeats an earlier feed's →
    that feed: the same ids from position 0 give the same keys, values and
    logits (a row's values depend on that row alone), so the takes of one text
    and voice run their prompt once and share its keys and values
    (`KernelCache.share`); each row still draws its own tokens."""
    firsts: list[int] = []
    twins: dict[int, int] = {}
    seen: dict[tuple[bool, bytes], int] = {}
    for i, feed in enumerate(feeds):
        if feed.fresh and len(feed.ids) > 1:
            key = (feed.merge_context, feed.ids.cpu().numpy().tobytes())
            if key in seen:
                twins[i] = seen[key]
                continue
            seen[key] = i
        firsts.append(i)
    return firsts, twins


class KernelStepper:
    """A packed `GPT` stepped through the CPU kernels (see the module docstring)."""

    name = "cpu kernels"

    def __init__(self, model: GPT, kv_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.layers = [_Layer.of(b) for b in model.transformer["h"]]
        # Addresses of the model's tensors as they are now (as the packed panels are):
        # a model changed in place later needs a new stepper.
        self.plan = kernel_blocks.block_plan(self.layers)
        self.kv_dtype = kv_dtype or cache_dtype_for(model)
        self.narrow = uses_narrow_rows(model)

    def new_cache(self, slots: int) -> KernelCache:
        return KernelCache(self.model.config, slots, self.model.config.block_size, self.kv_dtype)

    def advance(self, cache: KernelCache, feeds: Sequence[Feed],
                vocab: slice | None) -> torch.Tensor:
        check_feeds(feeds, cache.slots)
        for feed in feeds:
            if feed.fresh:  # written from position 0 again (a slot of length 0 shares nothing)
                cache.release(feed.slot)
        firsts, twins = same_prompts(feeds)
        out = self._advance_rows(cache, [feeds[i] for i in firsts], vocab)
        if not twins:
            return out
        for i, j in twins.items():
            cache.share(feeds[i].slot, feeds[j].slot)
        return out[torch.tensor([firsts.index(twins.get(i, i)) for i in range(len(feeds))])]

    def _advance_rows(self, cache: KernelCache, feeds: Sequence[Feed],
                      vocab: slice | None) -> torch.Tensor:
        if not self.narrow:
            return self._advance(cache, feeds, vocab, False)
        many = [i for i, f in enumerate(feeds) if len(f.ids) > 1]
        if len(many) in (0, len(feeds)):
            return self._advance(cache, feeds, vocab, bool(many))
        one = [i for i, f in enumerate(feeds) if len(f.ids) == 1]
        out = torch.cat([self._advance(cache, [feeds[i] for i in many], vocab, True),
                         self._advance(cache, [feeds[i] for i in one], vocab, False)])
        order = torch.empty(len(feeds), dtype=torch.long)
        order[torch.tensor(many + one)] = torch.arange(len(feeds))
        return out[order]  # (len(feeds), V), in feed order

    def _advance(self, cache: KernelCache, feeds: Sequence[Feed], vocab: slice | None,
                 narrow_rows: bool) -> torch.Tensor:
        model = self.model
        tr = model.transformer
        block_size = model.config.block_size
        embeds, slots, pos, last = [], [], [], []
        ends = {}
        n = 0
        for feed in feeds:
            start = 0 if feed.fresh else cache.lengths[feed.slot]
            e = model.embed(feed.ids[None], feed.merge_context and start == 0)[0]  # (T, C)
            T = e.shape[0]
            if start + T > block_size:
                raise ValueError(f"sequence of {start + T} exceeds the context of {block_size}")
            embeds.append(e)
            slots += [feed.slot] * T
            pos += range(start, start + T)
            n += T
            last.append(n - 1)
            ends[feed.slot] = start + T
        pos_t = torch.tensor(pos, dtype=torch.long)
        x = torch.cat(embeds) + tr["wpe"](pos_t)  # (N, C)
        wanted = None if n == len(feeds) else torch.tensor(last, dtype=torch.long)
        x = _blocks(x, self.plan, self.layers[0].n_head, cache,
                    torch.tensor(slots, dtype=torch.long), pos_t, pos_t + 1, wanted, narrow_rows)
        for slot, end in ends.items():
            cache.lengths[slot] = end
        return project(model.lm_head, tr["ln_f"](x), vocab)  # (len(feeds), V)


class KernelFine:
    """A packed `FineGPT` over several rows' windows at once (non-causal attention)."""

    name = "cpu kernels"

    def __init__(self, model: FineGPT) -> None:
        self.model = model
        self.layers = [_Layer.of(b) for b in model.transformer["h"]]
        self.plan = kernel_blocks.block_plan(self.layers)  # as in KernelStepper
        self._window_cache: KernelCache | None = None  # keys, values and block scratch of the windows
        self.narrow = uses_narrow_rows(model)  # a fine pass is many rows

    def _cache(self, rows: int, length: int) -> KernelCache:
        """Keys and values of the windows being run, reused while they fit: float32,
        but bf16 beside narrow weights where AMX tiles run (their attention then
        runs on the tiles too, as a prefill's does; one-token steps never read
        these keys, so there is no decode step to make faster elsewhere)."""
        kv = torch.bfloat16 if self.narrow and kernels.amx() else torch.float32
        s = self._window_cache
        if s is None or s.slots < rows or s.max_len < length or s.kT.dtype != kv:
            s = self._window_cache = KernelCache(self.model.config, rows, length, kv)
        return s

    def logits(self, windows: Sequence[torch.Tensor], rel: Sequence[int],
               pred_idx: int) -> list[torch.Tensor]:
        model = self.model
        T = windows[0].shape[0]
        if any(w.shape[0] != T for w in windows) or model.config.block_size < T:
            raise ValueError("fine windows of one call share one length within the context")
        B = len(windows)
        x = model.embed(pred_idx, torch.stack(list(windows))).reshape(B * T, -1)  # (B·T, C)
        slots = torch.arange(B).repeat_interleave(T)
        pos = torch.arange(T).repeat(B)
        lens = torch.full((B * T,), T, dtype=torch.long)  # every key of its window
        wanted = torch.cat([torch.arange(b * T + r, (b + 1) * T) for b, r in enumerate(rel)])
        x = _blocks(x, self.plan, self.layers[0].n_head, self._cache(B, T), slots, pos, lens,
                    wanted, self.narrow)
        head = model.lm_heads[pred_idx - model.config.n_codes_given]
        out = head(model.transformer["ln_f"](x))  # (Σ T - rel, V)
        return list(out.split([T - r for r in rel]))
