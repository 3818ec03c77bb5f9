"""One decoding step of the causal GPT on a CUDA GPU, replayed as a CUDA graph.

On a GPU a B = 1 decode step is a few hundred tiny kernels: measured on an
H200 at the small dims, ~3.4 ms per token went to Python and kernel launches
while the GPU itself was busy ~0.5 ms. A CUDA graph records the step's
kernels once and replays them with one launch.

A graph replays fixed shapes and fixed addresses, so the captured step
differs from `GPT.forward` in two ways, both exact in what they compute:
the new key and value are written at a position held in a device tensor
(`index_copy_`), and attention always spans the whole cache, with the
positions not yet written masked out (the cache of a graph is zero-filled,
so masked slots hold finite numbers). Results agree with the eager step to
float rounding (test_cuda.py checks logits and greedy tokens).

One graph per (cache, vocab slice) pair; a stage reuses its cache across
windows, so a stage captures once. A graph holds its cache weakly and is
dropped with it (each take makes new caches: holding them would keep up to
`MAX_GRAPHS` dead KV caches on the GPU); the few most recent are kept.
"""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

if TYPE_CHECKING:  # the model module imports this one
    from .gpt import GPT, KVCache


MAX_GRAPHS = 8  # a batch of takes has one cache per take


# SDPA backends for the graphed and eager GPU steps: not cuDNN's, which builds a
# new plan for every new key length (~30 ms each, so a first 256-token run took
# 9 s instead of 0.9 s in bf16 on an H200).
GPU_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def gpu_attention():
    """A context in which SDPA avoids the cuDNN backend (see `GPU_ATTENTION`)."""
    return sdpa_kernel(GPU_ATTENTION)


class GraphStep:
    """A captured decode step for one cache and one vocab slice.

    `idx` and `pos` are the graph's inputs (device tensors written before each
    replay); `logits` its output, overwritten by every replay.
    """

    def __init__(self, model: GPT, cache: KVCache, vocab: slice | None) -> None:
        device = cache.kv.device
        self.model = model
        self.cache_ref = weakref.ref(cache)
        self.vocab = vocab
        self.idx = torch.zeros(1, 1, dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.positions = torch.arange(cache.max_len, device=device)
        # Slots past the filled ones are masked, but a NaN left in one would still
        # poison the masked sum: give them zeros once (later windows leave finite values).
        cache.kv[..., cache.length :, :].zero_()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.logits: torch.Tensor | None = None

    @property
    def cache(self) -> KVCache:
        cache = self.cache_ref()
        if cache is None:
            raise RuntimeError("the cache of this CUDA graph is gone")
        return cache

    def _step(self) -> torch.Tensor:
        """The step as fixed-shape kernels: logits (1, 1, V)."""
        model, cache = self.model, self.cache
        tr = model.transformer
        cfg = model.config
        C, H = cfg.n_embd, cfg.n_head
        x = tr["wte"](self.idx) + tr["wpe"](self.pos)  # (1, 1, C)
        visible = (self.positions <= self.pos).view(1, 1, 1, -1)  # (1, 1, 1, max_len)
        for i, block in enumerate(tr["h"]):
            attn = block.attn
            qkv = F.linear(block.ln_1(x), attn.c_attn.weight, attn.c_attn.bias)
            q, k, v = qkv.split(C, dim=2)
            q = q.view(1, 1, H, C // H).transpose(1, 2)  # (1, H, 1, hd)
            cache.k[i].index_copy_(2, self.pos, k.view(1, 1, H, C // H).transpose(1, 2))
            cache.v[i].index_copy_(2, self.pos, v.view(1, 1, H, C // H).transpose(1, 2))
            y = F.scaled_dot_product_attention(q, cache.k[i], cache.v[i], attn_mask=visible)
            y = F.linear(y.transpose(1, 2).reshape(1, 1, C), attn.c_proj.weight, attn.c_proj.bias)
            x = x + y
            mlp = block.mlp
            h = F.gelu(F.linear(block.ln_2(x), mlp.c_fc.weight, mlp.c_fc.bias))
            x = x + F.linear(h, mlp.c_proj.weight, mlp.c_proj.bias)
        head = model.lm_head.weight if self.vocab is None else model.lm_head.weight[self.vocab]
        return F.linear(tr["ln_f"](x), head)

    def _capture(self) -> None:
        """Warm up on a side stream (as CUDA graphs require), then record.

        The warm-up runs write the current token's key and value at the
        current position, which the real step writes again: no harm done.
        """
        stream = _warm_up_stream(self.idx.device)
        stream.wait_stream(torch.cuda.current_stream(self.idx.device))
        with torch.cuda.stream(stream), gpu_attention():
            for _ in range(2):
                self._step()
        torch.cuda.current_stream(self.idx.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), gpu_attention():
            self.logits = self._step()
        self.graph = graph

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (1, 1, V) of token idx (1, 1) at the cache's next position."""
        with torch.inference_mode():
            return self._run(idx)

    def _run(self, idx: torch.Tensor) -> torch.Tensor:
        cache = self.cache
        past = cache.length
        if past + 1 > min(cache.max_len, self.model.config.block_size):
            raise ValueError(
                f"sequence of {past + 1} exceeds the context of {self.model.config.block_size}"
            )
        self.idx.copy_(idx.view(1, 1))
        self.pos.fill_(past)
        if self.graph is None:
            self._capture()
        self.graph.replay()
        cache.length = past + 1
        return self.logits.clone()  # the next replay overwrites the graph's own buffer


@functools.cache
def _warm_up_stream(device: torch.device) -> torch.cuda.Stream:
    """One side stream per GPU for every capture's warm-up.

    A new stream per capture cost GPU memory for good: cuBLAS keeps a
    workspace for each stream it has run on, and torch's pool hands out up to
    32 streams, so repeated takes in bf16 on an H200 grew from 0.29 to 1.09 GB
    allocated over 12 takes before this (test_cuda.py checks it stays flat).
    """
    return torch.cuda.Stream(device=device)


def graph_step(model: GPT, cache: KVCache, vocab: slice | None) -> GraphStep:
    """The model's graph for this cache and vocab slice, made on first use."""
    graphs: OrderedDict = model.__dict__.setdefault("_cuda_graphs", OrderedDict())
    for gone in [k for k, s in graphs.items() if s.cache_ref() is None]:
        del graphs[gone]  # its cache was freed: never replay into that memory
    key = (id(cache), cache.kv.data_ptr(), None if vocab is None else (vocab.start, vocab.stop))
    step = graphs.get(key)
    if step is None or step.cache_ref() is not cache:
        step = graphs[key] = GraphStep(model, cache, vocab)
        while len(graphs) > MAX_GRAPHS:
            graphs.popitem(last=False)
    graphs.move_to_end(key)
    return step
