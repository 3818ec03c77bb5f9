"""Bark's two transformer shapes: a causal GPT (semantic, coarse) and the
non-causal fine GPT.

Parameter names follow the original checkpoints exactly (`transformer.wte`,
`transformer.h.N.attn.c_attn`, `lm_head`, ...), so a checkpoint's state dict
loads without renaming. The causal model decodes with a static KV cache that
is allocated once per window and written in place.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_TEXT_TOKENS, SEMANTIC_HISTORY_LEN, GPTConfig
from .cuda_graphs import gpu_attention, graph_step
from .decode import decode_plan
from .matvec import linear, n_parts, use_decode_layout  # noqa: F401 (re-exported)


class LayerNorm(nn.Module):
    """LayerNorm whose bias is optional (Bark's checkpoints are bias-free)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class KVCache:
    """Keys and values of every layer for one window, preallocated.

    One tensor `kv` (n_layer, 2, B, n_head, max_len, head_dim) holds both, so
    a decode step writes a layer's new key and value in one copy; `k` and `v`
    are its two halves (n_layer, B, n_head, max_len, head_dim), as views.
    `length` is the number of positions filled so far; a step writes at
    `length` and advances it.
    """

    def __init__(
        self,
        cfg: GPTConfig,
        batch: int,
        max_len: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        head_dim = cfg.n_embd // cfg.n_head
        shape = (cfg.n_layer, 2, batch, cfg.n_head, max_len, head_dim)
        self.kv = torch.empty(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0

    @property
    def k(self) -> torch.Tensor:
        return self.kv[:, 0]

    @property
    def v(self) -> torch.Tensor:
        return self.kv[:, 1]

    def reset(self) -> None:
        self.length = 0

    def clone(self) -> KVCache:
        """An independent copy: the same positions, its own tensor."""
        new = copy.copy(self)
        new.kv = self.kv.clone()
        return new


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(linear(x, self.c_fc.weight, self.c_fc.bias))
        return linear(h, self.c_proj.weight, self.c_proj.bias)


class SelfAttention(nn.Module):
    """Multi-head attention; causal for the GPT stages, full for the fine model."""

    def __init__(self, cfg: GPTConfig, causal: bool) -> None:
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head = cfg.n_head
        self.causal = causal

    def forward(
        self,
        x: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        rows: slice | None = None,
    ) -> torch.Tensor:
        """Attention output (B, T, C), or (B, T_rows, C) for the query positions
        `rows` only (keys and values still cover every position, and the cache
        gets them all). A causal model takes only the last position as `rows`,
        which sees every key, so no mask is needed for it."""
        B, T, C = x.shape
        H = self.n_head
        q, k, v = linear(x, self.c_attn.weight, self.c_attn.bias).split(C, dim=2)
        if rows is not None:
            q = q[:, rows]
        Tq = q.shape[1]
        q = q.view(B, Tq, H, C // H).transpose(1, 2)  # (B, H, Tq, hd)
        k = k.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, hd)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        causal = self.causal and rows is None and T > 1
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:
            start = cache.length
            end = start + T
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            k_all = cache.k[layer, :, :, :end]  # (B, H, end, hd)
            v_all = cache.v[layer, :, :, :end]
            if start == 0 or not causal:
                y = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=causal)
            else:  # several new tokens after a prefix: causal within the new ones
                mask = torch.ones(T, end, dtype=torch.bool, device=x.device).tril(start)
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, Tq, C)
        return linear(y, self.c_proj.weight, self.c_proj.bias)


class Block(nn.Module):
    """Pre-norm transformer block.

    The fine model's LayerNorms always carry a bias (the original builds them
    with plain `nn.LayerNorm`), whatever `cfg.bias` says for its Linears.
    `batch._block_rows` repeats this block's decode step (with attention and
    MLP) for several takes: change both together (test_batch.py compares them).
    """

    def __init__(self, cfg: GPTConfig, causal: bool) -> None:
        super().__init__()
        ln_bias = cfg.bias or not causal
        self.ln_1 = LayerNorm(cfg.n_embd, ln_bias)
        self.attn = SelfAttention(cfg, causal)
        self.ln_2 = LayerNorm(cfg.n_embd, ln_bias)
        self.mlp = MLP(cfg)

    def forward(
        self,
        x: torch.Tensor,
        cache: KVCache | None = None,
        layer: int = 0,
        rows: slice | None = None,
    ) -> torch.Tensor:
        """The block's output (B, T, C), or only at positions `rows` (see
        `SelfAttention`): the last block of a prefill needs just the rows
        whose logits are wanted, which saves its MLP and most of its attention."""
        a = self.attn(self.ln_1(x), cache, layer, rows)
        x = (x if rows is None else x[:, rows]) + a
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Causal GPT of the semantic and coarse stages."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(cfg.input_vocab_size, cfg.n_embd),
                "wpe": nn.Embedding(cfg.block_size, cfg.n_embd),
                "h": nn.ModuleList(Block(cfg, causal=True) for _ in range(cfg.n_layer)),
                "ln_f": LayerNorm(cfg.n_embd, cfg.bias),
            }
        )
        self.lm_head = nn.Linear(cfg.n_embd, cfg.output_vocab_size, bias=False)
        # One-token steps with a cache go through `decode.DecodePlan` where it applies
        # (CPU), or a CUDA graph of the step (`cuda_graphs`, on a CUDA GPU).
        self.fast_decode = True
        self.cuda_graphs = True

    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        p = self.transformer["wte"].weight  # the activations' dtype (Linear weights may be half)
        return KVCache(self.config, batch, max_len or self.config.block_size, p.device, p.dtype)

    def embed(self, idx: torch.Tensor, merge_context: bool) -> torch.Tensor:
        """Token embeddings (B, T', C).

        With `merge_context` (semantic stage, prefill only) the first 256 text
        embeddings and the next 256 history embeddings are summed, so T' = T - 256.
        """
        wte = self.transformer["wte"]
        if not merge_context:
            return wte(idx)
        n_ctx = MAX_TEXT_TOKENS + SEMANTIC_HISTORY_LEN
        assert idx.shape[1] > n_ctx, "merge_context needs text, history and at least one more id"
        text = wte(idx[:, :MAX_TEXT_TOKENS])
        hist = wte(idx[:, MAX_TEXT_TOKENS:n_ctx])
        return torch.cat([text + hist, wte(idx[:, n_ctx:])], dim=1)

    def forward(
        self,
        idx: torch.Tensor,  # (B, T) int64
        cache: KVCache | None = None,
        merge_context: bool = False,
        last_only: bool = True,
        vocab: slice | None = None,  # output ids wanted (all by default)
    ) -> torch.Tensor:
        """Logits (B, 1, V) for the last position, or (B, T', V) with `last_only=False`.

        With a cache the new positions start at `cache.length`; merge_context is
        honoured only on the first call of a window (when the cache is empty).
        `vocab` computes only those rows of the output head (V = its length):
        the stages never look at the other logits, so why read their weights.
        """
        if cache is not None and cache.length and idx.shape == (1, 1):
            if self.fast_decode and idx.device.type == "cpu":
                plan = decode_plan(self)
                if plan is not None:
                    return plan.step(idx, cache, vocab)  # the same logits, fewer torch calls
            if self.cuda_graphs and idx.device.type == "cuda":
                return graph_step(self, cache, vocab)(idx)
        if idx.device.type == "cuda":
            with gpu_attention():
                return self._forward(idx, cache, merge_context, last_only, vocab)
        return self._forward(idx, cache, merge_context, last_only, vocab)

    def _forward(
        self,
        idx: torch.Tensor,
        cache: KVCache | None,
        merge_context: bool,
        last_only: bool,
        vocab: slice | None,
    ) -> torch.Tensor:
        """`forward` itself, with every op in eager mode."""
        x = self.embed(idx, merge_context and (cache is None or cache.length == 0))
        T = x.shape[1]
        past = cache.length if cache is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(f"sequence of {past + T} exceeds the context of {self.config.block_size}")
        pos = torch.arange(past, past + T, device=idx.device)
        x = x + self.transformer["wpe"](pos)
        blocks = self.transformer["h"]
        last = len(blocks) - 1
        # Several new positions but one output wanted: the last block works on it alone.
        rows = slice(T - 1, T) if last_only and T > 1 else None
        for i, block in enumerate(blocks):
            x = block(x, cache, i, rows if i == last else None)
        if cache is not None:
            cache.length = past + T
        if last_only:
            x = x[:, -1:, :]
        head = self.lm_head.weight if vocab is None else self.lm_head.weight[vocab]
        return linear(self.transformer["ln_f"](x), head)


class FineGPT(nn.Module):
    """Non-causal GPT of the fine stage: 8 summed code embeddings, one head per predicted codebook."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        n_total, n_given = cfg.n_codes_total, cfg.n_codes_given
        self.transformer = nn.ModuleDict(
            {
                "wtes": nn.ModuleList(
                    nn.Embedding(cfg.input_vocab_size, cfg.n_embd) for _ in range(n_total)
                ),
                "wpe": nn.Embedding(cfg.block_size, cfg.n_embd),
                "h": nn.ModuleList(Block(cfg, causal=False) for _ in range(cfg.n_layer)),
                "ln_f": LayerNorm(cfg.n_embd, bias=True),  # always biased, as in the original
            }
        )
        self.lm_heads = nn.ModuleList(
            nn.Linear(cfg.n_embd, cfg.output_vocab_size, bias=False)
            for _ in range(n_given, n_total)
        )
        self.tie_weights()

    def tie_weights(self) -> None:
        """Codebook i+1's input embedding is the output head of codebook i (as trained)."""
        for i, head in enumerate(self.lm_heads):
            self.transformer["wtes"][i + 1].weight = head.weight

    def forward(
        self,
        pred_idx: int,  # codebook to predict, n_codes_given..n_codes_total-1
        idx: torch.Tensor,  # (B, T, n_codes_total) int64
        rows: slice | None = None,  # positions whose logits are wanted (all by default)
    ) -> torch.Tensor:
        """Logits (B, T_rows, V) for codebook `pred_idx`, from codebooks 0..pred_idx."""
        if idx.device.type == "cuda":
            with gpu_attention():  # no cuDNN plan per new shape (see cuda_graphs)
                return self._forward(pred_idx, idx, rows)
        return self._forward(pred_idx, idx, rows)

    def _forward(self, pred_idx: int, idx: torch.Tensor, rows: slice | None) -> torch.Tensor:
        B, T, _ = idx.shape
        if self.config.block_size < T:
            raise ValueError(f"sequence of {T} exceeds the context of {self.config.block_size}")
        wtes = self.transformer["wtes"]
        x = wtes[0](idx[:, :, 0])
        for i in range(1, pred_idx + 1):
            x = x + wtes[i](idx[:, :, i])
        x = x + self.transformer["wpe"](torch.arange(T, device=idx.device))
        if rows is not None and rows.indices(T) == (0, T, 1):
            rows = None  # every position: the plain path
        blocks = self.transformer["h"]
        for i, block in enumerate(blocks):
            # The last block computes only the positions whose logits are wanted.
            x = block(x, rows=rows if i == len(blocks) - 1 else None)
        x = self.transformer["ln_f"](x)
        return linear(x, self.lm_heads[pred_idx - self.config.n_codes_given].weight)
