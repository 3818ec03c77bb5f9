"""What the studio was working on when it closed: the script in the editor, the
chosen voice and the takes still waiting in the queue, put back at the next start
(so quitting loses no typing and no queued work).

A small JSON file beside the history, written atomically on quit and read
forgivingly: a missing or broken file is an empty session.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bark_engine.files import atomic_write

MAX_SCRIPT_CHARS = 2_000_000  # a book's text; anything larger is not put back
MAX_QUEUED = 100  # queued takes put back at most (the queue holds fewer; the rest is dropped)


@dataclass(frozen=True)
class Session:
    script: str = ""
    voice: str | None = None  # the voice key the browser had selected
    queued: tuple[dict, ...] = ()  # studio.jobs.records.job_record of each job not done, oldest first


def load_session(path: Path) -> Session:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Session()
    if not isinstance(raw, dict):
        return Session()
    script = raw.get("script")
    voice = raw.get("voice")
    queued = raw.get("queued")
    queued = tuple(item for item in queued if isinstance(item, dict)
                   and isinstance(item.get("text"), str))[:MAX_QUEUED] \
        if isinstance(queued, list) else ()
    return Session(
        script=script if isinstance(script, str) and len(script) <= MAX_SCRIPT_CHARS else "",
        voice=voice if isinstance(voice, str) else None, queued=queued)


def save_session(path: Path, session: Session) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        json.dump(asdict(session), f)
