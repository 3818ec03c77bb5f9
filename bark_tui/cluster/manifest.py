"""The plan of a cluster render, as data: `OUT.parts/manifest.json`.

Written before any segment is made and again as each one arrives (atomically), it
lists every segment with its text, voice, seed, options and group, the key of what
decides its tokens (the same key its part file is named by), and, once made, who
made it, in how many seconds and after how many retries. A chained segment's key
includes the tokens of the segment before it, so it is known only once that one is
made (`after` names it). Seeds are fixed here: which worker makes a segment changes
nothing, on the same device type and precision (`model`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bark_engine.files import atomic_write

MANIFEST = "manifest.json"
VERSION = 1


@dataclass
class Entry:
    index: int
    text: str
    voice: str | None
    seed: int
    group: int  # segments of one group run in order (chained); fixed mode: one each
    after: int | None  # chained: the segment whose tokens are this one's history
    options: dict
    key: str | None = None
    status: str = "pending"  # "pending" or "done"
    part: str | None = None  # the part file, in the parts folder
    worker: str | None = None
    seconds: float | None = None  # wall time of the batch that made it
    retries: int = 0  # times its batch was started again on a restarted worker
    reused: bool = False  # this run read it from an earlier run's part


@dataclass
class Manifest:
    model: str
    seed: int
    continuity: str
    reset_every: int | None
    batch: int
    workers: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(e.status == "done" for e in self.entries)

    def write(self, parts: Path) -> None:
        with atomic_write(parts / MANIFEST, "w") as f:
            json.dump({"version": VERSION, **asdict(self)}, f, indent=1, ensure_ascii=False)
            f.write("\n")


def read_manifest(parts: Path) -> Manifest | None:
    """An earlier run's manifest, or None when there is none or it does not parse."""
    try:
        data = json.loads((parts / MANIFEST).read_text(encoding="utf-8"))
        if data.pop("version", None) != VERSION:
            return None
        entries = [Entry(**e) for e in data.pop("entries")]
        return Manifest(**data, entries=entries)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
