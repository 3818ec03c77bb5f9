"""Unsent jobs as JSON-ready records, so the session can put the queue back after a restart.

A record this version cannot read is dropped, never guessed at.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bark_engine.options import GenerationOptions

from .job import Job


def job_record(job: Job) -> dict[str, Any]:
    """A plain take's job as JSON-ready data (the session keeps unsent takes with it)."""
    return {"text": job.text, "voice": job.voice, "voice_label": job.voice_label,
            "options": dataclasses.asdict(job.options), "regenerates": job.regenerates}


def job_from_record(record: dict[str, Any], size: str, device: str, id: int) -> Job | None:
    """The job `job_record` wrote, or None for a record this version cannot read."""
    voice, label, options = record.get("voice"), record.get("voice_label"), record.get("options")
    regenerates = record.get("regenerates")
    if not isinstance(record.get("text"), str) or not isinstance(options, dict) \
            or not (voice is None or isinstance(voice, str)):
        return None
    return Job(record["text"], voice, GenerationOptions.from_mapping(options),
               label if isinstance(label, str) else "no voice", size, device,
               regenerates=regenerates if isinstance(regenerates, int) else None, id=id)
