"""Unsent jobs as JSON-ready records, so the session can put the queue back after a restart.

Every kind of job the queue holds has a record: a take (``kind`` "take", the
default of records older than the kinds), several takes ("takes", with their
seeds), a script ("script": its text, voice and base seed; the script is parsed
again at the next start), a script take rendered again ("rescript") and one
segment re-made ("remake"), both by the take they name. A record this version
cannot read is dropped, never guessed at.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bark_engine.options import GenerationOptions

from ...core.job import Job
from .script import RemakeJob, ScriptJob
from .takes import TakesJob


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
        record.update(kind="script", free_seed=job.free_seed,
                      options=dataclasses.asdict(dataclasses.replace(job.options, seed=job.seed)))
    return record


def plain_fields(record: dict[str, Any]) -> tuple[str, str | None, GenerationOptions, str] | None:
    """(text, voice, options, voice label) of a record, or None if they do not read."""
    voice, label, options = record.get("voice"), record.get("voice_label"), record.get("options")
    if not isinstance(record.get("text"), str) or not isinstance(options, dict) \
            or not (voice is None or isinstance(voice, str)):
        return None
    try:
        parsed = GenerationOptions.from_mapping(options)
    except (TypeError, ValueError):
        return None
    return record["text"], voice, parsed, label if isinstance(label, str) else "no voice"


def job_from_record(record: dict[str, Any], size: str, device: str, id: int) -> Job | None:
    """The take or several-takes job `job_record` wrote, or None for a record this version
    cannot read (script kinds are built by the app, which parses scripts and finds takes)."""
    fields = plain_fields(record)
    kind = record.get("kind", "take")
    if fields is None or kind not in ("take", "takes"):
        return None
    text, voice, options, label = fields
    if kind == "takes":
        seeds = record.get("seeds")
        if not isinstance(seeds, list) or not seeds or \
                not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            return None
        return TakesJob(text, voice, options, label, size, device, id=id, seeds=seeds)
    regenerates = record.get("regenerates")
    return Job(text, voice, options, label, size, device,
               regenerates=regenerates if isinstance(regenerates, int) else None, id=id)
