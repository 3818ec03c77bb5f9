"""The history of takes: SQLite rows pointing at WAV and token files.

"History that never loses work" rests on three choices.

1. Files before rows. ``add_take`` writes the WAV and the tokens file
   atomically and durably (temp file, fsync, rename, fsync the folder) under
   fresh UUID names, and only then commits the row that points at them. A
   kill at any moment leaves either a complete take or, at worst, files with
   no row, which :meth:`HistoryStore.cleanup_orphans` removes later. A row
   never points at a half-written file.

2. WAL journal with ``synchronous=FULL``. In WAL mode a transaction is
   committed once its commit frame is in the WAL file; a killed process
   cannot undo or tear that, whatever the synchronous level, because the
   written pages live in the OS, not in the process. ``NORMAL`` would still be
   corruption-free on a power cut, but could silently forget the last takes
   the user was told were saved. ``FULL`` fsyncs the WAL at every commit, so a
   saved take also survives a power cut. It costs one fsync per take, which
   is nothing next to the seconds a take takes to generate. WAL also lets a
   reader (another process, e.g. ``bark-tui say``) read while we write.

3. Soft deletes. ``delete`` only stamps ``deleted_at``; ``undelete`` clears
   it. Files go only in ``purge_deleted``, and only after the rows are gone
   (a kill in between leaves orphans, never rows without files).

Threads: the app reads from the UI thread and writes from worker threads.
The store owns one connection opened with ``check_same_thread=False`` and
serialises every statement with a lock. A connection per thread would pile
up, because Textual starts a fresh thread per worker and a connection can
only be closed from its own thread. The statements are tiny (a commit is one
fsync), and the slow part of ``add_take`` (writing audio files) runs outside
the lock, so the UI thread never waits on a take being written.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from bark_engine.files import sync_dir

from .errors import HistoryError, TakeNotFound, is_disk_full
from .files import normalize_tokens, safe_child, write_tokens_atomic
from .records import TAKE_COLUMNS, NewTake, Take, json_or, snippet
from .schema import migrate

_INT64_MAX = 2**63 - 1
_STEM_RE = re.compile(r"[0-9a-f]{32}")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class HistoryStore:
    """Takes in ``db_path`` (SQLite) with their files in ``takes_dir``."""

    def __init__(self, db_path: Path, takes_dir: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.db_path = Path(db_path)
        self.takes_dir = Path(takes_dir)
        self._lock = threading.RLock()
        self._pending: set[str] = set()  # UUID stems being written by add_take in this process
        self._idle = threading.Condition(self._lock)  # notified when an add_take finishes
        self._closed = False
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.db_path,
                timeout=busy_timeout_s,
                isolation_level=None,  # autocommit; we write BEGIN/COMMIT ourselves
                check_same_thread=False,  # guarded by self._lock instead
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"Cannot open the history at {self.db_path}: {exc}") from exc
        try:
            # On file systems without shared memory WAL is refused and SQLite keeps its
            # rollback journal, which is just as safe, only without concurrent readers.
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self.journal_mode = str(mode).lower()
            self._conn.execute("PRAGMA synchronous=FULL")
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if is_disk_full(exc):  # a healthy file on a full disk: nothing to move away
                raise HistoryError(
                    f"The disk holding the history at {self.db_path} is full ({exc}). The "
                    "history is fine; free some space and start again.") from exc
            raise HistoryError(
                f"The history at {self.db_path} is unreadable ({exc}). It was left untouched; "
                "move it away to start a new history."
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def open_default(cls) -> HistoryStore:
        """The store at the user's data folder (``locations``), honouring BARK_TUI_HOME."""
        from ..core import locations

        return cls(locations.history_db_path(), locations.takes_dir())

    # --- lifecycle ---------------------------------------------------------------

    def close(self, timeout_s: float = 30.0) -> None:
        """Close, first letting takes being saved right now finish (the app may quit while
        a worker saves). Later ``add_take`` calls raise HistoryError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._idle.wait_for(lambda: not self._pending, timeout_s)
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------------

    def add_take(
        self,
        new: NewTake,
        audio: np.ndarray,
        tokens: Mapping[str, np.ndarray] | None,
    ) -> Take:
        """Store a take: files first (atomic, durable), then the row. Returns the saved take.

        ``tokens`` holds semantic/coarse/fine arrays (``*_prompt`` names or the
        short ones) and is saved as an original-format Bark voice ``.npz``;
        None saves no tokens file.
        """
        from bark_engine.audio import write_wav

        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"audio must be mono (1-D), got shape {samples.shape}")
        if new.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {new.sample_rate}")
        token_arrays = None if tokens is None else normalize_tokens(tokens)
        seed = new.seed
        if seed is not None and not -(2**63) <= seed <= _INT64_MAX:
            seed = str(seed)  # kept exact; see the schema note on the seed column

        stem = uuid.uuid4().hex
        wav_name = f"{stem}.wav"  # UUID names: files exist before the row (and its id) does
        tokens_name = None if token_arrays is None else f"{stem}.npz"
        committed = False
        with self._lock:
            if self._closed:
                raise HistoryError("The history is closed; the take was not saved.")
            self._pending.add(stem)
        try:
            self.takes_dir.mkdir(parents=True, exist_ok=True)
            wav_path = self.takes_dir / wav_name
            write_wav(wav_path, samples, new.sample_rate)  # temp + fsync + rename
            sync_dir(self.takes_dir)  # ... and the rename itself is durable
            if token_arrays is not None and tokens_name is not None:
                write_tokens_atomic(self.takes_dir / tokens_name, token_arrays)
            row = (
                utc_now(),
                " ".join((new.name or "").split()) or snippet(new.text),
                new.text,
                new.voice,
                seed,
                new.options_json(),
                new.model_id,
                int(bool(new.random_weights)),
                new.timings_json(),
                len(samples) / new.sample_rate,
                int(new.sample_rate),
                wav_name,
                tokens_name,
                new.segments_json(),
            )
            with self._lock:
                take_id = self._write(
                    "INSERT INTO takes (created_at, name, text, voice, seed, options, model_id, "
                    "random_weights, timings, duration_s, sample_rate, wav_file, tokens_file, "
                    "segments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                ).lastrowid
                committed = True
                take = self.get(int(take_id))  # type: ignore[arg-type]
        except BaseException:
            for name in (wav_name, tokens_name) if not committed else ():
                if name:
                    (self.takes_dir / name).unlink(missing_ok=True)
            raise
        finally:
            with self._lock:
                self._pending.discard(stem)
                self._idle.notify_all()
        assert take is not None
        return take

    def add_generation(self, gen: Any, name: str | None = None) -> Take:
        """Store a ``bark_engine.engine.Generation`` with its audio and tokens."""
        tokens = {"semantic": gen.semantic, "coarse": gen.coarse, "fine": gen.fine}
        return self.add_take(NewTake.from_generation(gen, name=name), gen.audio, tokens)

    def rename(self, take_id: int, name: str) -> Take:
        """Give a take a new one-line name (whitespace collapsed; empty is refused)."""
        clean = " ".join(name.split())
        if not clean:
            raise ValueError("a take's name cannot be empty")
        with self._lock:
            cur = self._write("UPDATE takes SET name = ? WHERE id = ?", (clean, take_id))
            if cur.rowcount == 0:
                raise TakeNotFound(take_id)
            take = self.get(take_id)
        assert take is not None
        return take

    def update_segments(self, take_id: int, segments: list[Any], duration_s: float) -> Take:
        """A script take after one segment was re-made: its segments JSON and new length."""
        data = NewTake(text="", voice=None, seed=None, segments=segments).segments_json()
        with self._lock:
            cur = self._write("UPDATE takes SET segments = ?, duration_s = ? WHERE id = ?",
                              (data, float(duration_s), take_id))
            if cur.rowcount == 0:
                raise TakeNotFound(take_id)
            take = self.get(take_id)
        assert take is not None
        return take

    def delete(self, take_id: int) -> None:
        """Hide a take (undoable); its files stay until :meth:`purge_deleted`."""
        self._set_deleted(take_id, utc_now())

    def undelete(self, take_id: int) -> None:
        """Undo :meth:`delete`."""
        self._set_deleted(take_id, None)

    def _set_deleted(self, take_id: int, stamp: str | None) -> None:
        with self._lock:
            if stamp is None:
                sql, args = "UPDATE takes SET deleted_at = NULL WHERE id = ?", (take_id,)
            else:
                sql = "UPDATE takes SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL"
                args = (stamp, take_id)
            cur = self._write(sql, args)
            if cur.rowcount == 0 and self.get(take_id) is None:
                raise TakeNotFound(take_id)

    def purge_deleted(self, *, ids: list[int] | None = None,
                      deleted_before: str | None = None) -> int:
        """Remove soft-deleted takes for good: rows first, then their files. Returns the count.

        `ids`: only these takes (the ones this session deleted); `deleted_before`: only
        takes deleted before this `utc_now()` stamp (so another instance's fresh delete
        stays undoable there)."""
        where, args = "deleted_at IS NOT NULL", []
        if ids is not None:
            if not ids:
                return 0
            where += f" AND id IN ({', '.join('?' * len(ids))})"
            args += [int(i) for i in ids]
        if deleted_before is not None:
            where += " AND deleted_at < ?"
            args.append(deleted_before)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute(
                    f"SELECT wav_file, tokens_file, segments FROM takes WHERE {where}", args
                ).fetchall()
                self._conn.execute(f"DELETE FROM takes WHERE {where}", args)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        for wav_file, tokens_file, segments in rows:
            for name in (wav_file, tokens_file):
                path = safe_child(self.takes_dir, name)
                if path is not None:
                    path.unlink(missing_ok=True)
            self._remove_parts(segments)
        return len(rows)

    def _remove_parts(self, segments_json: str | None) -> None:
        """A script take's folder of segment files (named in its segments JSON)."""
        records = json_or(segments_json, None)
        if not isinstance(records, list) or not records or not isinstance(records[0], dict):
            return
        folder = safe_child(self.takes_dir, records[0].get("parts"))
        if folder is None or not folder.is_dir():
            return
        for child in folder.iterdir():
            if child.suffix == ".npz" and child.is_file():
                child.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # something else in there: leave the folder
            folder.rmdir()

    def cleanup_orphans(self, min_age_s: float = 60.0) -> list[Path]:
        """Delete files in the takes folder that no row names (a kill before the commit).

        Files younger than ``min_age_s`` are kept: another process (``bark-tui
        say``) may be between writing its files and committing its row. Takes
        being added by this store right now are always kept.
        """
        if not self.takes_dir.is_dir():
            return []
        # List first, then snapshot rows and in-flight stems: a file listed here was
        # registered as pending before it was written, and leaves pending only after
        # its row committed, so it is in one of the two snapshots.
        entries = list(os.scandir(self.takes_dir))
        with self._lock:
            referenced: set[str] = set()
            for wav_file, tokens_file in self._conn.execute(
                "SELECT wav_file, tokens_file FROM takes"
            ):
                referenced.add(wav_file)
                if tokens_file:
                    referenced.add(tokens_file)
            pending = set(self._pending)
        removed: list[Path] = []
        now = time.time()
        for entry in entries:
            if entry.name in referenced or not entry.is_file(follow_symlinks=False):
                continue
            if any(stem in pending for stem in _STEM_RE.findall(entry.name)):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
        return removed

    def _write(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        """One statement in its own immediate transaction (caller holds the lock)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            cur = self._conn.execute(sql, args)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return cur

    # --- reading ------------------------------------------------------------------------

    def list_takes(self, limit: int | None = None, include_deleted: bool = False) -> list[Take]:
        """Takes, newest first. A take whose files vanished is still listed (see wav_exists)."""
        where = "" if include_deleted else "WHERE deleted_at IS NULL"
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {TAKE_COLUMNS} FROM takes {where} ORDER BY id DESC LIMIT ?",
                (-1 if limit is None else int(limit),),
            ).fetchall()
        return [Take.from_row(row, self.takes_dir) for row in rows]

    def data_version(self) -> int:
        """SQLite's counter of commits made by *other* connections to this database:
        when it moves, another instance (or `bark-tui say`) changed the history."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def get(self, take_id: int) -> Take | None:
        """The take with that id (deleted or not), or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {TAKE_COLUMNS} FROM takes WHERE id = ?", (take_id,)
            ).fetchone()
        return None if row is None else Take.from_row(row, self.takes_dir)

    def count(self, include_deleted: bool = False) -> int:
        where = "" if include_deleted else "WHERE deleted_at IS NULL"
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM takes {where}").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's own verdict on the file: "ok" when sound."""
        with self._lock:
            return "; ".join(r[0] for r in self._conn.execute("PRAGMA integrity_check"))
