"""Typed options for loading an engine and for one generation.

Nothing here reads environment variables: the CLI and the app build these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import MAX_SEMANTIC_STEPS

ModelSize = Literal["small", "large"]


@dataclass(frozen=True)
class EngineConfig:
    """Where the weights come from and where they run."""

    models: str | None = None  # local folder, or a hub repo id; None = "suno/bark"
    size: ModelSize = "small"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    dtype: str | None = None  # "float32" | "bfloat16" | "float16"; None = fp32 on CPU, bf16 on GPU
    threads: int | None = None  # torch intra-op threads; None = torch's default
    offline: bool | None = None  # None = honour HF_HUB_OFFLINE as huggingface_hub does
    cache_dir: str | None = None  # None = huggingface_hub's cache (HF_HOME)


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling settings for one take. A temperature of 0 (or None) means greedy."""

    text_temp: float = 0.7  # semantic stage
    waveform_temp: float = 0.7  # coarse stage
    fine_temp: float | None = 0.5  # fine stage; None or 0 = argmax
    top_k: int | None = None
    top_p: float | None = None
    min_eos_p: float | None = 0.2  # stop when the (temperature-scaled) EOS probability reaches this
    max_duration_s: float | None = None  # stop the semantic stage once past this much audio
    max_semantic_steps: int = MAX_SEMANTIC_STEPS
    seed: int | None = None  # None = a fresh random seed, reported in the result
    allow_early_stop: bool = True

    @staticmethod
    def long_form() -> GenerationOptions:
        """The original long-form recipe: less extra audio at segment ends."""
        return GenerationOptions(text_temp=0.6, min_eos_p=0.05)
