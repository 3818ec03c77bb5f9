"""The take history: SQLite rows plus WAV and voice-token files that never get lost.

See ``store`` for the durability and threading argument.
"""

from __future__ import annotations

from .errors import (
    HistoryError,
    SchemaTooNew,
    TakeFileMissing,
    TakeNotFound,
    is_disk_full,
    save_problem,
)
from .files import TOKEN_KEYS
from .records import NewTake, Take, snippet
from .schema import SCHEMA_VERSION, migrate
from .store import HistoryStore

__all__ = [
    "SCHEMA_VERSION",
    "TOKEN_KEYS",
    "HistoryError",
    "HistoryStore",
    "NewTake",
    "SchemaTooNew",
    "Take",
    "TakeFileMissing",
    "TakeNotFound",
    "is_disk_full",
    "save_problem",
    "migrate",
    "snippet",
]
