"""What can go wrong with the history, as exceptions the app can show in one line."""

from __future__ import annotations


class HistoryError(RuntimeError):
    """The history database cannot be opened or used; the message says why."""


class SchemaTooNew(HistoryError):
    """The file was written by a newer bark-tui; it is left untouched."""


class TakeNotFound(KeyError):
    """No take with that id."""


class TakeFileMissing(FileNotFoundError):
    """A history row whose WAV or tokens file is gone (deleted by hand, disk swapped...)."""
