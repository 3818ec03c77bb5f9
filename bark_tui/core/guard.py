"""Keep the studio alive when one of its handlers raises.

Textual's default for an exception in a message handler, an event handler
or an action is to end the whole app and print the traceback on the
terminal: the user loses the script in the editor, the queue and whatever
was playing, for what is usually a bug in one small feature. The studio
treats such a failure like a failed worker instead: the traceback goes to
:func:`error_log_path` and into the error modal, and the app goes on.

Textual stops a message pump's loop after reporting an exception through
``App._handle_exception``, so catching there would leave a widget (or the
app itself) deaf. The catch sits one level lower, around each dispatch of a
message and each batch of deferred callbacks, in the classes that run the
studio's own code (:class:`GuardedHandlers`). Whatever still reaches
Textual's own handling (a bug in Textual itself) ends the app the default
way, but its traceback is logged first.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import locations

LOG_NAME = "errors.log"
LOG_MAX_BYTES = 1_000_000  # the log keeps one older generation beside it (errors.log.1)
SUMMARY_CHARS = 160


def error_log_path() -> Path:
    """Where unexpected tracebacks go (beside the history, so a bug report can find it)."""
    return locations.data_dir() / LOG_NAME


def one_line(error: BaseException) -> str:
    """``KeyError: 'x'``: the type and the first line of the message, clipped."""
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"


def format_traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def log_error(title: str, details: str) -> Path | None:
    """Append a stamped entry to the error log; its path, or None when it cannot be written.

    Never raises: failing to log must not turn one error into two.
    """
    path = error_log_path()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        locations.ensure_dir(path.parent)
        if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
            path.replace(path.with_name(LOG_NAME + ".1"))
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- {stamp} {title}\n{details.rstrip()}\n\n")
    except OSError:
        return None
    return path


def report(pump: Any, error: Exception, what: str) -> None:
    """Hand ``error`` to the studio app, or re-raise it when the app is not ours."""
    app = pump.app
    handler = getattr(app, "handler_failed", None)
    if handler is None:
        raise error
    handler(error, what)


class GuardedHandlers:
    """Mixin (first in the bases) for the app, its screens and widgets.

    An exception in one of the class's handlers becomes the error modal
    instead of the end of the app; the pump goes on with its next message.
    """

    async def _dispatch_message(self, message: Any) -> None:
        try:
            await super()._dispatch_message(message)  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001 - shown in the modal and logged
            report(self, error, f"{type(self).__name__} handling {type(message).__name__}")

    async def _flush_next_callbacks(self) -> None:
        try:
            await super()._flush_next_callbacks()  # type: ignore[misc]
        except Exception as error:  # noqa: BLE001
            report(self, error, f"a callback of {type(self).__name__}")


def guarded(pump: Any, callback: Callable[[], Any], what: str) -> Callable[[], Awaitable[None]]:
    """``callback`` for a timer: Textual reports a timer's exception as fatal to the app."""

    async def run() -> None:
        try:
            result = callback()
            if isinstance(result, Awaitable):
                await result
        except Exception as error:  # noqa: BLE001
            report(pump, error, what)

    return run

