"""Writing files all at once: the one atomic writer of the project.

Every file we write (WAVs, voices, segment parts, settings, history tokens,
model folders for tests, benchmark reports) goes to a temporary name in the
same folder and is renamed into place, which is atomic on one file system:
a reader, or the next start after a crash or a kill, sees the old file or
the new one, never half of one. A failed write leaves no temporary file.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TEMP_SUFFIX = ".tmp"  # what a writer killed midway leaves (start-up cleanups look for it)


@functools.cache
def default_file_mode() -> int:
    """The permissions a plain `open()` would give a new file: 0666 less the umask.

    mkstemp makes private 0600 files; a user's exports should get the usual
    permissions. Read once (the umask can only be read by setting it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def sync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, durable: bool = True,
                 permissions: int | None = None) -> Iterator[IO]:
    """Yield an open temporary file that becomes `path` when the block succeeds.

    Text modes write UTF-8 with "\\n" line ends. `durable` flushes the data
    and the rename to disk (fsync) before returning. `permissions` default to
    `default_file_mode()`.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        text = "b" not in mode
        with os.fdopen(fd, mode, encoding="utf-8" if text else None,
                       newline="\n" if text else None) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode() if permissions is None else permissions)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        sync_dir(target.parent)


def remove_stale_temps(folder: str | os.PathLike[str], min_age_s: float = 600.0,
                       kinds: tuple[str, ...] = ("wav", "npz", "json")) -> list[Path]:
    """Delete what `atomic_write` calls killed midway left in `folder`, once older than
    `min_age_s` (a younger one may belong to a writer still at work). Only names this
    module makes (`.NAME.KIND.xxxxxxxx.tmp`, KIND one of `kinds`) are touched: the
    folder may be the user's own, holding other programs' files."""
    import re
    import time

    folder = Path(folder)
    if not folder.is_dir():
        return []
    ours = re.compile(r"\..+\.(?:" + "|".join(map(re.escape, kinds)) + r")\.[a-z0-9_]{8}"
                      + re.escape(TEMP_SUFFIX))
    removed = []
    now = time.time()
    for entry in os.scandir(folder):
        if not ours.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and \
                    now - entry.stat(follow_symlinks=False).st_mtime >= min_age_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed
