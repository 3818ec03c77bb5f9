"""Several takes of one segment at once: the three stage loops for B rows.

Row b draws only from its own `torch.Generator`, in the same order and on
tensors of the same shapes as the single-take loops (semantic.py, coarse.py,
fine.py), so a batch gives exactly the tokens B separate runs with those
generators give.

Exactness is by construction, not by tolerance. Stacking the rows into one
(B, 1, C) matmul would not do: on CPU a (B, C) @ W matmul is not bitwise equal
to B separate (1, C) @ W matmuls (other BLAS kernels, another summation
order), and attention's work split depends on the batch size too. Tokens
drawn from slightly different probabilities part ways sooner or later. So
every row runs the very calls the single loop makes, with the same shapes,
and the batch is interleaved per weight matrix instead (`step_rows`): each
matrix is applied to all rows back to back, while it is still in the CPU
cache, which is where batch decoding saves its time on CPU. Measured at the
small dims on one thread: a decode step costs 28 ms per take alone, 19 ms
per take at B = 4 (interleaving whole blocks instead saved nothing: a block's
28 MB does not stay cached). Stacked (B, C) matmuls would be a little faster
still (about 11 vs 14 ms per take for the matrices alone), but not exact.

- Semantic: all takes share the text and the voice, so the 513-id context is
  prefilled once and its KV cache copied to every row. Rows stop on their own
  (EOS, min_eos_p, duration) and leave the batch; the others go on.
- Coarse: each row plans its windows from its own semantic tokens; the window
  schedule depends only on the step, so windows line up across rows. Each
  window is prefilled per row (the prefill is compute-bound: batching it
  gains nothing), then decoded interleaved; rows whose (shorter) output
  is complete leave the batch.
- Fine: rows run one after another through the single-take loop. The fine
  model sees whole 1024-frame windows, so its matmuls are large and
  compute-bound: a batch would not read the weights any less often, and a
  stacked (B·1024, C) matmul is not guaranteed bitwise equal to B
  (1024, C) ones. Equal results matter more than nothing gained.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import (
    COARSE_INFER_TOKEN,
    COARSE_WINDOW_STEPS,
    CODEBOOK_SIZE,
    CONTEXT_WINDOW,
    FINE_MAX_HISTORY,
    MAX_COARSE_HISTORY,
    MAX_SEMANTIC_STEPS,
    N_COARSE_CODEBOOKS,
    N_FINE_CODEBOOKS,
    SEMANTIC_VOCAB_SIZE,
)
from ..errors import BadInputError
from ..model.gpt import GPT, Block, FineGPT, KVCache, linear, use_decode_layout
from .coarse import RATIO, generate_coarse, plan_coarse, unflatten_coarse, window_semantic
from .common import OnStep, check_cancel, model_device, token_array
from .fine import generate_fine, n_windows
from .sampling import draw, filter_logits, is_greedy, probabilities, sample
from .semantic import EOS, STEP_LIMIT, generate_semantic, semantic_context, step_bound

Generators = Sequence[torch.Generator | None]
MAX_BATCH = 16


def _check_generators(generators: Generators) -> int:
    if not 1 <= len(generators) <= MAX_BATCH:
        raise BadInputError(f"a batch holds 1..{MAX_BATCH} takes, got {len(generators)}")
    return len(generators)


def clone_cache(cache: KVCache) -> KVCache:
    """An independent copy of a KV cache (its tensors cloned, the rest copied)."""
    return cache.clone()


def _block_rows(block: Block, xs: list[torch.Tensor], caches: Sequence[KVCache], layer: int):
    """`Block.forward(x, cache, layer)` for one new position of several rows.

    Mirrors `Block`, `SelfAttention` (cached, T = 1, after a prefill) and
    `MLP` op for op, with each row's own shapes, but runs every weight matrix
    for all rows back to back. Keep in step with model.py: test_batch.py
    compares the two bit for bit.
    """
    attn, mlp = block.attn, block.mlp
    hs = [block.ln_1(x) for x in xs]
    qkvs = [linear(h, attn.c_attn.weight, attn.c_attn.bias) for h in hs]
    ys = []
    for qkv, cache in zip(qkvs, caches, strict=True):
        B, T, C3 = qkv.shape
        C, H = C3 // 3, attn.n_head
        q, k, v = qkv.split(C, dim=2)
        q = q.view(B, T, H, C // H).transpose(1, 2)
        k = k.view(B, T, H, C // H).transpose(1, 2)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        start = cache.length
        end = start + T
        if start == 0 or T != 1:
            raise ValueError("a decode step needs one new position after a prefill")
        cache.k[layer, :, :, start:end] = k
        cache.v[layer, :, :, start:end] = v
        y = F.scaled_dot_product_attention(
            q, cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]
        )
        ys.append(y.transpose(1, 2).reshape(B, T, C))
    ys = [linear(y, attn.c_proj.weight, attn.c_proj.bias) for y in ys]
    xs = [x + y for x, y in zip(xs, ys, strict=True)]
    hs = [F.gelu(linear(block.ln_2(x), mlp.c_fc.weight, mlp.c_fc.bias)) for x in xs]
    hs = [linear(h, mlp.c_proj.weight, mlp.c_proj.bias) for h in hs]
    return [x + h for x, h in zip(xs, hs, strict=True)]


def step_rows(
    model: GPT,
    tokens: Sequence[torch.Tensor],
    caches: Sequence[KVCache],
    vocab: slice | None = None,
) -> list[torch.Tensor]:
    """One decode step for several rows: logits (1, 1, V) per row.

    Row b gets exactly what `model(tokens[b], caches[b], vocab=vocab)` gives
    (this mirrors `GPT.forward` for one new token with a cache, `last_only`),
    but each weight matrix is applied to all rows back to back (`_block_rows`).
    """
    tr = model.transformer
    pasts = [cache.length for cache in caches]
    xs = []
    for idx, past in zip(tokens, pasts, strict=True):
        if past + 1 > model.config.block_size:
            raise ValueError(
                f"sequence of {past + 1} exceeds the context of {model.config.block_size}"
            )
        pos = torch.arange(past, past + 1, device=idx.device)
        xs.append(tr["wte"](idx) + tr["wpe"](pos))
    for i, block in enumerate(tr["h"]):
        xs = _block_rows(block, xs, caches, i)
    for cache, past in zip(caches, pasts, strict=True):
        cache.length = past + 1
    head = model.lm_head.weight if vocab is None else model.lm_head.weight[vocab]
    hs = [tr["ln_f"](x[:, -1:, :]) for x in xs]
    return [linear(h, head) for h in hs]


@torch.inference_mode()
def generate_semantic_batch(
    model: GPT,
    text_ids: Sequence[int],
    history_semantic: np.ndarray | None,
    *,
    temperature: float | None,
    top_k: int | None = None,
    top_p: float | None = None,
    min_eos_p: float | None = 0.2,
    max_duration_s: float | None = None,
    max_steps: int = MAX_SEMANTIC_STEPS,
    allow_early_stop: bool = True,
    generators: Generators,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> list[np.ndarray]:
    """Semantic tokens of one text for B = len(generators) takes: B arrays (T_b,) int64.

    Row b equals `generate_semantic(..., generator=generators[b])` token for
    token. `on_step(done, total)` counts tokens of all rows together against
    B × the step bound; a set `cancel` raises `Cancelled` before the next step.
    """
    n_rows = _check_generators(generators)
    if n_rows == 1:  # one take: the single loop itself
        return [
            generate_semantic(
                model,
                text_ids,
                history_semantic,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                min_eos_p=min_eos_p,
                max_duration_s=max_duration_s,
                max_steps=max_steps,
                allow_early_stop=allow_early_stop,
                generator=generators[0],
                on_step=on_step,
                cancel=cancel,
            )
        ]
    if not 1 <= max_steps <= STEP_LIMIT:
        raise BadInputError(f"max_steps must be in 1..{STEP_LIMIT}, got {max_steps}")
    history = token_array(
        history_semantic, name="semantic history", ndim=1, upper=SEMANTIC_VOCAB_SIZE
    )
    device = model_device(model)
    context = torch.from_numpy(semantic_context(text_ids, history)).to(device)[None]
    total = step_bound(max_steps, max_duration_s)
    n_candidates = SEMANTIC_VOCAB_SIZE + 1 if allow_early_stop else SEMANTIC_VOCAB_SIZE
    greedy = is_greedy(temperature)
    eos_by_prob = allow_early_stop and not greedy and min_eos_p is not None

    use_decode_layout(model)
    vocab = slice(0, n_candidates)  # the 10,000 semantic tokens, then EOS
    tokens = torch.empty(n_rows, total, dtype=torch.long, device=device)
    lengths = [0] * n_rows
    eos = torch.tensor(EOS, device=device)
    first = model.new_cache(1)
    prefill = model(context, first, merge_context=True, vocab=vocab)  # the same for every row
    caches: list[KVCache | None] = [first] + [clone_cache(first) for _ in range(n_rows - 1)]
    logits = [prefill] * n_rows
    active = list(range(n_rows))
    n = done = 0
    while active and n < total:
        check_cancel(cancel, "semantic")
        going = []
        for b in active:
            relevant = filter_logits(logits[b][0, 0], top_k, top_p)  # (n_candidates,)
            if greedy:
                token = relevant.argmax()
            else:
                probs = probabilities(relevant, temperature)
                token = draw(probs, generators[b])
                if eos_by_prob:
                    token = torch.where(probs[EOS] >= min_eos_p, eos, token)
            if allow_early_stop and token.item() == EOS:
                caches[b] = None  # this row is finished: free its cache
                continue
            tokens[b, n] = token
            going.append(b)
        n += 1
        for b in going:
            lengths[b] = n
        done += len(going)
        active = going
        if going and on_step is not None:
            on_step(done, n_rows * total)
        if active and n < total:
            outs = step_rows(
                model,
                [tokens[b, n - 1 : n].view(1, 1) for b in active],
                [caches[b] for b in active],
                vocab,
            )
            for b, out in zip(active, outs, strict=True):
                logits[b] = out
    return [tokens[b, : lengths[b]].cpu().numpy() for b in range(n_rows)]


def _check_coarse_args(max_coarse_history: int, window_steps: int) -> None:
    if not 60 <= max_coarse_history <= 630:
        raise BadInputError("max_coarse_history must be in 60..630")
    if window_steps < 1 or max_coarse_history + window_steps > CONTEXT_WINDOW - 256:
        raise BadInputError("window_steps must be ≥ 1 and fit the context with the history")


@torch.inference_mode()
def generate_coarse_batch(
    model: GPT,
    semantics: Sequence[np.ndarray],
    history_semantic: np.ndarray | None,
    history_coarse: np.ndarray | None,
    *,
    temperature: float | None,
    top_k: int | None = None,
    top_p: float | None = None,
    max_coarse_history: int = MAX_COARSE_HISTORY,
    window_steps: int = COARSE_WINDOW_STEPS,
    generators: Generators,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> list[np.ndarray]:
    """Coarse codes for B semantic sequences (one per row) sharing one voice history.

    Row b equals `generate_coarse(model, semantics[b], ..., generator=generators[b])`.
    Rows may differ in length; `on_step(done, total)` counts coarse tokens of
    all rows together against their planned sum.
    """
    n_rows = _check_generators(generators)
    if len(semantics) != n_rows:
        raise BadInputError(f"{len(semantics)} semantic sequences for {n_rows} generators")
    if n_rows == 1:  # one take: the single loop itself
        return [
            generate_coarse(
                model,
                semantics[0],
                history_semantic,
                history_coarse,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                max_coarse_history=max_coarse_history,
                window_steps=window_steps,
                generator=generators[0],
                on_step=on_step,
                cancel=cancel,
            )
        ]
    _check_coarse_args(max_coarse_history, window_steps)
    semantics = [
        token_array(s, name="semantic tokens", ndim=1, upper=SEMANTIC_VOCAB_SIZE) for s in semantics
    ]
    history_semantic = token_array(
        history_semantic, name="semantic history", ndim=1, upper=SEMANTIC_VOCAB_SIZE
    )
    history_coarse = token_array(
        history_coarse, name="coarse history", ndim=2, upper=CODEBOOK_SIZE, rows=N_COARSE_CODEBOOKS
    )
    plans = [
        plan_coarse(s, history_semantic, history_coarse, max_coarse_history) for s in semantics
    ]
    device = model_device(model)
    n_hist = len(plans[0].coarse_history)  # the history is shared: so is its trimmed length
    full_semantic = [torch.from_numpy(p.semantic).to(device) for p in plans]
    history = torch.from_numpy(plans[0].coarse_history).to(device)
    coarse = []
    for plan in plans:
        buf = torch.empty(n_hist + plan.n_steps, dtype=torch.long, device=device)
        buf[:n_hist] = history
        coarse.append(buf)
    infer = torch.tensor([COARSE_INFER_TOKEN], device=device)
    use_decode_layout(model)
    vocab = slice(SEMANTIC_VOCAB_SIZE, SEMANTIC_VOCAB_SIZE + N_COARSE_CODEBOOKS * CODEBOOK_SIZE)
    caches: list[KVCache | None] = [model.new_cache(1) if p.n_steps else None for p in plans]
    grand_total = sum(p.n_steps for p in plans)

    n_step = done = 0
    longest = max(p.n_steps for p in plans)
    while n_step < longest:
        check_cancel(cancel, "coarse")
        rows = [b for b, p in enumerate(plans) if n_step < p.n_steps]
        end = n_hist + n_step
        logits = {}
        n_window = {}
        for b in rows:
            plan = plans[b]
            semantic_idx = plan.base_semantic_idx + int(round(n_step / RATIO))
            x_in = torch.cat(
                [
                    window_semantic(full_semantic[b], semantic_idx, plan.max_semantic_history),
                    infer,
                    coarse[b][max(0, end - max_coarse_history) : end],
                ]
            )
            caches[b].reset()
            logits[b] = model(x_in[None], caches[b], vocab=vocab)  # (1, 1, 2048)
            n_window[b] = min(window_steps, plan.n_steps - n_step)
        for i in range(max(n_window.values())):
            if i:
                check_cancel(cancel, "coarse")
            live = [b for b in rows if i < n_window[b]]
            start = (n_step % N_COARSE_CODEBOOKS) * CODEBOOK_SIZE  # within `vocab`
            pos = n_hist + n_step
            for b in live:
                relevant = logits[b][0, 0, start : start + CODEBOOK_SIZE]
                token = sample(relevant, temperature, generators[b], top_k, top_p)
                coarse[b][pos] = token + (SEMANTIC_VOCAB_SIZE + start)
            n_step += 1
            done += len(live)
            if on_step is not None:
                on_step(done, grand_total)
            more = [b for b in live if i + 1 < n_window[b]]
            if more:
                outs = step_rows(
                    model,
                    [coarse[b][pos : pos + 1].view(1, 1) for b in more],
                    [caches[b] for b in more],
                    vocab,
                )
                for b, out in zip(more, outs, strict=True):
                    logits[b] = out
        for b in rows:
            if n_step >= plans[b].n_steps:
                caches[b] = None
    return [unflatten_coarse(buf[n_hist:].cpu().numpy()) for buf in coarse]


def generate_fine_batch(
    model: FineGPT,
    coarses: Sequence[np.ndarray],
    history_fine: np.ndarray | None,
    *,
    temperature: float | None = 0.5,
    generators: Generators,
    on_step: OnStep | None = None,
    cancel: threading.Event | None = None,
) -> list[np.ndarray]:
    """All 8 codebooks for B coarse arrays (one per row) sharing one voice history.

    The rows run one after another through `generate_fine` (see the module
    docstring for why), each with its own generator; `on_step(done, total)`
    counts codebook passes of all rows together.
    """
    n_rows = _check_generators(generators)
    if len(coarses) != n_rows:
        raise BadInputError(f"{len(coarses)} coarse arrays for {n_rows} generators")
    n_hist = 0 if history_fine is None else min(np.shape(history_fine)[-1], FINE_MAX_HISTORY)
    passes = [
        n_windows(np.shape(c)[-1], n_hist) * (N_FINE_CODEBOOKS - np.shape(c)[0]) for c in coarses
    ]
    grand_total = sum(passes)
    out = []
    for b, coarse in enumerate(coarses):
        offset = sum(passes[:b])

        def report(step: int, _total: int | None, offset: int = offset) -> None:
            if on_step is not None:
                on_step(offset + step, grand_total)

        out.append(
            generate_fine(
                model,
                coarse,
                history_fine,
                temperature=temperature,
                generator=generators[b],
                on_step=report,
                cancel=cancel,
            )
        )
    return out
