"""The take history: SQLite rows plus WAV and voice-token files that never get lost.

See ``store`` for the durability and threading argument.
"""

from __future__ import annotations

from .files import TOKEN_KEYS, TakeFileMissing
from .records import NewTake, Take, snippet
from .schema import SCHEMA_VERSION, SchemaTooNew, migrate
from .store import HistoryError, HistoryStore, TakeNotFound

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
    "migrate",
    "snippet",
]
