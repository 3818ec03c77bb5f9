"""What a service job does with the engine: rows, or a whole script.

The two kinds of work a request can become, independent of HTTP:

- `RowsWork`: 1..16 takes as one `Engine.generate_batch` (several takes of a
  text, or the rows a remote studio asks for); every row is a segment of the
  job, in order, at once when the batch ends.
- `ScriptWork`: a text or script cut into segments exactly as `render` cuts it,
  rendered by the same `ScriptRenderer`; each segment is reported as soon as
  it and those before it exist, so audio can stream while the rest is made.

Voices on the server are never file paths: `ServerVoices` resolves a preset, a
My-voices name in the server's folder, or a voice the request sent inline.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from bark_engine.config import MAX_BATCH, SAMPLE_RATE
from bark_engine.errors import BadInputError, VoiceError
from bark_engine.events import EventCallback
from bark_engine.options import GenerationOptions, Request
from bark_engine.voices.catalog import check_name_safe
from bark_engine.voices.prompts import VoicePrompt

from .config import MAX_INPUT_CHARS
from .wire import options_from_wire, positive_int, seed_from_wire, voice_from_wire


@dataclass(frozen=True)
class SegmentResult:
    """One finished segment (or take) of a job."""

    index: int
    text: str
    voice: str | None
    seed: int
    audio: np.ndarray  # (N,) float32 at SAMPLE_RATE, as the engine made it
    semantic: np.ndarray  # (T,) int64
    coarse: np.ndarray  # (2, T') int64
    fine: np.ndarray  # (8, T') int64
    seconds: float  # wall time of the batch that made it
    pause_before_s: float = 0.0  # silence before it in the joined audio
    start_s: float = 0.0  # where its audio starts in the joined audio, after its pause
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # its own, per stage

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class WorkResult:
    """What a job leaves besides its segments."""

    audio: np.ndarray | None  # the joined audio of a script; None for rows
    timings: dict[str, dict[str, float]] = field(default_factory=dict)


class Work(Protocol):
    """A job's task: run on the engine thread, report segments as they finish.

    Work that is a single batch of rows also says which (`batch_rows`), so the
    board can put the rows of several waiting jobs into one engine batch; rows
    are batch-invariant, so each job gets exactly what it would alone.
    """

    kind: str

    def run(self, engine: Any, on_event: EventCallback,
            on_segment: Callable[[SegmentResult], None],
            cancel: threading.Event) -> WorkResult: ...

    def batch_rows(self, engine: Any) -> list[Request] | None: ...

    def finish_rows(self, gens: list, seconds: float,
                    on_segment: Callable[[SegmentResult], None]) -> WorkResult: ...


def _run_rows(work: Work, engine: Any, on_event: EventCallback,
              on_segment: Callable[[SegmentResult], None], cancel: threading.Event,
              rows: list[Request]) -> WorkResult:
    """Work that is one batch, run alone."""
    t0 = time.perf_counter()
    gens = engine.generate_batch(rows, on_event=on_event, cancel=cancel)
    return work.finish_rows(gens, time.perf_counter() - t0, on_segment)


class ServerVoices:
    """A job's voices: names the server knows (never a path) and the inline ones."""

    def __init__(self, engine: Any, inline: Mapping[str, VoicePrompt] | None = None) -> None:
        self.engine = engine
        self.inline = dict(inline or {})

    def resolve(self, voice: str | VoicePrompt | None) -> VoicePrompt | None:
        if voice is None or isinstance(voice, VoicePrompt):
            return voice
        if voice in self.inline:
            return self.inline[voice]
        name = check_name_safe(str(voice))
        if name.lower().endswith(".npz"):
            raise VoiceError(f"voice {name!r}: the server reads no voice files by path; send "
                             "the voice inline ({\"npz\": base64}) or use a preset")
        return self.engine.resolve_voice(name)


class _JobEngine:
    """The engine as one job sees it: the same engine, with the job's safe voices."""

    def __init__(self, engine: Any, voices: ServerVoices) -> None:
        self._engine = engine
        self._voices = voices

    def resolve_voice(self, voice):
        return self._voices.resolve(voice)

    def __getattr__(self, name: str):
        return getattr(self._engine, name)


def voice_label(voice: Any, inline: Mapping[str, VoicePrompt]) -> str | None:
    """How a segment names its voice: the name asked for; a voice sent inline by its
    own name (the job's internal key never leaves the server)."""
    if isinstance(voice, str) and voice in inline:
        return inline[voice].name or "inline voice"
    if isinstance(voice, VoicePrompt):
        return voice.name or "inline voice"
    return voice


def _timings(gen) -> dict[str, dict[str, float]]:
    return {stage: {"tokens": t.tokens, "seconds": round(t.seconds, 4)}
            for stage, t in gen.timings.items()}


@dataclass
class RowsWork:
    """Takes or rows: each request one row of a single batch."""

    requests: list[Request]
    inline: dict[str, VoicePrompt] = field(default_factory=dict)
    kind: str = "rows"

    def __post_init__(self) -> None:
        if not 1 <= len(self.requests) <= MAX_BATCH:
            raise BadInputError(f"a job holds 1..{MAX_BATCH} rows, got {len(self.requests)}")

    @classmethod
    def takes(cls, text: str, voice: str | None, options: GenerationOptions, seeds: list[int],
              inline: dict[str, VoicePrompt] | None = None) -> RowsWork:
        return cls([Request(text, voice, replace(options, seed=s)) for s in seeds],
                   dict(inline or {}))

    def check(self, engine: Any) -> None:
        """Text and voices refused before the job queues (a 400, not a failed job)."""
        voices = ServerVoices(engine, self.inline)
        for r in self.requests:
            engine.check_text(r.text)
            voices.resolve(r.voice)

    def batch_rows(self, engine) -> list[Request]:
        voices = ServerVoices(engine, self.inline)
        rows = []
        for r in self.requests:
            prompt = voices.resolve(r.voice)
            if prompt is not None and isinstance(r.voice, str):
                prompt = prompt.with_name(r.voice)  # the take records the name it was asked by
            rows.append(replace(r, voice=prompt))
        return rows

    def finish_rows(self, gens, seconds, on_segment) -> WorkResult:
        for i, (r, gen) in enumerate(zip(self.requests, gens, strict=True)):
            on_segment(SegmentResult(
                index=i, text=r.text, voice=voice_label(r.voice, self.inline), seed=gen.seed,
                audio=gen.audio, semantic=gen.semantic, coarse=gen.coarse, fine=gen.fine,
                seconds=seconds, timings=_timings(gen)))
        return WorkResult(audio=None, timings=_timings(gens[0]))

    def run(self, engine, on_event, on_segment, cancel) -> WorkResult:
        return _run_rows(self, engine, on_event, on_segment, cancel, self.batch_rows(engine))


@dataclass
class ScriptWork:
    """A text or script, cut and rendered as `bark-tui render` does."""

    text: str
    voice: str | None = None
    speakers: dict[str, str] = field(default_factory=dict)
    options: GenerationOptions = GenerationOptions()
    seed: int = 0
    chain: bool = False
    reset_every: int | None = None
    batch: int | None = None
    inline: dict[str, VoicePrompt] = field(default_factory=dict)
    normalize: bool = True  # numbers and symbols read aloud in the voice's language
    kind: str = "script"
    _script: Any = None

    def script(self, engine: Any):
        from bark_engine.scripts.parse import parse_script
        from bark_engine.scripts.script import ScriptOptions

        if self._script is None:
            from ..text.rewrite import Rewriter

            rewrite = Rewriter() if self.normalize else None
            self._script = parse_script(
                self.text, ScriptOptions(speakers=self.speakers, default_voice=self.voice,
                                         rewrite=rewrite),
                count_tokens=engine.count_tokens)
            if not self._script.segments:
                raise BadInputError("the input has nothing to say")
        return self._script

    def check(self, engine: Any) -> None:
        voices = ServerVoices(engine, self.inline)
        for seg in self.script(engine).segments:
            engine.check_text(seg.text)
            voices.resolve(seg.voice or self.voice)

    def batch_rows(self, engine) -> list[Request] | None:
        """A script of one segment is one row (most speech requests); longer ones
        run alone, batching their own segments."""
        segments = self.script(engine).segments
        if len(segments) != 1:
            return None
        seg = segments[0]
        voice = seg.voice or self.voice
        prompt = ServerVoices(engine, self.inline).resolve(voice)
        return [Request(seg.text, prompt, replace(self.options, seed=self.seed + seg.index),
                        seg.index)]

    def finish_rows(self, gens, seconds, on_segment) -> WorkResult:
        """The one segment as `ScriptRenderer` would have made and joined it."""
        from bark_engine.audio import join_segments
        from bark_engine.scripts.render import FADE_S

        (seg,), (gen,) = self._script.segments, gens  # parsed by batch_rows
        on_segment(SegmentResult(
            index=seg.index, text=seg.text, voice=voice_label(seg.voice or self.voice,
                                                              self.inline),
            seed=gen.seed, audio=gen.audio, semantic=gen.semantic, coarse=gen.coarse,
            fine=gen.fine, seconds=seconds, pause_before_s=seg.pause_before_s,
            start_s=seg.pause_before_s, timings=_timings(gen)))
        audio = join_segments([gen.audio], [seg.pause_before_s], SAMPLE_RATE, FADE_S)
        return WorkResult(audio=audio, timings=_timings(gen))

    def run(self, engine, on_event, on_segment, cancel) -> WorkResult:
        from bark_engine.scripts.render import RenderOptions, ScriptRenderer

        rows = self.batch_rows(engine)
        if rows is not None:
            return _run_rows(self, engine, on_event, on_segment, cancel, rows)
        script = self.script(engine)
        start = [0.0]

        def segment_done(take) -> None:
            seg = take.segment
            start[0] += seg.pause_before_s
            on_segment(SegmentResult(
                index=seg.index, text=seg.text, voice=voice_label(take.voice, self.inline),
                seed=take.seed,
                audio=take.audio, semantic=take.semantic, coarse=take.coarse, fine=take.fine,
                seconds=take.seconds, pause_before_s=seg.pause_before_s, start_s=start[0]))
            start[0] += len(take.audio) / SAMPLE_RATE

        renderer = ScriptRenderer(_JobEngine(engine, ServerVoices(engine, self.inline)),
                                  RenderOptions(generation=self.options, seed=self.seed,
                                                default_voice=self.voice,
                                                continuity="chain" if self.chain else "fixed",
                                                reset_every=self.reset_every, batch=self.batch))
        rendered = renderer.render(script, on_event=on_event, on_segment=segment_done,
                                   cancel=cancel)
        return WorkResult(audio=rendered.audio)


def work_from_body(body: Any) -> RowsWork | ScriptWork:
    """A job request: `rows` (1..16 of {text, voice, options}), or `text`/`script`
    with `voice`, `speakers`, `options`, `seed`, and `takes` N (one batch of N takes
    of a short text) or the script settings (`chain`, `reset_every`, `batch`)."""
    if not isinstance(body, dict):
        raise BadInputError("the request body must be a JSON object")
    inline: dict[str, VoicePrompt] = {}

    def voice(value: Any, label: str) -> str | None:
        v = voice_from_wire(value, label)
        if isinstance(v, VoicePrompt):
            key = f"@inline-{len(inline)}"
            inline[key] = v
            return key
        return v

    options = options_from_wire(body.get("options"))
    if body.get("long_form"):
        options = options.with_long_form()
    if "rows" in body:
        rows = body["rows"]
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH:
            raise BadInputError(f"rows must be a list of 1..{MAX_BATCH} objects")
        requests = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise BadInputError(f"rows[{i}] needs a text")
            seg = row.get("segment", 0)
            if isinstance(seg, bool) or not isinstance(seg, int) or seg < 0:
                raise BadInputError(f"rows[{i}].segment must be an integer ≥ 0")
            requests.append(Request(row["text"], voice(row.get("voice"), f"rows[{i}].voice"),
                                       options_from_wire(row.get("options"), options), seg))
        return RowsWork(requests, inline)
    text = body.get("script", body.get("text"))
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("give a text, a script or rows")
    if len(text) > MAX_INPUT_CHARS:
        raise BadInputError(f"the text is {len(text)} characters; at most {MAX_INPUT_CHARS}")
    seed = seed_from_wire(body.get("seed"))
    if seed is None:
        seed = secrets.randbelow(2**31)
    default_voice = voice(body.get("voice"), "voice")
    takes = body.get("takes", 1)
    if isinstance(takes, bool) or not isinstance(takes, int) or not 1 <= takes <= MAX_BATCH:
        raise BadInputError(f"takes must be 1..{MAX_BATCH}")
    if takes > 1:
        return RowsWork.takes(text, default_voice, options, [seed + i for i in range(takes)],
                              inline)
    speakers = body.get("speakers") or {}
    if not isinstance(speakers, dict):
        raise BadInputError("speakers must map names to voices")
    speaker_voices = {str(k): voice(v, f"speakers.{k}") for k, v in speakers.items()}

    return ScriptWork(text=text, voice=default_voice, speakers=speaker_voices, options=options,
                      seed=seed, chain=bool(body.get("chain")),
                      reset_every=positive_int(body, "reset_every"), batch=positive_int(body, "batch"),
                      inline=inline, normalize=_flag(body, "normalize", True))


def _flag(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadInputError(f"{name} must be true or false")
    return value
