"""Cancelled script renders keep their finished segments; the next render goes on from there.

A long script can take many minutes; cancelling one used to throw the
finished segments away. Now a script job renders with the engine's
resumable parts (``RenderOptions.parts_dir``, the same mechanism as
``bark-tui render``) written straight into the job's own folder: each
segment's part is the segment file the take names, written once. When the
job is cancelled after some segments, that folder stays, with a small
``resume/resume.json`` saying which script and settings made it (a
fingerprint) and with which seed. The next render of the same script with the same
settings picks the folder up (and its seed, even in random-seed mode): the
renderer reuses every segment whose inputs match and makes only the rest.
The worker claims a folder (removes its marker) before it renders into it,
so two jobs never share one.

Only the newest :data:`KEEP` cancelled renders are kept; a finished take's
folder is left holding only the segment files the take names (the ``resume/``
marker, a Ray render's manifest and parts of an earlier render go) as soon as the
take is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bark_engine.files import atomic_write

RESUME_DIR = "resume"
MARKER = "resume.json"
KEEP = 3  # cancelled renders kept for resuming (older ones are removed)


@dataclass(frozen=True)
class Resumable:
    """A cancelled render that can go on: its folder (in the takes folder) and what it holds."""

    parts: str  # the folder's name inside the takes folder
    seed: int
    done: int  # segments finished before the cancel
    count: int


def fingerprint(job: Any, model: tuple[object, ...]) -> str:
    """A digest of what decides a script job's segments, except its base seed.

    ``job`` is a ``studio.jobs.script.ScriptJob``; ``model`` the engine's source facts
    (models, size, device[, dtype]). The seed is matched apart, so that a render in
    random-seed mode can adopt the cancelled render's seed.
    """
    segs = [[s.index, s.text, s.voice, s.speaker, s.pause_before_s] for s in job.script.segments]
    facts = {
        "segments": segs, "voice": job.voice, "options": asdict(replace(job.options, seed=None)),
        "continuity": job.continuity, "reset_every": job.reset_every,
        "seeds": sorted((job.seeds or {}).items()), "model": [str(m) for m in model],
    }
    blob = json.dumps(facts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def keep(parts: Path, key: str, seed: int, done: int, count: int) -> None:
    """After a cancel: mark the parts folder (its finished segments) as a render to go on with."""
    marker = {"key": key, "seed": seed, "done": done, "count": count, "saved": time.time()}
    (parts / RESUME_DIR).mkdir(exist_ok=True)
    with atomic_write(parts / RESUME_DIR / MARKER, "w") as f:
        f.write(json.dumps(marker))
    prune(parts.parent)


def _markers(takes_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in takes_dir.glob(f"*.parts/{RESUME_DIR}/{MARKER}"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("key"), str):
                found.append((path, data))
    return sorted(found, key=lambda item: float(item[1].get("saved") or 0), reverse=True)


def find(takes_dir: Path, key: str, seed: int | None) -> Resumable | None:
    """The newest cancelled render with this fingerprint (and this seed, when one is fixed)."""
    if not takes_dir.is_dir():
        return None
    for path, data in _markers(takes_dir):
        try:
            stored = int(data["seed"])
            done, count = int(data.get("done") or 0), int(data.get("count") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        if data["key"] == key and (seed is None or seed == stored):
            return Resumable(path.parent.parent.name, stored, done, count)
    return None


def claim(takes_dir: Path, found: Resumable) -> None:
    """This job renders into ``found`` now: nobody else may pick it up."""
    (takes_dir / found.parts / RESUME_DIR / MARKER).unlink(missing_ok=True)


def prune(takes_dir: Path, keep_count: int = KEEP) -> None:
    """Remove all but the newest ``keep_count`` cancelled renders."""
    for path, _data in _markers(takes_dir)[keep_count:]:
        shutil.rmtree(path.parent.parent, ignore_errors=True)


def finish(parts: Path, files: list[str]) -> None:
    """The take is stored with the segment ``files``: they stay, and the folder holds
    nothing else. The resume marker, a Ray render's manifest and any part no segment of
    the take names (made by an earlier, different render) go."""
    named = set(files)
    for child in parts.iterdir():
        if child.name in named:
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
