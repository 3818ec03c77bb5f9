"""The history database's schema and its migrations.

The version lives in ``PRAGMA user_version`` (an integer in the file header,
free to read). Each migration step moves the file up by one version inside
one transaction, so a kill mid-migration leaves the previous version intact
and the next start simply runs the step again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .errors import SchemaTooNew

# Version 1: the first schema.
#   seed has no declared type on purpose: SQLite would turn an integer literal
#   too large for int64 (torch accepts 64-bit unsigned seeds) into a REAL and
#   lose digits; without affinity we store such a seed as exact text.
#   AUTOINCREMENT: ids of purged takes are never handed out again, so a take
#   number shown to the user always means the same take.
_V1 = (
    """
CREATE TABLE takes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at     TEXT    NOT NULL,          -- UTC, ISO 8601
    name           TEXT    NOT NULL,
    text           TEXT    NOT NULL,
    voice          TEXT,                      -- preset name, file path or NULL (no prompt)
    seed,                                     -- integer, or text when beyond int64
    options        TEXT    NOT NULL,          -- JSON of GenerationOptions fields
    model_id       TEXT    NOT NULL,
    random_weights INTEGER NOT NULL,          -- 0/1
    timings        TEXT    NOT NULL,          -- JSON {stage: {tokens, seconds}}
    duration_s     REAL    NOT NULL,
    sample_rate    INTEGER NOT NULL,
    wav_file       TEXT    NOT NULL,          -- name inside the takes folder
    tokens_file    TEXT,                      -- name inside the takes folder, or NULL
    segments       TEXT,                      -- JSON list, long scripts; NULL otherwise
    deleted_at     TEXT                       -- UTC ISO when soft-deleted, else NULL
)
""",
    "CREATE INDEX takes_deleted_at ON takes (deleted_at)",
)

Migration = Callable[[sqlite3.Connection], None]


def _to_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1:  # one by one: executescript would commit our transaction
        conn.execute(statement)


# MIGRATIONS[n] takes a file from version n to version n + 1.
MIGRATIONS: list[Migration] = [_to_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn``'s database up to :data:`SCHEMA_VERSION`; return the version found.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the
    explicit transactions here are the only ones.
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"The history database has schema version {found}, but this bark-tui knows only "
            f"up to {SCHEMA_VERSION}: a newer bark-tui wrote it. Update bark-tui; the file was left "
            "untouched."
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if schema_version(conn) != version:
                conn.execute("ROLLBACK")
                continue
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found
