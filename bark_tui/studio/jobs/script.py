"""Script jobs in the studio: render segment by segment, re-make one.

A script that cuts into more than one segment (or switches voices) is
rendered with the engine's :class:`~bark_engine.scripts.render.ScriptRenderer` in a
worker (the text is read as a script by ``core.script_text``). Each finished
segment is posted to the app at once (so it can play while later segments are
made); the renderer keeps its tokens and audio as one ``.npz`` in a parts folder
inside the takes folder, and that file is the segment file of the take. The
take's ``segments`` JSON lists every segment's text, voice, seed, pause and file,
which is what lets :func:`run_remake_job` re-make one segment and re-stitch the
take's WAV without touching the others.

No widget is touched here: workers talk through ``post`` like ``take``.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bark_engine.config import SAMPLE_RATE
from bark_engine.events import StageStarted
from bark_engine.scripts.render import RenderOptions, ScriptRenderer

from ...core.job import Job
from ...core.script_parts import (  # the segment files (callers import them from here too)
    load_segment,
    parts_dir_for,
    save_segment,
    segment_record,
    stitch,
)
from ..messages import ScriptResumed, SegmentReady, SegmentStarted
from .bridge import EventBridge, Post
from .host import EngineHost

# --- jobs and messages -----------------------------------------------------------------


@dataclass
class ScriptJob(Job):
    """A whole script as one take: rendered segment by segment."""

    script: Any = None  # bark_engine.scripts.script.Script, voices resolved to presets or files
    seed: int = 0  # segment i uses seed + i
    continuity: str = "fixed"
    reset_every: int | None = None
    play_while_generating: bool = True
    started_at: float = field(default_factory=time.monotonic)
    seeds: dict[int, int] | None = None  # segments whose seed is not seed + i (re-made ones)
    resume_key: str = ""  # script_resume.fingerprint: a cancelled render of the same goes on
    free_seed: bool = False  # the seed was drawn at random: a resumed render may replace it
    batch: int | None = None  # segments made at once; None = the engine's default
    ray: str | None = None  # made by Ray workers there (Settings → Ray cluster); None = here
    ray_workers: tuple[int, int] = (0, 0)  # (ready, started): the panel's title says

    @property
    def count(self) -> int:
        return len(self.script.segments)


# --- workers -------------------------------------------------------------------------


class _ScriptEvents:
    """The stage bridge, plus a message when a new segment's first stage starts."""

    def __init__(self, post: Post, job: ScriptJob) -> None:
        self.bridge = EventBridge(post, job.id)
        self.post, self.job = post, job

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageStarted) and event.stage == "semantic":
            self.post(SegmentStarted(self.job.id, event.segment, self.job.count,
                                     event.segments))
        self.bridge(event)


def run_script_job(host: EngineHost, job: ScriptJob, post: Post, store: Any) -> None:
    """Render the script, post each segment as it lands, store one take with its segments.

    A cancel after some segments keeps them for the next render of the same
    script (``script_resume``); any other ending leaves no files behind.
    """
    from bark_engine.errors import BarkError, Cancelled

    from ...core import script_resume
    from ...history import NewTake
    from ..messages import JobEnded, JobOutcome, JobStarted
    from .take import failed_outcome, generation_thread_name, ready_engine

    thread = threading.current_thread()
    pool_name, thread.name = thread.name, generation_thread_name(job)
    post(JobStarted(job))
    events = _ScriptEvents(post, job)
    parts: Path | None = None
    records: list[dict[str, Any]] = []
    seed = job.seed
    try:
        if store is None:
            raise BarkError("the history is unavailable, so the take could not be kept")
        engine = None if job.ray else ready_engine(host, job, post, events.bridge)
        takes_dir = Path(store.takes_dir)
        found = script_resume.find(takes_dir, job.resume_key, None if job.free_seed else seed)
        if found is not None:
            script_resume.claim(takes_dir, found)
            parts_name, seed = found.parts, found.seed
            post(ScriptResumed(job.id, found.done, found.count, seed))
        else:
            parts_name = f"script-{uuid.uuid4().hex}.parts"
        parts = takes_dir / parts_name
        parts.mkdir(parents=True, exist_ok=True)

        def landed(take) -> None:
            # the renderer kept the segment's part in the take's folder: that file is the
            # segment file the take names (written once, and what a resumed render reuses)
            seg = take.segment
            file = take.file.name
            records.append(segment_record(seg, take.seed, file, parts_name, len(take.audio),
                                          "chain" if take.chained else "voice", take.seconds))
            post(SegmentReady(job.id, seg.index, job.count, take.audio, SAMPLE_RATE,
                              seg.pause_before_s))

        options = RenderOptions(
            generation=job.options, seed=seed, seeds=job.seeds or {}, default_voice=job.voice,
            continuity=job.continuity, reset_every=job.reset_every,  # type: ignore[arg-type]
            parts_dir=parts, batch=job.batch,
            first_batch=1 if job.play_while_generating else None)
        if engine is None:
            from .script_ray import render_on_ray

            rendered, model_id, random_weights = render_on_ray(
                host, job, options, post, events, landed)
        else:
            rendered = ScriptRenderer(engine, options).render(
                job.script, on_event=events, on_segment=landed, cancel=job.cancel)
            model_id, random_weights = engine.model_id, bool(engine.random_weights)
        new = NewTake(text=job.text, voice=job.voice, seed=seed,
                      options=replace(job.options, seed=seed), model_id=model_id,
                      random_weights=random_weights, sample_rate=SAMPLE_RATE,
                      timings={"first_audio_s": round(rendered.first_audio_s, 4),
                               "total_s": round(rendered.total_s, 4),
                               "continuity": job.continuity, "reset_every": job.reset_every},
                      segments=records)
        take = store.add_take(new, rendered.audio, None)
        stored, parts = parts, None  # the take owns its segment files from here on
        with contextlib.suppress(OSError):  # leftovers only; the take is stored and whole
            script_resume.finish(stored, [r["file"] for r in records])
    except Cancelled:
        kept = _keep_or_drop(parts, records, job, seed)
        post(JobEnded(JobOutcome(job, cancelled=True, kept=kept)))
    except BarkError as exc:
        kept = _keep_or_drop(parts, records, job, seed)
        post(JobEnded(JobOutcome(job, error=str(exc), kept=kept)))
    except Exception as exc:  # noqa: BLE001 - a failed save, or the error modal
        kept = _keep_or_drop(parts, records, job, seed)
        post(JobEnded(failed_outcome(job, exc, kept)))
    else:
        post(JobEnded(JobOutcome(job, take=take, audio=rendered.audio)))
    finally:
        thread.name = pool_name


def _keep_or_drop(parts: Path | None, records: list, job: ScriptJob, seed: int) -> int:
    """After a render stopped early (cancel or failure): keep its finished
    segments for the next render of the same script, or leave nothing behind.
    Returns how many were kept."""
    from ...core import script_resume

    if parts is None or not records:
        _drop(parts)
        return 0
    try:
        script_resume.keep(parts, job.resume_key, seed, len(records), job.count)
    except OSError:  # the disk that failed the render may fail this too
        _drop(parts)
        return 0
    return len(records)


def _drop(parts: Path | None) -> None:
    """A take that was not kept leaves no segment files behind."""
    if parts is not None and parts.is_dir():
        shutil.rmtree(parts, ignore_errors=True)


def regenerate_segment(engine: Any, store: Any, take: Any, index: int, seed: int,
                       cancel: threading.Event | None = None, on_event: Any = None) -> Any:
    """Re-make segment ``index`` of a script take with ``seed``; re-stitch its WAV.

    The other segments' files are read, never written. The new segment file is
    written first, then the WAV (atomically), then the row; the old segment
    file goes last, so a failure at any step leaves a playable take.
    """
    from bark_engine.audio import write_wav
    from bark_engine.errors import BadInputError

    records = [dict(r) for r in take.segments or []]
    folder = parts_dir_for(take)
    if folder is None or not 0 <= index < len(records):
        raise BadInputError(f"take {take.id} has no segment {index + 1}")
    rec = records[index]
    history = None
    if rec.get("history") == "chain" and index > 0:
        prev = load_segment(folder / records[index - 1]["file"])
        from bark_engine.voices.catalog import VoicePrompt

        history = VoicePrompt(semantic=prev["semantic_prompt"], coarse=prev["coarse_prompt"],
                              fine=prev["fine_prompt"])
    voice = history if history is not None else rec.get("voice")
    options = replace(take.generation_options(), seed=seed)
    events = {} if on_event is None else {"on_event": on_event}
    gen = engine.generate(rec["text"], voice=voice, options=options, cancel=cancel,
                          segment=index, **events)
    old_file = rec["file"]
    rec["file"] = save_segment(folder, index, seed, gen.semantic, gen.coarse, gen.fine, gen.audio)
    rec["seed"] = seed
    rec["duration_s"] = len(gen.audio) / SAMPLE_RATE
    records[index] = rec
    audio = stitch(folder, records)
    write_wav(take.wav_path, audio, take.sample_rate)
    updated = store.update_segments(take.id, records, len(audio) / take.sample_rate)
    if old_file != rec["file"]:
        (folder / old_file).unlink(missing_ok=True)
    return updated


@dataclass
class RemakeJob(Job):
    """Re-make segment ``index`` of the script take ``take`` with ``options.seed``: a job
    in the queue like any take, so it shows its stages and esc cancels it."""

    take: Any = None  # history.Take with segments
    index: int = 0

    @property
    def doing(self) -> str:
        return (f"Re-making segment {self.index + 1} of take {self.take.id} · seed "
                f"{self.options.seed} · the other segments stay as they are")


def remake_job(take: Any, index: int, seed: int, size: str, device: str, id: int) -> RemakeJob:
    record = (take.segments or [{}])[index] if 0 <= index < len(take.segments or []) else {}
    return RemakeJob(record.get("text", take.text), record.get("voice"),
                     replace(take.generation_options(), seed=seed),
                     f"segment {index + 1} of take {take.id}", size, device, id=id,
                     take=take, index=index)


def run_remake_job(host: EngineHost, job: RemakeJob, post: Post, store: Any) -> None:
    """The worker of a `RemakeJob`: its stages go to the panel, a cancel writes nothing
    (the new segment's files are written only once it is made)."""
    from bark_engine.errors import BarkError, Cancelled

    from ..messages import JobEnded, JobOutcome, JobStarted
    from .take import failed_outcome, ready_engine

    post(JobStarted(job))
    bridge = EventBridge(post, job.id)
    try:
        engine = ready_engine(host, job, post, bridge)
        seed = job.options.seed
        assert seed is not None  # remake_job always sets one
        updated = regenerate_segment(engine, store, job.take, job.index, seed,
                                     cancel=job.cancel, on_event=bridge)
    except Cancelled:
        post(JobEnded(JobOutcome(job, cancelled=True)))
    except (BarkError, KeyError, ValueError) as exc:
        post(JobEnded(JobOutcome(
            job, error=f"could not re-make segment {job.index + 1} of take {job.take.id}: {exc}")))
    except Exception as exc:  # noqa: BLE001 - a full disk is named; a bug gets the modal
        post(JobEnded(failed_outcome(job, exc)))
    else:
        post(JobEnded(JobOutcome(job, remade=updated)))
