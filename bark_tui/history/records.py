"""What the history stores: a new take on its way in, and a take read back.

Plain dataclasses with no database handle, so a widget can hold a ``Take``
in the UI thread while a worker writes the next one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bark_engine.config import SAMPLE_RATE
from bark_engine.options import GenerationOptions

from .errors import TakeFileMissing
from .files import read_tokens, safe_child

SNIPPET_CHARS = 40


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A one-line default name: the text with whitespace collapsed, cut with an ellipsis."""
    flat = " ".join(text.split())
    if not flat:
        return "(empty)"
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _plain(value: Any) -> Any:
    """Dataclasses (GenerationOptions, StageTiming) to dicts, recursively, for JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass
class NewTake:
    """The facts about a generation, without its audio and tokens (passed alongside)."""

    text: str
    voice: str | None  # preset name ("v2/en_speaker_6"), a voice file path, or None
    seed: int | None
    options: GenerationOptions | dict[str, Any] = field(default_factory=GenerationOptions)
    model_id: str = ""
    random_weights: bool = False
    sample_rate: int = SAMPLE_RATE
    timings: dict[str, Any] = field(default_factory=dict)  # {stage: StageTiming | {tokens, seconds}}
    name: str | None = None  # None = a snippet of the text
    segments: list[Any] | None = None  # long scripts: per-segment facts

    def options_json(self) -> str:
        return json.dumps(_plain(self.options), sort_keys=True)

    def timings_json(self) -> str:
        return json.dumps(_plain(self.timings), sort_keys=True)

    def segments_json(self) -> str | None:
        return None if self.segments is None else json.dumps(_plain(self.segments))

    @classmethod
    def from_generation(cls, gen: Any, name: str | None = None) -> NewTake:
        """Build from a ``bark_engine.engine.Generation``.

        Read by attribute name only, so this module never imports the engine's
        pipeline (and with it torch).
        """
        return cls(
            text=gen.text,
            voice=gen.voice,
            seed=gen.seed,
            options=gen.options,
            model_id=gen.model_id,
            random_weights=bool(gen.random_weights),
            sample_rate=int(gen.sample_rate),
            timings=dict(gen.timings),
            name=name,
        )


# The columns `Take.from_row` reads, in its order (SELECT {TAKE_COLUMNS} FROM takes).
TAKE_COLUMNS = (
    "id, created_at, name, text, voice, seed, options, model_id, random_weights, timings, "
    "duration_s, sample_rate, wav_file, tokens_file, segments, deleted_at"
)


def json_or(text: str | None, fallback: object) -> object:
    """Decode stored JSON; a damaged field shows as empty rather than breaking the list."""
    if text is None:
        return fallback
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return fallback


@dataclass
class Take:
    """One row of the history, with its files resolved inside the takes folder."""

    id: int
    created_at: str
    name: str
    text: str
    voice: str | None
    seed: int | None
    options: dict[str, Any]
    model_id: str
    random_weights: bool
    timings: dict[str, Any]
    duration_s: float
    sample_rate: int
    wav_file: str
    tokens_file: str | None
    segments: list[Any] | None
    deleted_at: str | None
    takes_dir: Path = field(repr=False)

    @classmethod
    def from_row(cls, row: tuple, takes_dir: Path) -> Take:
        """A take from a row of `TAKE_COLUMNS`."""
        (take_id, created_at, name, text, voice, seed, options, model_id, random_weights,
         timings, duration_s, sample_rate, wav_file, tokens_file, segments, deleted_at) = row
        return cls(
            id=int(take_id),
            created_at=created_at,
            name=name,
            text=text,
            voice=voice,
            seed=None if seed is None else int(seed),
            options=json_or(options, {}),  # type: ignore[arg-type]
            model_id=model_id,
            random_weights=bool(random_weights),
            timings=json_or(timings, {}),  # type: ignore[arg-type]
            duration_s=float(duration_s),
            sample_rate=int(sample_rate),
            wav_file=wav_file,
            tokens_file=tokens_file,
            segments=None if segments is None else json_or(segments, None),  # type: ignore[arg-type]
            deleted_at=deleted_at,
            takes_dir=takes_dir,
        )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def wav_path(self) -> Path | None:
        """None when the stored name is not a plain file name (never trusted blindly)."""
        return safe_child(self.takes_dir, self.wav_file)

    @property
    def tokens_path(self) -> Path | None:
        return safe_child(self.takes_dir, self.tokens_file)

    @property
    def wav_exists(self) -> bool:
        path = self.wav_path
        return path is not None and path.is_file()

    @property
    def tokens_exists(self) -> bool:
        path = self.tokens_path
        return path is not None and path.is_file()

    def load_audio(self) -> tuple[np.ndarray, int]:
        """The take's audio (float32 mono) and its sample rate; TakeFileMissing if gone."""
        from bark_engine.audio import read_wav

        path = self.wav_path
        if path is None or not path.is_file():
            raise TakeFileMissing(
                f"Take {self.id} ({self.name}): its audio file {self.wav_file!r} is missing "
                f"from {self.takes_dir}."
            )
        return read_wav(path)

    def load_tokens(self) -> dict[str, np.ndarray]:
        """semantic_prompt / coarse_prompt / fine_prompt; TakeFileMissing if gone."""
        path = self.tokens_path
        if path is None or not path.is_file():
            what = "has no tokens file" if not self.tokens_file else "tokens file is missing"
            raise TakeFileMissing(f"Take {self.id} ({self.name}) {what}.")
        return read_tokens(path)

    def generation_options(self) -> GenerationOptions:
        """The options to regenerate this take (fields unknown to this engine are dropped)."""
        return GenerationOptions.from_mapping(self.options)
