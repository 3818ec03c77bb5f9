"""What can go wrong with the history, as exceptions the app can show in one line."""

from __future__ import annotations

import errno
import sqlite3

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class HistoryError(RuntimeError):
    """The history database cannot be opened or used; the message says why."""


class SchemaTooNew(HistoryError):
    """The file was written by a newer bark-tui; it is left untouched."""


class TakeNotFound(KeyError):
    """No take with that id."""


class TakeFileMissing(FileNotFoundError):
    """A history row whose WAV or tokens file is gone (deleted by hand, disk swapped...)."""


def is_disk_full(exc: BaseException) -> bool:
    """A write failed because the disk (or the user's quota) is full: an OSError with
    ENOSPC/EDQUOT, or SQLite's SQLITE_FULL ("database or disk is full"), also when
    wrapped by another exception."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if isinstance(e, sqlite3.OperationalError) and (
                getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                or "disk is full" in str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def save_problem(exc: BaseException) -> str:
    """One line for a take that could not be stored: a full disk is called a full disk."""
    if is_disk_full(exc):
        return ("the disk is full, so the take could not be kept: free some space, then "
                "generate again (waiting jobs are held until then)")
    return f"could not save the take: {exc}"
