"""The `Engine`: owns the loaded models and runs text → semantic → coarse → fine → audio.

One object per model source; nothing is cached at module level. Loading is
lazy and thread-safe (the app loads from a worker while the UI keeps
drawing). Progress goes out through a callback of frozen event dataclasses;
a `threading.Event` cancels between tokens and between stages.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .config import MAX_BATCH, MAX_TEXT_TOKENS, SAMPLE_RATE
from .errors import BadInputError
from .events import EventCallback, LoadProgress, ignore_event
from .loading import codec as codec_mod
from .loading.checkpoints import load_checkpoint, load_tokenizer
from .loading.source import ModelSource
from .model import kernels
from .model.gpt import GPT, FineGPT
from .model.precision import dtype_name, precision_advice, resolve_dtype, weight_bytes
from .model.strategy import fine_runner_for, stepper_for
from .options import EngineConfig, GenerationOptions, Request, VoiceArg
from .stages.pipeline import PreparedRow, StageModels, run_rows
from .stages.runner import StageTiming
from .voices.catalog import VoicePrompt, resolve_voice_arg

# Script segments per batch when a render does not say (`Engine.default_batch`).
DEFAULT_BATCH_CPU = 4
DEFAULT_BATCH_GPU = 8


@dataclass(frozen=True)
class Generation:
    """One finished take: its tokens, its audio and how it was made."""

    text: str
    voice: str | None  # preset / file / my-voice name as given, None = no history prompt
    seed: int
    options: GenerationOptions
    semantic: np.ndarray  # (T_sem,) int64 in [0, 10000)
    coarse: np.ndarray  # (2, T) int64 in [0, 1024)
    fine: np.ndarray  # (8, T) int64 in [0, 1024)
    audio: np.ndarray  # (T * 320,) float32 at `sample_rate`
    sample_rate: int
    timings: dict[str, StageTiming] = field(default_factory=dict)
    random_weights: bool = False
    model_id: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def total_seconds(self) -> float:
        return sum(t.seconds for t in self.timings.values())

    def voice_prompt(self, name: str = "") -> VoicePrompt:
        """This take as a voice (history prompt) in the original `.npz` format."""
        return VoicePrompt(semantic=self.semantic, coarse=self.coarse, fine=self.fine, name=name)


def normalize_text(text: str) -> str:
    """Collapse runs of whitespace, as the original does before tokenizing."""
    return re.sub(r"\s+", " ", text).strip()


def checked_text_ids(text: str, tokenize: Callable[[str], list[int]]) -> list[int]:
    """`tokenize(text)`, or BadInputError for empty text or text over Bark's 256 tokens
    (shared by the engine and the remote one, so both refuse the same texts)."""
    if not normalize_text(text):
        raise BadInputError("the text is empty: write something for Bark to say")
    ids = tokenize(text)
    if len(ids) > MAX_TEXT_TOKENS:
        cut = round((len(ids) - MAX_TEXT_TOKENS) / len(ids) * 100, 1)
        raise BadInputError(
            f"the text is {len(ids)} tokens; Bark reads at most {MAX_TEXT_TOKENS}, so the last "
            f"{cut}% would be lost: shorten it or render it as a long script (--file)"
        )
    return ids


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; anything else must be a device torch knows."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise BadInputError(
            f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise BadInputError(f"unsupported device '{name}': use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device '{name}' asked for, but this torch build sees no CUDA GPU")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise BadInputError(f"device '{name}' asked for, but MPS is not available here")
    return device


class Engine:
    """Bark inference with its own loaded models. Cheap to build; loads on first use."""

    def __init__(self, config: EngineConfig | None = None, *, user_voices_dir: Path | None = None):
        self.config = config or EngineConfig()
        self.user_voices_dir = user_voices_dir
        self.device = resolve_device(self.config.device)
        try:  # "auto" needs to know whether the kernels run (`precision.auto_dtype`)
            self.dtype = resolve_dtype(self.config.dtype, self.device, self.uses_kernels)
        except ValueError as e:
            raise BadInputError(str(e)) from None
        if self.config.size not in ("small", "large"):
            raise BadInputError(f"unknown model size '{self.config.size}': use small or large")
        if self.config.threads is not None:
            if self.config.threads < 1:
                raise BadInputError("threads must be at least 1")
            torch.set_num_threads(self.config.threads)
        self._lock = threading.RLock()  # loading the models
        # The source and the tokenizer have their own locks, so counting tokens and
        # resolving voices answer while the models load (a server checks requests then).
        self._source_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self._source: ModelSource | None = None
        self._tokenizer = None
        self._semantic: GPT | None = None
        self._coarse: GPT | None = None
        self._fine: FineGPT | None = None
        self._codec = None
        self._stages: StageModels | None = None
        self._run_lock = threading.Lock()  # one batch at a time: steppers keep scratch state

    # ---- loading --------------------------------------------------------------
    def source(self, on_event: EventCallback = ignore_event) -> ModelSource:
        with self._source_lock:
            if self._source is None:
                self._source = ModelSource(
                    self.config.models,
                    size=self.config.size,
                    offline=self.config.offline,
                    cache_dir=self.config.cache_dir,
                    on_event=on_event,
                )
            else:
                self._source.on_event = on_event
            return self._source

    @property
    def random_weights(self) -> bool:
        return self.source().random_weights

    @property
    def model_id(self) -> str:
        """The model source and size, then the precision and device type unless
        they are float32 with the CPU kernels ("suno/bark small bfloat16 on cpu",
        "... float32 on cpu, torch fallback"; ", bf16 rows" where bf16 prefills
        run on AVX512-BF16 dot products; ", AMX tiles" where int8 or bf16
        prefills run on AMX): what decides the tokens besides the seed. Takes
        record it, and `render` keys its kept segments on it."""
        source = self.source().model_id
        fallback = self.device.type == "cpu" and not self.uses_kernels
        if self.dtype == torch.float32 and not fallback:
            return source
        bf16_rows = self.uses_kernels and self.dtype == torch.bfloat16 and kernels.bf16_dot()
        tiles = (bf16_rows or (self.uses_kernels and self.dtype == torch.int8)) and kernels.amx()
        rows = (", bf16 rows" if bf16_rows else "") + (", AMX tiles" if tiles else "")
        return f"{source} {self.dtype_name} on {self.device.type}" + (
            ", torch fallback" if fallback else "") + rows

    @property
    def uses_kernels(self) -> bool:
        """Whether the models run on the compiled CPU kernels (`model.kernels`)."""
        return self.device.type == "cpu" and self.config.kernels and kernels.available()

    @property
    def step_path(self) -> str:
        """How the models step, in words ("compiled kernels (avx2, OpenMP)", "cuda graphs")."""
        if self.device.type == "cpu":
            if not self.config.kernels:
                return "pure-torch fallback (kernels turned off)"
            return kernels.status().describe()
        if self.device.type == "cuda" and self.config.cuda_graphs:
            return "CUDA graphs"
        return "eager torch"

    @property
    def precision_advice(self) -> str | None:
        """A one-line caution when the chosen precision is likely slow on this
        machine (see `precision.precision_advice`), else None."""
        return precision_advice(self.dtype, self.device, self.uses_kernels)

    @property
    def dtype_name(self) -> str:
        """The precision the models run in: "float32", "bfloat16", "float16" or "int8"."""
        return dtype_name(self.dtype)

    @property
    def loaded(self) -> bool:
        return all(m is not None for m in (self._semantic, self._coarse, self._fine, self._codec))

    def _load_tokenizer(self, on_event: EventCallback) -> None:
        with self._tokenizer_lock:
            if self._tokenizer is None:
                src = self.source(on_event)
                path = src.fetch(src.vocab_relpath)
                on_event(LoadProgress("tokenizer", 0, 1, "loading the tokenizer"))
                self._tokenizer = load_tokenizer(path)
                on_event(LoadProgress("tokenizer", 1, 1, "tokenizer ready"))

    def _load_gpt(self, stage: str, kind: str, on_event: EventCallback):
        src = self.source(on_event)
        relpath = src.checkpoint_relpath(stage)
        path = src.fetch(relpath)
        on_event(LoadProgress(relpath, 0, 1, f"loading {relpath}"))
        model = load_checkpoint(path, kind, device=self.device, dtype=self.dtype,
                                use_kernels=self.config.kernels)
        on_event(LoadProgress(relpath, 1, 1, f"{relpath} ready"))
        return model

    def load_codec(self, on_event: EventCallback = ignore_event) -> None:
        """Load EnCodec only: enough to audition a voice."""
        with self._lock:
            if self._codec is None:
                path = self.source(on_event).codec_path()
                on_event(LoadProgress("encodec", 0, 1, "loading EnCodec"))
                self._codec = codec_mod.load_codec(path, self.device)
                on_event(LoadProgress("encodec", 1, 1, "EnCodec ready"))

    def load(self, on_event: EventCallback = ignore_event) -> None:
        """Load (downloading first if needed) the tokenizer, the three GPTs and the codec."""
        with self._lock:
            self._load_tokenizer(on_event)
            if self._semantic is None:
                self._semantic = self._load_gpt("semantic", "causal", on_event)
            if self._coarse is None:
                self._coarse = self._load_gpt("coarse", "causal", on_event)
            if self._fine is None:
                self._fine = self._load_gpt("fine", "fine", on_event)
            self.load_codec(on_event)

    # ---- text and voices ------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """WordPiece ids of the normalised text (no special tokens, no offset)."""
        self._load_tokenizer(ignore_event)
        return list(self._tokenizer.encode(normalize_text(text), add_special_tokens=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def resolve_voice(self, voice: VoiceArg) -> VoicePrompt | None:
        """A preset name, a `.npz` path, a My-voices name, a VoicePrompt, or None."""
        if voice is None or isinstance(voice, VoicePrompt):
            return voice
        src = self.source()
        return resolve_voice_arg(str(voice), src.fetch, self.user_voices_dir)

    def check_text(self, text: str) -> list[int]:
        """The text's ids, or BadInputError for empty text or text over Bark's 256 tokens."""
        return checked_text_ids(text, self.tokenize)

    # ---- generation -------------------------------------------------------------
    def generate(
        self,
        text: str,
        voice: VoiceArg = None,
        options: GenerationOptions | None = None,
        on_event: EventCallback = ignore_event,
        cancel: threading.Event | None = None,
        segment: int = 0,
    ) -> Generation:
        """Text to audio through all four stages. Raises Cancelled when `cancel` is set."""
        request = Request(text, voice, options or GenerationOptions(), segment)
        return self.generate_batch([request], on_event=on_event, cancel=cancel)[0]

    def generate_takes(
        self,
        text: str,
        voice: VoiceArg = None,
        options: GenerationOptions | None = None,
        *,
        seeds: Sequence[int],
        on_event: EventCallback = ignore_event,
        cancel: threading.Event | None = None,
        segment: int = 0,
    ) -> list[Generation]:
        """One take per seed, as one batch; take i equals `generate` with seed seeds[i]."""
        if isinstance(seeds, (int, str, bytes)):
            raise BadInputError("seeds must be a sequence of integers, one per take")
        options = options or GenerationOptions()
        requests = [Request(text, voice, replace(options, seed=int(s)), segment) for s in seeds]
        return self.generate_batch(requests, on_event=on_event, cancel=cancel)

    def generate_batch(
        self,
        requests: Sequence[Request],
        on_event: EventCallback = ignore_event,
        cancel: threading.Event | None = None,
    ) -> list[Generation]:
        """One `Generation` per request (1..16 of them), made as one batch.

        Each request has its own text, voice, options and seed (a None seed is
        drawn at random and reported); generation i has exactly the tokens
        `generate` gives for request i alone. Each take's `timings` hold its
        own token counts and the batch's seconds per stage (decode: its own).
        Every text and voice is checked before any stage runs.
        """
        if not 1 <= len(requests) <= MAX_BATCH:
            raise BadInputError(f"a batch holds 1..{MAX_BATCH} takes, got {len(requests)}")
        voices: dict[int, VoicePrompt | None] = {}
        rows = []
        for r in requests:
            ids = self.check_text(r.text)
            key = id(r.voice)
            if key not in voices:
                voices[key] = self.resolve_voice(r.voice)
            seed = r.options.seed if r.options.seed is not None else secrets.randbelow(2**31)
            rows.append(PreparedRow(ids, voices[key], replace(r.options, seed=seed), r.segment))
        self.load(on_event)
        with self._run_lock:
            results = run_rows(self.stage_models(), rows, on_event, cancel)
        return [
            Generation(
                text=r.text, voice=voice_label(r.voice), seed=row.seed, options=row.options,
                semantic=out.semantic, coarse=out.coarse, fine=out.fine, audio=out.audio,
                sample_rate=SAMPLE_RATE, timings=out.timings, random_weights=self.random_weights,
                model_id=self.model_id,
            )
            for r, row, out in zip(requests, rows, results, strict=True)
        ]

    def weight_bytes(self) -> int:
        """Bytes the three GPTs' weights take as loaded (0 before `load`): int8 about
        a quarter of float32 in the matrices, bf16 and fp16 half."""
        return sum(weight_bytes(m) for m in (self._semantic, self._coarse, self._fine)
                   if m is not None)

    def stage_models(self) -> StageModels:
        """The step strategy of each stage, chosen once per loaded model (loads first)."""
        self.load()
        if self._stages is None:
            self._stages = StageModels(
                semantic=stepper_for(self._semantic, self.config.cuda_graphs),
                coarse=stepper_for(self._coarse, self.config.cuda_graphs),
                fine=fine_runner_for(self._fine),
                decode=self.decode,
                device=self.device,
            )
        return self._stages

    @property
    def default_batch(self) -> int:
        """Segments per batch when a script render does not say: what ran fastest
        per segment on this kind of device (docs/PERFORMANCE.md)."""
        return DEFAULT_BATCH_GPU if self.device.type == "cuda" else DEFAULT_BATCH_CPU

    def decode(self, fine: np.ndarray) -> np.ndarray:
        """(8, T) fine codes → (T*320,) float32 audio at 24 kHz."""
        self.load_codec()
        return codec_mod.decode(self._codec, fine)

    def audition(self, voice: VoiceArg, on_event: EventCallback = ignore_event) -> np.ndarray:
        """A voice's own recorded sample: its fine prompt decoded by EnCodec, no GPT stages."""
        prompt = self.resolve_voice(voice)
        if prompt is None:
            raise BadInputError("no voice to audition")
        self.load_codec(on_event)
        return codec_mod.decode(self._codec, prompt.fine, exact=False)


def voice_label(voice: VoiceArg) -> str | None:
    if voice is None:
        return None
    if isinstance(voice, VoicePrompt):
        return voice.name or "custom"
    return str(voice)
