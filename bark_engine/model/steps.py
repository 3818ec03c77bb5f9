"""The step seam: how a stage feeds tokens to its model, for B >= 1 rows.

A stage loop speaks only in `Feed`s: "row in slot s gets these ids, either
as a new window (a prefill from position 0) or after what the slot holds".
One call of `Stepper.advance` takes any mix of prefills and one-token steps
for different slots and returns the logits of each feed's last position.
The strategy is chosen once per stage run, outside the model:

- `EagerStepper`: the plain model's `forward`, one feed at a time (the
  pure-torch fallback on the CPU; GPUs with CUDA graphs turned off).
- `kernel_step.KernelStepper`: every feed of a call as rows of one pass
  through the batch-invariant CPU kernels (packed models).
- `cuda_graphs.GraphStepper`: prefills eager, one-token steps of every slot
  replayed as one CUDA graph of fixed shape.

Whatever the strategy, a row's logits do not depend on which other rows
share the call: the eager stepper runs each feed alone, the kernels are
row-invariant by construction, and the graph always runs all its slots.
The fine stage has the same seam in `FineRunner`: logits of several rows'
windows for one codebook.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from .cache import KVCache
from .gpt import GPT, FineGPT


@dataclass(frozen=True)
class Feed:
    """New ids for the row in cache slot `slot`."""

    slot: int
    ids: torch.Tensor  # (T,) int64 on the model's device
    fresh: bool = False  # a new window: the slot starts over at position 0
    merge_context: bool = False  # semantic prefill: text and history embeddings summed


class Stepper(Protocol):
    """A way of running one causal GPT over feeds (see the module docstring)."""

    name: str

    def new_cache(self, slots: int): ...

    def advance(self, cache, feeds: Sequence[Feed], vocab: slice | None) -> torch.Tensor:
        """Logits (len(feeds), V) of each feed's last new position, in feed order;
        the cache holds every fed position afterwards."""
        ...


class FineRunner(Protocol):
    """A way of running the fine GPT over several rows' windows."""

    name: str

    def logits(self, windows: Sequence[torch.Tensor], rel: Sequence[int],
               pred_idx: int) -> list[torch.Tensor]:
        """For each window (T, 8) and first wanted position rel: logits (T - rel, V)
        of codebook `pred_idx`."""
        ...


def check_feeds(feeds: Sequence[Feed], slots: int) -> None:
    """One feed per slot and call, and every slot in range."""
    seen = [f.slot for f in feeds]
    if len(set(seen)) != len(seen) or any(not 0 <= s < slots for s in seen):
        raise ValueError(f"feeds need distinct slots in 0..{slots - 1}, got {seen}")


# SDPA backends for eager and graphed GPU steps: not cuDNN's, which builds a
# new plan for every new key length (~30 ms each, so a first 256-token run took
# 9 s instead of 0.9 s in bf16 on an H200).
GPU_ATTENTION = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def gpu_attention():
    """A context in which SDPA avoids the cuDNN backend (see `GPU_ATTENTION`)."""
    return sdpa_kernel(GPU_ATTENTION)


def gpu_context(device: torch.device):
    """Where the eager model runs: on a GPU, attention without cuDNN's per-length plans."""
    return gpu_attention() if device.type == "cuda" else contextlib.nullcontext()


class EagerStepper:
    """`GPT.forward` for each feed on its own slot of a `KVCache`."""

    name = "eager"

    def __init__(self, model: GPT) -> None:
        self.model = model

    def new_cache(self, slots: int) -> KVCache:
        return self.model.new_cache(slots)

    def advance(self, cache: KVCache, feeds: Sequence[Feed], vocab: slice | None) -> torch.Tensor:
        check_feeds(feeds, cache.slots)
        out = []
        with gpu_context(cache.kv.device):
            for feed in feeds:
                view = cache.view(feed.slot)
                if feed.fresh:
                    view.reset()
                logits = self.model(feed.ids[None], view, merge_context=feed.merge_context,
                                    vocab=vocab)  # (1, 1, V)
                out.append(logits[0, 0])
        return torch.stack(out)


class EagerFine:
    """`FineGPT.forward` for each window on its own."""

    name = "eager"

    def __init__(self, model: FineGPT) -> None:
        self.model = model

    def logits(self, windows: Sequence[torch.Tensor], rel: Sequence[int],
               pred_idx: int) -> list[torch.Tensor]:
        with gpu_context(windows[0].device):
            return [self.model(pred_idx, w[None], rows=slice(r, None))[0]
                    for w, r in zip(windows, rel, strict=True)]
