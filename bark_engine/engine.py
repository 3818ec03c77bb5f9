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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import MAX_TEXT_TOKENS, SAMPLE_RATE, SEMANTIC_RATE_HZ
from .errors import BadInputError
from .events import EventCallback, LoadProgress, ignore_event
from .loading import codec as codec_mod
from .loading.checkpoints import load_checkpoint, load_tokenizer
from .loading.source import ModelSource
from .model.gpt import GPT, FineGPT
from .model.matvec import half_weights_advice
from .options import EngineConfig, GenerationOptions
from .stages import generate_coarse, generate_fine, generate_semantic
from .stages.runner import (
    TOO_LITTLE_SPEECH,
    StageReporter,
    StageRunner,
    StageTiming,
    history_arrays,
)
from .takes import generate_takes as _generate_takes
from .voices.catalog import VoicePrompt, resolve_voice_arg

VoiceArg = str | Path | VoicePrompt | None
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.bfloat16` → "bfloat16": the name `--dtype` and EngineConfig use."""
    return str(dtype).removeprefix("torch.")


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """fp32 on CPU by default; bf16 (or fp16 where bf16 is unsupported) on GPUs."""
    if name is None:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    if name not in _DTYPES:
        raise BadInputError(f"unknown dtype '{name}': use one of {', '.join(_DTYPES)}")
    return _DTYPES[name]


class Engine:
    """Bark inference with its own loaded models. Cheap to build; loads on first use."""

    def __init__(self, config: EngineConfig | None = None, *, user_voices_dir: Path | None = None):
        self.config = config or EngineConfig()
        self.user_voices_dir = user_voices_dir
        self.device = resolve_device(self.config.device)
        self.dtype = resolve_dtype(self.config.dtype, self.device)
        if self.config.size not in ("small", "large"):
            raise BadInputError(f"unknown model size '{self.config.size}': use small or large")
        if self.config.threads is not None:
            if self.config.threads < 1:
                raise BadInputError("threads must be at least 1")
            torch.set_num_threads(self.config.threads)
        self._lock = threading.RLock()
        self._source: ModelSource | None = None
        self._tokenizer = None
        self._semantic: GPT | None = None
        self._coarse: GPT | None = None
        self._fine: FineGPT | None = None
        self._codec = None

    # ---- loading --------------------------------------------------------------
    def source(self, on_event: EventCallback = ignore_event) -> ModelSource:
        with self._lock:
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
        """The model source and size, and the precision and device type when the
        precision is not float32 ("suno/bark small bfloat16 on cpu": half weights
        there, a whole bf16 model on "cuda"): what decides the tokens besides the
        seed. Takes record it, and `render` keys its kept segments on it."""
        source = self.source().model_id
        if self.dtype == torch.float32:
            return source
        return f"{source} {self.dtype_name} on {self.device.type}"

    @property
    def precision_advice(self) -> str | None:
        """A one-line caution when the chosen precision is likely slow on this
        machine (see `matvec.half_weights_advice`), else None."""
        return half_weights_advice(self.dtype, self.device)

    @property
    def dtype_name(self) -> str:
        """The precision the models run in: "float32", "bfloat16" or "float16"."""
        return dtype_name(self.dtype)

    @property
    def loaded(self) -> bool:
        return all(m is not None for m in (self._semantic, self._coarse, self._fine, self._codec))

    def _load_tokenizer(self, on_event: EventCallback) -> None:
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
        model = load_checkpoint(path, kind, device=self.device, dtype=self.dtype)
        if kind == "causal":
            model.cuda_graphs = self.config.cuda_graphs
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
        with self._lock:
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
        if not normalize_text(text):
            raise BadInputError("the text is empty: write something for Bark to say")
        ids = self.tokenize(text)
        if len(ids) > MAX_TEXT_TOKENS:
            cut = round((len(ids) - MAX_TEXT_TOKENS) / len(ids) * 100, 1)
            raise BadInputError(
                f"the text is {len(ids)} tokens; Bark reads at most {MAX_TEXT_TOKENS}, so the last "
                f"{cut}% would be lost: shorten it or render it as a long script (--file)"
            )
        return ids

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
        options, ids, prompt = self._prepare(text, voice, options, on_event)
        seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
        gen = self._generator(seed)
        stages = StageRunner(on_event, cancel, segment)
        hist_sem, hist_coarse, hist_fine = history_arrays(prompt)
        semantic = stages.run(
            "semantic",
            self._semantic_budget(options),
            lambda rep: generate_semantic(
                self._semantic, ids, hist_sem, **options.semantic_sampling(),
                generator=gen, on_step=rep, cancel=cancel,
            ),
        )
        if len(semantic) == 0:
            raise BadInputError("the semantic stage stopped at once (no speech); try another seed")
        coarse = stages.run(
            "coarse",
            None,
            lambda rep: generate_coarse(
                self._coarse, semantic, hist_sem, hist_coarse, **options.coarse_sampling(),
                generator=gen, on_step=rep, cancel=cancel,
            ),
        )
        if coarse.shape[1] == 0:
            raise BadInputError(TOO_LITTLE_SPEECH)
        fine = stages.run(
            "fine",
            None,
            lambda rep: generate_fine(
                self._fine, coarse, hist_fine, **options.fine_sampling(),
                generator=gen, on_step=rep, cancel=cancel,
            ),
        )
        audio = stages.run("decode", 1, lambda rep: self._decode_reporting(fine, rep))
        return self._generation(
            text, voice, seed, options, (semantic, coarse, fine), audio, stages.timings
        )

    def _prepare(
        self,
        text: str,
        voice: VoiceArg,
        options: GenerationOptions | None,
        on_event: EventCallback,
    ) -> tuple[GenerationOptions, list[int], VoicePrompt | None]:
        """Before any stage, for one take or a batch: the options (defaults if
        None), the text's ids and the voice checked first, so that bad input
        fails fast, then the models loaded."""
        options = options or GenerationOptions()
        ids = self.check_text(text)
        prompt = self.resolve_voice(voice)
        self.load(on_event)
        return options, ids, prompt

    def _generator(self, seed: int) -> torch.Generator:
        """The random stream of the take with this seed. Takes made alone or in
        a batch seed it the same way, which is what makes them equal."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def _generation(
        self,
        text: str,
        voice: VoiceArg,
        seed: int,
        options: GenerationOptions,
        tokens: tuple[np.ndarray, np.ndarray, np.ndarray],
        audio: np.ndarray,
        timings: dict[str, StageTiming],
    ) -> Generation:
        """A finished take labelled with this engine's weights (semantic, coarse, fine tokens)."""
        semantic, coarse, fine = tokens
        return Generation(
            text=text,
            voice=_voice_label(voice),
            seed=seed,
            options=options,
            semantic=semantic,
            coarse=coarse,
            fine=fine,
            audio=audio,
            sample_rate=SAMPLE_RATE,
            timings=timings,
            random_weights=self.random_weights,
            model_id=self.model_id,
        )

    # One take per seed as one batch; take i equals `generate` with seed seeds[i]
    # token for token. The function itself, so that its signature lives in one place.
    generate_takes = _generate_takes

    @staticmethod
    def _semantic_budget(options: GenerationOptions) -> int:
        """Most semantic steps this take can run (for a progress bar's total)."""
        steps = options.max_semantic_steps
        if options.max_duration_s is not None:
            steps = min(steps, int(options.max_duration_s * SEMANTIC_RATE_HZ) + 1)
        return steps

    def _decode_reporting(self, fine: np.ndarray, rep: StageReporter) -> np.ndarray:
        audio = self.decode(fine)
        rep(1, 1)
        return audio

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
        return codec_mod.decode(self._codec, prompt.fine)


def _voice_label(voice: VoiceArg) -> str | None:
    if voice is None:
        return None
    if isinstance(voice, VoicePrompt):
        return voice.name or "custom"
    return str(voice)
