"""Unsent jobs as JSON-ready records, so the session can put the queue back after a restart.

Every kind of job the queue holds has a record: a take (``kind`` "take", the
default of records older than the kinds), several takes ("takes", with their
seeds), a script ("script": its parsed segments, voices resolved, and the
render settings it was queued with, so it renders, and resumes, as queued
whatever the settings say now), a script take rendered again ("rescript") and
one segment re-made ("remake"), both by the take they name. Reading is strict:
a record this version cannot read, a value of the wrong type (a boolean where
an id is meant, a string for a temperature) or out of range is dropped, never
guessed at.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from bark_engine.options import GenerationOptions
from bark_engine.scripts.script import Chapter, Script, Segment

from ...core.job import Job
from ...core.script_text import ray_label
from ...core.settings import CONTINUITY_MODES, MAX_SEED
from .script import RemakeJob, ScriptJob
from .takes import MAX_TAKES, MIN_TAKES, TakesJob

NEEDS_TAKE = ("rescript", "remake")  # kinds rebuilt from a take of the history
LAST_SEED = 2**64 - 1  # a derived seed (base + i) torch still takes


def job_record(job: Job) -> dict[str, Any]:
    """``job`` as JSON-ready data (the session keeps unsent jobs with it)."""
    record: dict[str, Any] = {
        "kind": "take", "text": job.text, "voice": job.voice, "voice_label": job.voice_label,
        "options": dataclasses.asdict(job.options), "regenerates": job.regenerates}
    if isinstance(job, TakesJob):
        record.update(kind="takes", seeds=list(job.seeds))
    elif isinstance(job, RemakeJob):
        record.update(kind="remake", take=job.take.id, index=job.index, seed=job.options.seed)
    elif isinstance(job, ScriptJob) and job.regenerates is not None:
        record.update(kind="rescript", take=job.regenerates)
    elif isinstance(job, ScriptJob):
        record.update(kind="script", seed=job.seed, free_seed=job.free_seed,
                      continuity=job.continuity, reset_every=job.reset_every,
                      play_while_generating=job.play_while_generating, batch=job.batch,
                      ray=job.ray, script=dataclasses.asdict(job.script))
    return record


def whole(value: Any, low: int = 0, high: int = MAX_SEED) -> int | None:
    """``value`` if it is an int in [low, high] (a bool is not), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _options(values: Any) -> GenerationOptions | None:
    """Options whose every value has its field's type (finite numbers, a seed in range)."""
    if not isinstance(values, dict):
        return None
    kept: dict[str, Any] = {}
    hints = typing.get_type_hints(GenerationOptions)
    for f in dataclasses.fields(GenerationOptions):
        if f.name not in values:
            continue
        value, kinds = values[f.name], typing.get_args(hints[f.name]) or (hints[f.name],)
        if value is None:
            ok = type(None) in kinds
        elif bool in kinds:
            ok = isinstance(value, bool)
        elif int in kinds:
            ok = whole(value, 0 if f.name == "seed" else 1) is not None
        else:  # a float field takes an int too
            ok = float in kinds and isinstance(value, (int, float)) \
                and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        if not ok:
            return None
        kept[f.name] = value
    return GenerationOptions(**kept)


def plain_fields(record: dict[str, Any]) -> tuple[str, str | None, GenerationOptions, str] | None:
    """(text, voice, options, voice label) of a record, or None if they do not read."""
    voice, label = record.get("voice"), record.get("voice_label")
    options = _options(record.get("options"))
    if not isinstance(record.get("text"), str) or options is None \
            or not (voice is None or isinstance(voice, str)):
        return None
    return record["text"], voice, options, label if isinstance(label, str) else "no voice"


def _script(data: Any) -> Script | None:
    """The parsed script a "script" record carries, or None if it does not read."""
    if not isinstance(data, dict):
        return None
    try:
        segments = tuple(Segment(**s) for s in data["segments"])
        chapters = tuple(Chapter(**c) for c in data.get("chapters") or ())
        script = Script(segments, tuple(data.get("speakers_found") or ()),
                        tuple(data.get("warnings") or ()), chapters, data.get("title"),
                        data.get("author"), bool(data.get("rewritten")))
    except (KeyError, TypeError, ValueError):
        return None
    def text(value: Any) -> bool:
        return value is None or isinstance(value, str)

    def seconds(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and 0 <= value < 3600

    fine = all(whole(s.index) == i and isinstance(s.text, str) and s.text.strip()
               and text(s.voice) and text(s.speaker) and seconds(s.pause_before_s)
               and whole(s.line_no, 1) is not None
               and (s.chapter is None or whole(s.chapter, 0, len(chapters) - 1) is not None)
               for i, s in enumerate(segments))
    fine = fine and all(isinstance(c.title, str) and whole(c.line_no, 1) is not None
                        and (c.first_segment is None
                             or whole(c.first_segment, 0, len(segments) - 1) is not None)
                        for c in chapters)
    lists = (data.get("speakers_found") or [], data.get("warnings") or [])
    fine = fine and all(isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
                        for v in lists) and text(script.title) and text(script.author)
    return script if segments and fine else None


def job_from_record(record: dict[str, Any], size: str, device: str, id: int) -> Job | None:
    """The take, several-takes or script job `job_record` wrote, or None for a record this
    version cannot read (the kinds in `NEEDS_TAKE` are built by the app, which has the
    history). A script job still needs its resume key (the app's engine decides it)."""
    fields = plain_fields(record)
    kind = record.get("kind", "take")
    if fields is None or kind not in ("take", "takes", "script"):
        return None
    text, voice, options, label = fields
    if kind == "takes":
        seeds = record.get("seeds")
        if not isinstance(seeds, list) or not MIN_TAKES <= len(seeds) <= MAX_TAKES \
                or any(whole(s, 0, LAST_SEED) is None for s in seeds):
            return None
        return TakesJob(text, voice, options, label, size, device, id=id, seeds=seeds)
    if kind == "script":
        return _script_job(record, text, voice, options, label, size, device, id)
    regenerates = whole(record.get("regenerates"), 1)
    return Job(text, voice, options, label, size, device, regenerates=regenerates, id=id)


def _script_job(record: dict[str, Any], text: str, voice: str | None,
                options: GenerationOptions, label: str, size: str, device: str,
                id: int) -> ScriptJob | None:
    script, seed = _script(record.get("script")), whole(record.get("seed"))
    continuity, ray = record.get("continuity"), record.get("ray")
    reset_every, batch = record.get("reset_every"), record.get("batch")
    if script is None or seed is None \
            or whole(seed + len(script.segments) - 1, 0, LAST_SEED) is None \
            or continuity not in CONTINUITY_MODES or not (ray is None or isinstance(ray, str)) \
            or not (reset_every is None or whole(reset_every, 1) is not None) \
            or not (batch is None or whole(batch, 1) is not None):
        return None
    return ScriptJob(text, voice, options, label, size, ray_label(ray) or device, id=id,
                     script=script,
                     seed=seed, continuity=continuity, reset_every=reset_every,
                     play_while_generating=record.get("play_while_generating") is not False,
                     free_seed=record.get("free_seed") is True, batch=batch, ray=ray)
