"""The GPU strategy: prefills eager, one-token steps of every slot as one CUDA graph.

On a GPU a decode step is a few hundred tiny kernels: measured on an H200 at
the small dims, most of a B = 1 step went to Python and kernel launches. A
CUDA graph records the step's kernels once and replays them with one launch.

A graph replays fixed shapes at fixed addresses, and that is also what makes
rows independent of their batch here: the step always runs all `slots` rows
of its cache (rows that are not fed write into a spare position past the
context and their logits are dropped), so a row sees the same kernels on the
same shapes whether it shares the step with no other row or with fifteen.
(cuBLAS may pick another kernel, with another summation order, for another
number of rows; one shape for every batch rules that out.) Within the graph
the new keys and values are written at positions held in a device tensor,
and attention spans the whole cache with the positions a row may not see
masked out. Prefills (a new window, a continuation of several tokens) run
eagerly, one row at a time, exactly as `GPT.forward`.

The graph is captured on the first one-token step of a stepper's cache and
replayed for every later step into that cache; a stage run makes one cache.
Off a CUDA device (tests) the same fixed-shape step runs eagerly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..config import MAX_BATCH
from .cache import KVCache
from .gpt import GPT
from .steps import EagerStepper, Feed, check_feeds, gpu_attention, gpu_context


class GraphStepper:
    """A `GPT` on a GPU: eager prefills, one-token steps as a CUDA graph of `slots` rows."""

    name = "cuda graphs"

    def __init__(self, model: GPT, slots: int = MAX_BATCH, capture: bool | None = None) -> None:
        self.model = model
        self.slots = slots
        self.eager = EagerStepper(model)
        device = model.transformer["wte"].weight.device
        self.capture = device.type == "cuda" if capture is None else capture
        self._graph: _Graph | None = None

    def new_cache(self, slots: int) -> KVCache:
        if slots > self.slots:
            raise ValueError(f"this stepper runs at most {self.slots} rows at once, not {slots}")
        # One spare position past the context: where the rows not fed this step write.
        cache = self.model.new_cache(self.slots, self.model.config.block_size + 1)
        self._graph = None  # a new cache: a new graph at its first step
        return cache

    def advance(self, cache: KVCache, feeds: Sequence[Feed], vocab: slice | None) -> torch.Tensor:
        check_feeds(feeds, cache.slots)
        out: dict[int, torch.Tensor] = {}
        steps = [i for i, f in enumerate(feeds) if not f.fresh and f.ids.numel() == 1
                 and cache.lengths[f.slot] > 0]
        rest = [i for i in range(len(feeds)) if i not in steps]
        if rest:
            logits = self.eager.advance(cache, [feeds[i] for i in rest], vocab)
            out.update(zip(rest, logits, strict=True))
        if steps:
            graph = self._graph
            if graph is None or graph.cache is not cache or graph.vocab != vocab:
                graph = self._graph = _Graph(self.model, cache, vocab, self.capture)
            logits = graph.step({feeds[i].slot: feeds[i].ids for i in steps})
            out.update((i, logits[feeds[i].slot]) for i in steps)
        return torch.stack([out[i] for i in range(len(feeds))])


class _Graph:
    """The fixed-shape step of every slot of one cache, captured as a CUDA graph."""

    def __init__(self, model: GPT, cache: KVCache, vocab: slice | None, capture: bool) -> None:
        device = cache.kv.device
        S = cache.slots
        self.model, self.cache, self.vocab, self.capture = model, cache, vocab, capture
        self.spare = model.config.block_size  # the position rows not fed write to
        self.idx = torch.zeros(S, dtype=torch.long, device=device)
        self.pos = torch.full((S,), self.spare, dtype=torch.long, device=device)
        self.slot_ids = torch.arange(S, device=device)
        self.positions = torch.arange(cache.max_len, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None

    def _step(self) -> torch.Tensor:
        """Logits (S, V) of token idx[s] at position pos[s] for every slot s."""
        model, kv = self.model, self.cache.kv
        tr = model.transformer
        C, H = model.config.n_embd, model.config.n_head
        S = self.idx.shape[0]
        wpe = tr["wpe"].weight
        x = tr["wte"](self.idx) + wpe[self.pos.clamp(max=wpe.shape[0] - 1)]  # (S, C)
        visible = (self.positions[None] <= self.pos[:, None]).view(S, 1, 1, -1)
        for i, block in enumerate(tr["h"]):
            attn = block.attn
            q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=1)  # (S, C) each
            kv[i, 0, self.slot_ids, :, self.pos] = k.view(S, H, C // H)
            kv[i, 1, self.slot_ids, :, self.pos] = v.view(S, H, C // H)
            y = F.scaled_dot_product_attention(
                q.view(S, H, 1, C // H), kv[i, 0], kv[i, 1], attn_mask=visible
            )  # (S, H, 1, hd)
            x = x + attn.c_proj(y.reshape(S, C))
            x = x + block.mlp(block.ln_2(x))
        head = model.lm_head.weight if self.vocab is None else model.lm_head.weight[self.vocab]
        return F.linear(tr["ln_f"](x), head)

    def _capture(self) -> None:
        """Warm up on a side stream (as CUDA graphs require), then record. The
        warm-up writes the same keys and values the real step writes again."""
        device = self.idx.device
        stream = _warm_up_stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), gpu_attention():
            for _ in range(2):
                self._step()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), gpu_attention():
            self.logits = self._step()
        self.graph = graph

    def step(self, fed: dict[int, torch.Tensor]) -> torch.Tensor:
        """Feed one token (a (1,) tensor) to each slot in `fed`; logits (S, V),
        meaningful for those slots only."""
        cache = self.cache
        pos = [self.spare] * cache.slots
        for slot in fed:
            if cache.lengths[slot] + 1 > self.spare:
                raise ValueError(f"sequence of {cache.lengths[slot] + 1} exceeds the context "
                                 f"of {self.spare}")
            pos[slot] = cache.lengths[slot]
        with torch.inference_mode():
            for slot, ids in fed.items():
                self.idx[slot] = ids.view(())
            self.pos.copy_(torch.tensor(pos, dtype=torch.long))
            if not self.capture:
                with gpu_context(self.idx.device):
                    logits = self._step()
            else:
                if self.graph is None:
                    self._capture()
                self.graph.replay()
                logits = self.logits.clone()  # the next replay overwrites the graph's buffer
        for slot in fed:
            cache.lengths[slot] += 1
        return logits


@functools.cache
def _warm_up_stream(device: torch.device) -> torch.cuda.Stream:
    """One side stream per GPU for every capture's warm-up.

    A new stream per capture cost GPU memory for good: cuBLAS keeps a
    workspace for each stream it has run on, and torch's pool hands out up to
    32 streams, so repeated takes in bf16 on an H200 grew from 0.29 to 1.09 GB
    allocated over 12 takes before this (test_cuda.py checks it stays flat).
    """
    return torch.cuda.Stream(device=device)
