"""Long scripts: generate a parsed script segment by segment and stitch the audio.

Each segment is an ordinary `Engine.generate` call with its own derived seed,
so a segment can be re-made alone and the whole re-stitched. With a parts
folder every finished segment is saved (atomically) under a key of
everything that determines it; a rerun after an interruption reuses those
files instead of generating again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..audio import join_segments
from ..config import SAMPLE_RATE
from ..errors import Cancelled
from ..events import EventCallback, ignore_event
from ..options import GenerationOptions
from ..voices.catalog import VoicePrompt
from .parse import Script, Segment

Continuity = Literal["fixed", "chain"]
FADE_S = 0.01  # fade at every segment edge: no clicks at the joins


@dataclass(frozen=True)
class RenderOptions:
    """How a script becomes one take."""

    generation: GenerationOptions = GenerationOptions()
    seed: int = 0  # segment i uses seed + i
    default_voice: str | None = None  # for segments whose voice is None
    continuity: Continuity = "fixed"  # "chain": each segment is the next one's history
    reset_every: int | None = None  # chain mode: back to the preset every N segments
    parts_dir: Path | None = None  # where finished segments are kept (resumable)


@dataclass(frozen=True)
class SegmentTake:
    """One rendered segment: its tokens and audio, and whether it came from disk."""

    segment: Segment
    seed: int
    voice: str | None
    semantic: np.ndarray
    coarse: np.ndarray
    fine: np.ndarray
    audio: np.ndarray
    reused: bool
    seconds: float  # generation time (0 when reused)

    def voice_prompt(self) -> VoicePrompt:
        return VoicePrompt(semantic=self.semantic, coarse=self.coarse, fine=self.fine)


@dataclass(frozen=True)
class Rendered:
    audio: np.ndarray  # the whole script, float32 at sample_rate
    sample_rate: int
    segments: tuple[SegmentTake, ...]
    first_audio_s: float  # wall time until the first segment's audio existed
    total_s: float

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


def segment_key(segment: Segment, voice: str | None, history: VoicePrompt | None,
                options: GenerationOptions, model_id: str) -> str:
    """A digest of everything that decides a segment's tokens."""
    h = hashlib.sha256()
    h.update(json.dumps({"text": segment.text, "voice": voice, "model": model_id,
                         "options": asdict(options)}, sort_keys=True).encode())
    if history is not None:
        for arr in (history.semantic, history.coarse, history.fine):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:20]


def _part_path(parts_dir: Path, index: int, key: str) -> Path:
    return parts_dir / f"segment-{index:04d}-{key}.npz"


def _save_part(path: Path, take: SegmentTake) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, semantic_prompt=take.semantic, coarse_prompt=take.coarse,
                     fine_prompt=take.fine, audio=take.audio)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_part(path: Path) -> dict[str, np.ndarray] | None:
    """A saved segment, or None when it is missing or unreadable (then it is re-made)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in ("semantic_prompt", "coarse_prompt", "fine_prompt",
                                         "audio")}
    except (OSError, ValueError, KeyError):
        return None


class ScriptRenderer:
    """Renders a `Script` with an engine; reports each finished segment as it lands."""

    def __init__(self, engine, options: RenderOptions) -> None:
        self.engine = engine
        self.options = options

    def _history(self, segment: Segment, voice: str | None,
                 previous: SegmentTake | None) -> VoicePrompt | None:
        opts = self.options
        chain = (
            opts.continuity == "chain"
            and previous is not None
            and previous.voice == voice
            and not (opts.reset_every and segment.index % opts.reset_every == 0)
        )
        if chain:
            return previous.voice_prompt()
        return self.engine.resolve_voice(voice)

    def render(
        self,
        script: Script,
        *,
        on_event: EventCallback = ignore_event,
        on_segment: Callable[[SegmentTake], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Rendered:
        opts = self.options
        if not script.segments:
            from ..errors import BadInputError

            raise BadInputError("the script has nothing to say")
        for seg in script.segments:  # refuse bad text and voices before any generation
            self.engine.check_text(seg.text)
            self.engine.resolve_voice(seg.voice or opts.default_voice)
        if opts.parts_dir is not None:
            opts.parts_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        first_audio: float | None = None
        takes: list[SegmentTake] = []
        previous: SegmentTake | None = None
        for seg in script.segments:
            if cancel is not None and cancel.is_set():
                raise Cancelled("script rendering cancelled")
            voice = seg.voice or opts.default_voice
            history = self._history(seg, voice, previous)
            gen_opts = replace(opts.generation, seed=opts.seed + seg.index)
            take = self._segment(seg, voice, history, gen_opts, on_event, cancel)
            if first_audio is None:
                first_audio = time.perf_counter() - start
            takes.append(take)
            previous = take
            if on_segment is not None:
                on_segment(take)
        audio = join_segments([t.audio for t in takes],
                              [t.segment.pause_before_s for t in takes], SAMPLE_RATE, FADE_S)
        return Rendered(audio, SAMPLE_RATE, tuple(takes), first_audio or 0.0,
                        time.perf_counter() - start)

    def _segment(self, seg: Segment, voice: str | None, history: VoicePrompt | None,
                 gen_opts: GenerationOptions, on_event: EventCallback,
                 cancel: threading.Event | None) -> SegmentTake:
        parts_dir = self.options.parts_dir
        path = None
        if parts_dir is not None:
            key = segment_key(seg, voice, history, gen_opts, self.engine.model_id)
            path = _part_path(parts_dir, seg.index, key)
            saved = _load_part(path) if path.exists() else None
            if saved is not None:
                return SegmentTake(seg, gen_opts.seed, voice, saved["semantic_prompt"],
                                   saved["coarse_prompt"], saved["fine_prompt"], saved["audio"],
                                   reused=True, seconds=0.0)
        t0 = time.perf_counter()
        gen = self.engine.generate(seg.text, voice=history, options=gen_opts,
                                   on_event=on_event, cancel=cancel, segment=seg.index)
        take = SegmentTake(seg, gen.seed, voice, gen.semantic, gen.coarse, gen.fine, gen.audio,
                           reused=False, seconds=time.perf_counter() - t0)
        if path is not None:
            _save_part(path, take)
        return take
