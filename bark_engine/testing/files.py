"""Atomic writes for the model-folder generator: files through the project's one
writer (`bark_engine.files.atomic_write`) with a downloaded file's mode, and
whole folders renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

from ..files import atomic_write

FILE_MODE = 0o644  # like a downloaded file, not mkstemp's private 0600
DIR_MODE = 0o755


def atomic_file(target: Path, mode: str = "wb") -> AbstractContextManager[IO]:
    """`atomic_write` for a model folder's file: no fsync (a test folder), mode 0644."""
    return atomic_write(target, mode, durable=False, permissions=FILE_MODE)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces `target` (and what it held) on success."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
