"""Long scripts: render a parsed script in batches of segments and stitch the audio.

Each segment is one row of `Engine.generate_batch` with its own seed (the
script's seed + its index, unless `RenderOptions.seeds` says otherwise), so a
segment's tokens are the same in any batch and it can be re-made alone and
the whole re-stitched. With a parts folder every finished segment is saved
(atomically) under a key of everything that determines it; a rerun after an
interruption reuses those files instead of generating again.

What can share a batch: in fixed-voice mode every segment is independent, so
segments go `batch` at a time in script order (segment 1 is in the first
batch, alone by default (`first_batch`), so the first audio comes as soon as at
batch 1).
In chain mode each segment is the
next one's history; a chain restarts at every voice change and `reset_every`
boundary, and those chains are independent: their k-th segments batch
together, chain after chain joining as others finish.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from bark_engine.scripts.script import Script, Segment

from ..audio import join_segments
from ..config import SAMPLE_RATE
from ..errors import BadInputError, Cancelled
from ..events import EventCallback, ignore_event
from ..files import atomic_write
from ..options import GenerationOptions, Request
from ..voices.catalog import VoicePrompt

Continuity = Literal["fixed", "chain"]
FADE_S = 0.01  # fade at every segment edge: no clicks at the joins


@dataclass(frozen=True)
class RenderOptions:
    """How a script becomes one take."""

    generation: GenerationOptions = GenerationOptions()
    seed: int = 0  # segment i uses seed + i ...
    seeds: Mapping[int, int] = field(default_factory=dict)  # ... unless it is listed here
    default_voice: str | None = None  # for segments whose voice is None
    continuity: Continuity = "fixed"  # "chain": each segment is the next one's history
    reset_every: int | None = None  # chain mode: back to the preset every N segments
    parts_dir: Path | None = None  # where finished segments are kept (resumable)
    batch: int | None = None  # segments per batch; None: the engine's default for its device
    # Segments of the first batch (None: `batch`). 1 (the default) puts segment 1 alone in
    # it, so its audio comes as soon as at batch 1, at the cost of at most one more batch.
    first_batch: int | None = 1

    def seed_of(self, segment: Segment) -> int:
        return self.seeds.get(segment.index, self.seed + segment.index)


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
    seconds: float  # wall time of the batch that made it (0 when reused)
    chained: bool = False  # made with the previous segment as its history
    file: Path | None = None  # where its part is kept (``parts_dir`` given), else None

    def voice_prompt(self) -> VoicePrompt:
        return VoicePrompt(semantic=self.semantic, coarse=self.coarse, fine=self.fine)


@dataclass(frozen=True)
class Rendered:
    audio: np.ndarray  # the whole script, float32 at sample_rate
    sample_rate: int
    segments: tuple[SegmentTake, ...]
    first_audio_s: float  # wall time until the first segment's audio existed
    total_s: float
    batch: int = 1  # segments per batch it ran with

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


def part_path(parts_dir: Path, index: int, key: str) -> Path:
    return parts_dir / f"segment-{index:04d}-{key}.npz"


PART_ARRAYS = ("semantic_prompt", "coarse_prompt", "fine_prompt", "audio")


def write_part(path: Path, semantic, coarse, fine, audio) -> None:
    """One segment's file, atomically: its three token arrays and its float32 audio
    (the format of every segment file, the renderer's and a re-made one alike)."""
    with atomic_write(path) as fh:
        np.savez(fh, semantic_prompt=np.asarray(semantic), coarse_prompt=np.asarray(coarse),
                 fine_prompt=np.asarray(fine), audio=np.asarray(audio, dtype=np.float32))


def read_part(path: Path) -> dict[str, np.ndarray]:
    """A segment file's arrays (OSError, ValueError or KeyError when it does not read)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in PART_ARRAYS}


def save_part(path: Path, take: SegmentTake) -> None:
    write_part(path, take.semantic, take.coarse, take.fine, take.audio)


def load_part(path: Path) -> dict[str, np.ndarray] | None:
    """A saved segment, or None when it is missing or unreadable (then it is re-made)."""
    try:
        return read_part(path)
    except (OSError, ValueError, KeyError):
        return None


def chains(script: Script, options: RenderOptions) -> list[list[Segment]]:
    """The script's segments in groups that must run in order, one after another:
    one group per segment in fixed mode; in chain mode a group ends at every
    voice change and every `reset_every` boundary."""
    groups: list[list[Segment]] = []
    previous_voice: object = object()
    for seg in script.segments:
        voice = seg.voice or options.default_voice
        joins = (options.continuity == "chain" and groups and voice == previous_voice
                 and not (options.reset_every and seg.index % options.reset_every == 0))
        if joins:
            groups[-1].append(seg)
        else:
            groups.append([seg])
        previous_voice = voice
    return groups


@dataclass
class Pending:
    """A segment ready to be made: what its row of the batch needs."""

    segment: Segment
    voice: str | None
    history: VoicePrompt | None
    chained: bool
    options: GenerationOptions  # with its seed
    path: Path | None  # where its part is kept, if anywhere


class InOrder:
    """Finished segments in, released in script order: `on_segment` hears each one as
    soon as it and every segment before it are done. Keeps the time to first audio."""

    def __init__(self, script: Script,
                 on_segment: Callable[[SegmentTake], None] | None = None) -> None:
        self.script = script
        self.on_segment = on_segment
        self.done: dict[int, SegmentTake] = {}
        self.released = 0
        self.start = time.perf_counter()
        self.first_audio: float | None = None

    def finish(self, take: SegmentTake) -> None:
        segments = self.script.segments
        self.done[take.segment.index] = take
        if self.first_audio is None and take.segment.index == segments[0].index:
            self.first_audio = time.perf_counter() - self.start
        while self.released < len(segments) and segments[self.released].index in self.done:
            if self.on_segment is not None:
                self.on_segment(self.done[segments[self.released].index])
            self.released += 1

    def rendered(self, batch: int) -> Rendered:
        """The whole script stitched: each segment's pause before it, faded joins."""
        takes = tuple(self.done[seg.index] for seg in self.script.segments)
        audio = join_segments([t.audio for t in takes],
                              [t.segment.pause_before_s for t in takes], SAMPLE_RATE, FADE_S)
        return Rendered(audio, SAMPLE_RATE, takes, self.first_audio or 0.0,
                        time.perf_counter() - self.start, batch)


class ScriptRenderer:
    """Renders a `Script` with an engine in batches; reports each finished segment
    in script order as soon as it and every segment before it are done."""

    def __init__(self, engine, options: RenderOptions, *, model_id: str | None = None) -> None:
        self.engine = engine
        self.options = options
        # What keys the kept parts: the engine's own model id unless the segments are
        # made elsewhere (a cluster's workers, whose id is theirs).
        self._model_id = model_id

    @property
    def batch(self) -> int:
        return self.options.batch or self.engine.default_batch

    @property
    def model_id(self) -> str:
        return self._model_id if self._model_id is not None else self.engine.model_id

    def check(self, script: Script) -> None:
        """Refuse bad text and voices before any generation (and make the parts folder)."""
        if not script.segments:
            raise BadInputError("the script has nothing to say")
        for seg in script.segments:
            self.engine.check_text(seg.text)
            self.engine.resolve_voice(seg.voice or self.options.default_voice)
        if self.options.parts_dir is not None:
            self.options.parts_dir.mkdir(parents=True, exist_ok=True)

    def kept(self, pending: Pending) -> SegmentTake | None:
        """The segment from its kept part, or None when it has to be made."""
        saved = load_part(pending.path) if pending.path and pending.path.exists() else None
        return None if saved is None else self.take(pending, saved, reused=True, seconds=0.0)

    def render(
        self,
        script: Script,
        *,
        on_event: EventCallback = ignore_event,
        on_segment: Callable[[SegmentTake], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Rendered:
        opts = self.options
        self.check(script)
        order = InOrder(script, on_segment)
        done, finish = order.done, order.finish

        waiting = chains(script, opts)  # groups not started, in script order
        running: list[tuple[list[Segment], int]] = []  # (group, position of its next segment)
        room = opts.first_batch or self.batch
        while waiting or running:
            while waiting and len(running) < room:
                running.append((waiting.pop(0), 0))
            if cancel is not None and cancel.is_set():
                raise Cancelled("script rendering cancelled")
            batch: list[Pending] = []
            for i, (group, k) in enumerate(running):
                # Kept segments are read, not made: move this group on until one is to make.
                while k < len(group):
                    previous = done.get(group[k - 1].index) if k else None
                    pending = self.pending(group[k], previous)
                    kept = self.kept(pending)
                    if kept is None:
                        batch.append(pending)
                        break
                    finish(kept)
                    k += 1
                running[i] = (group, k)
            running = [(g, k) for g, k in running if k < len(g)]
            if batch:
                for take in self._make(batch, on_event, cancel):
                    finish(take)
                running = [(g, k + 1) for g, k in running]
                room = self.batch
            running = [(g, k) for g, k in running if k < len(g)]
        return order.rendered(self.batch)

    def pending(self, seg: Segment, previous: SegmentTake | None) -> Pending:
        """What the segment's row needs: its voice, history (the previous segment's
        take when chained), options and the file its part is kept in."""
        opts = self.options
        voice = seg.voice or opts.default_voice
        chained = previous is not None  # chains() put it after the segment it continues
        history = previous.voice_prompt() if chained else self.engine.resolve_voice(voice)
        gen_opts = replace(opts.generation, seed=opts.seed_of(seg))
        path = None
        if opts.parts_dir is not None:
            key = segment_key(seg, voice, history, gen_opts, self.model_id)
            path = part_path(opts.parts_dir, seg.index, key)
        return Pending(seg, voice, history, chained, gen_opts, path)

    @staticmethod
    def take(p: Pending, arrays: dict[str, np.ndarray], reused: bool,
              seconds: float) -> SegmentTake:
        return SegmentTake(p.segment, p.options.seed, p.voice, arrays["semantic_prompt"],
                           arrays["coarse_prompt"], arrays["fine_prompt"], arrays["audio"],
                           reused=reused, seconds=seconds, chained=p.chained, file=p.path)

    def _make(self, batch: list[Pending], on_event: EventCallback,
              cancel: threading.Event | None) -> list[SegmentTake]:
        """The batch's segments made as one batch of rows, each part saved as it is kept."""
        t0 = time.perf_counter()
        gens = self.engine.generate_batch(
            [Request(p.segment.text, p.history, p.options, p.segment.index) for p in batch],
            on_event=on_event, cancel=cancel)
        seconds = time.perf_counter() - t0
        return [self.made(p, {"semantic_prompt": gen.semantic, "coarse_prompt": gen.coarse,
                              "fine_prompt": gen.fine, "audio": gen.audio}, seconds)
                for p, gen in zip(batch, gens, strict=True)]

    def made(self, p: Pending, arrays: dict[str, np.ndarray], seconds: float) -> SegmentTake:
        """A segment just made (here or elsewhere): its part saved, atomically, first."""
        take = self.take(p, arrays, reused=False, seconds=seconds)
        if p.path is not None:
            save_part(p.path, take)
        return take
