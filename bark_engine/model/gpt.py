"""Bark's two transformer shapes: a causal GPT (semantic, coarse) and the
non-causal fine GPT, written plainly.

Parameter names follow the original checkpoints exactly (`transformer.wte`,
`transformer.h.N.attn.c_attn`, `lm_head`, ...), so a checkpoint's state dict
loads without renaming. `forward` is the eager reference: every op in torch,
one row (or a batch of rows of one length) at a time. How the stages step
many rows fast (the CPU kernels, CUDA graphs) lives in `steps`, outside the
model; the linear layers may be swapped for packed ones (`precision`), and
`forward` then runs through them unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MAX_TEXT_TOKENS, SEMANTIC_HISTORY_LEN, GPTConfig
from .cache import CacheView, KVCache
from .precision import Linear, project


class LayerNorm(nn.Module):
    """LayerNorm whose bias is optional (Bark's checkpoints are bias-free)."""

    EPS = 1e-5  # the original's; the CPU kernels' blocks read it from here too

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.EPS)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.c_fc = Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class SelfAttention(nn.Module):
    """Multi-head attention; causal for the GPT stages, full for the fine model."""

    def __init__(self, cfg: GPTConfig, causal: bool) -> None:
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.c_attn = Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.n_head = cfg.n_head
        self.causal = causal

    def forward(
        self,
        x: torch.Tensor,  # (B, T, C)
        cache: CacheView | None = None,
        layer: int = 0,
        rows: slice | None = None,
    ) -> torch.Tensor:
        """Attention output (B, T, C), or (B, T_rows, C) for the query positions
        `rows` only (keys and values still cover every position, and the cache
        gets them all). A causal model takes only the last position as `rows`,
        which sees every key, so no mask is needed for it."""
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
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
            k_all, v_all = cache.write(layer, k, v)  # (B, H, start + T, hd) each
            if start == 0 or not causal:
                y = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=causal)
            else:  # several new tokens after a prefix: causal within the new ones
                mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, Tq, C)
        return self.c_proj(y)


class Block(nn.Module):
    """Pre-norm transformer block.

    The fine model's LayerNorms always carry a bias (the original builds them
    with plain `nn.LayerNorm`), whatever `cfg.bias` says for its Linears.
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
        cache: CacheView | None = None,
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
        self.lm_head = Linear(cfg.n_embd, cfg.output_vocab_size, bias=False)

    def new_cache(self, slots: int = 1, max_len: int | None = None) -> KVCache:
        """A KV cache for `slots` rows in the natural layout `forward` reads."""
        p = self.transformer["wte"].weight  # the activations' dtype (Linear weights may be half)
        return KVCache(self.config, slots, max_len or self.config.block_size, p.device, p.dtype)

    def embed(self, idx: torch.Tensor, merge_context: bool) -> torch.Tensor:
        """Token embeddings (B, T', C) of ids (B, T), without positions.

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
        cache: CacheView | KVCache | None = None,
        merge_context: bool = False,
        last_only: bool = True,
        vocab: slice | None = None,  # output ids wanted (all by default)
    ) -> torch.Tensor:
        """Logits (B, 1, V) for the last position, or (B, T', V) with `last_only=False`.

        With a cache (one slot: B = 1) the new positions start at its length;
        merge_context is honoured only on the first call of a window (when the
        cache is empty). `vocab` computes only those rows of the output head
        (V = its length): the stages never look at the other logits.
        """
        if isinstance(cache, KVCache):
            cache = cache.view(0)
        x = self.embed(idx, merge_context and (cache is None or cache.length == 0))
        T = x.shape[1]
        past = cache.length if cache is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(f"sequence of {past + T} exceeds the context of {self.config.block_size}")
        x = x + self.transformer["wpe"](torch.arange(past, past + T, device=idx.device))
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
        return project(self.lm_head, self.transformer["ln_f"](x), vocab)


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
            Linear(cfg.n_embd, cfg.output_vocab_size, bias=False) for _ in range(n_given, n_total)
        )
        self.tie_weights()

    def tie_weights(self) -> None:
        """Codebook i+1's input embedding is the output head of codebook i (as trained).

        A packed head (`precision.PackedLinear`) keeps its own copy; the
        embedding then holds the original."""
        for i, head in enumerate(self.lm_heads):
            if isinstance(head, nn.Linear):
                self.transformer["wtes"][i + 1].weight = head.weight

    def embed(self, pred_idx: int, idx: torch.Tensor) -> torch.Tensor:
        """The summed embeddings of codebooks 0..pred_idx plus positions: (B, T, C)."""
        wtes = self.transformer["wtes"]
        x = wtes[0](idx[..., 0])
        for i in range(1, pred_idx + 1):
            x = x + wtes[i](idx[..., i])
        return x + self.transformer["wpe"](torch.arange(idx.shape[-2], device=idx.device))

    def forward(
        self,
        pred_idx: int,  # codebook to predict, n_codes_given..n_codes_total-1
        idx: torch.Tensor,  # (B, T, n_codes_total) int64
        rows: slice | None = None,  # positions whose logits are wanted (all by default)
    ) -> torch.Tensor:
        """Logits (B, T_rows, V) for codebook `pred_idx`, from codebooks 0..pred_idx."""
        B, T, _ = idx.shape
        if self.config.block_size < T:
            raise ValueError(f"sequence of {T} exceeds the context of {self.config.block_size}")
        x = self.embed(pred_idx, idx)
        if rows is not None and rows.indices(T) == (0, T, 1):
            rows = None  # every position: the plain path
        blocks = self.transformer["h"]
        for i, block in enumerate(blocks):
            # The last block computes only the positions whose logits are wanted.
            x = block(x, rows=rows if i == len(blocks) - 1 else None)
        x = self.transformer["ln_f"](x)
        return self.lm_heads[pred_idx - self.config.n_codes_given](x)
