"""Typed options for loading an engine and for one generation.

Nothing here reads environment variables: the CLI and the app build these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Union

from .config import MAX_SEMANTIC_STEPS

if TYPE_CHECKING:
    from .voices.prompts import VoicePrompt

# A voice as callers name it: a preset, a .npz path, a My-voices name, a prompt, or none.
VoiceArg = Union[str, Path, "VoicePrompt", None]

ModelSize = Literal["small", "large"]

# Precision names (`--dtype`, the studio's settings, EngineConfig.dtype): "auto"
# picks the fastest that is still Bark's (`model.precision.auto_dtype`);
# float32 is the one whose greedy tokens equal the original Bark's.
PRECISIONS = ("auto", "float32", "bfloat16", "float16", "int8")

# Sampling defaults of the original Bark: the one place they are written (the
# CLI, the studio's settings and the stage functions read them from here).
DEFAULT_TEXT_TEMP = 0.7  # semantic stage
DEFAULT_WAVEFORM_TEMP = 0.7  # coarse stage
DEFAULT_FINE_TEMP = 0.5  # fine stage
DEFAULT_MIN_EOS_P = 0.2  # end the semantic stage once EOS is this likely
# The long-form recipe (Bark's long-form notebook): less extra audio at segment ends.
LONG_FORM_TEXT_TEMP = 0.6
LONG_FORM_MIN_EOS_P = 0.05


class SemanticSampling(TypedDict):
    """Keyword arguments of `generate_semantic` and `generate_semantic_batch`."""

    temperature: float | None
    top_k: int | None
    top_p: float | None
    min_eos_p: float | None
    max_duration_s: float | None
    max_steps: int
    allow_early_stop: bool


class CoarseSampling(TypedDict):
    """Keyword arguments of `generate_coarse` and `generate_coarse_batch`."""

    temperature: float | None
    top_k: int | None
    top_p: float | None


class FineSampling(TypedDict):
    """Keyword arguments of `generate_fine` and `generate_fine_batch`."""

    temperature: float | None


@dataclass(frozen=True)
class EngineConfig:
    """Where the weights come from and where they run."""

    models: str | None = None  # local folder, or a hub repo id; None = "suno/bark"
    size: ModelSize = "small"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    dtype: str | None = "auto"  # one of PRECISIONS (None = "auto")
    threads: int | None = None  # torch intra-op threads; None = torch's default
    offline: bool | None = None  # None = honour HF_HUB_OFFLINE as huggingface_hub does
    cache_dir: str | None = None  # None = huggingface_hub's cache (HF_HOME)
    cuda_graphs: bool = True  # on a CUDA GPU, replay each decode step as a CUDA graph
    kernels: bool = True  # on the CPU, the compiled batch-invariant kernels where built


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling settings for one take. A temperature of 0 (or None) means greedy."""

    text_temp: float = DEFAULT_TEXT_TEMP  # semantic stage
    waveform_temp: float = DEFAULT_WAVEFORM_TEMP  # coarse stage
    fine_temp: float | None = DEFAULT_FINE_TEMP  # fine stage; None or 0 = argmax
    top_k: int | None = None
    top_p: float | None = None
    min_eos_p: float | None = DEFAULT_MIN_EOS_P  # stop when the (temperature-scaled) EOS probability reaches this
    max_duration_s: float | None = None  # stop the semantic stage once past this much audio
    max_semantic_steps: int = MAX_SEMANTIC_STEPS
    seed: int | None = None  # None = a fresh random seed, reported in the result
    allow_early_stop: bool = True

    @staticmethod
    def long_form() -> GenerationOptions:
        """The original long-form recipe: less extra audio at segment ends."""
        return GenerationOptions().with_long_form()

    def with_long_form(self) -> GenerationOptions:
        """These options with the long-form recipe's text temperature and min_eos_p."""
        return replace(self, text_temp=LONG_FORM_TEXT_TEMP, min_eos_p=LONG_FORM_MIN_EOS_P)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GenerationOptions:
        """Options from a mapping keyed by field name, such as parsed CLI arguments.

        Keys that are not fields are skipped and missing fields keep their
        defaults, so a caller whose names already match never lists the
        fields again (and a field added here reaches it without an edit).
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    # The stage functions name these settings their own way; these are the one
    # place that maps them, so a single take (pipeline) and a batch (takes)
    # cannot sample differently.
    def semantic_sampling(self) -> SemanticSampling:
        """The semantic stage's sampling and stopping arguments."""
        return SemanticSampling(
            temperature=self.text_temp,
            top_k=self.top_k,
            top_p=self.top_p,
            min_eos_p=self.min_eos_p,
            max_duration_s=self.max_duration_s,
            max_steps=self.max_semantic_steps,
            allow_early_stop=self.allow_early_stop,
        )

    def coarse_sampling(self) -> CoarseSampling:
        """The coarse stage's sampling arguments."""
        return CoarseSampling(temperature=self.waveform_temp, top_k=self.top_k, top_p=self.top_p)

    def fine_sampling(self) -> FineSampling:
        """The fine stage's sampling argument."""
        return FineSampling(temperature=self.fine_temp)


@dataclass(frozen=True)
class Request:
    """One take to make: a row of a batch (`Engine.generate_batch`)."""

    text: str
    voice: VoiceArg = None
    options: GenerationOptions = GenerationOptions()  # seed None: a fresh random one
    segment: int = 0  # the script segment this take renders (events name it)
