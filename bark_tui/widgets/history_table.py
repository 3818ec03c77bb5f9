"""The takes, newest first, with the keys that act on the highlighted one.

A take whose WAV has gone from disk stays listed and says "missing" in its
duration column: the row still holds the text, voice and seed, so the take
can be regenerated. Keys act on the highlighted row and are turned into
messages; the screen owns the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from ..guard import GuardedHandlers
from ..history import Take

TEXT_CHARS = 34  # the text column's width when the table's width is not known yet
OTHER_COLUMNS = 83  # room the other columns and paddings take (seeds are up to 10 digits)


def local_time(created_at: str) -> str:
    """The stored UTC stamp as local wall-clock "HH:MM" (the date when not today)."""
    try:
        stamp = datetime.fromisoformat(created_at).astimezone()
    except ValueError:
        return created_at[:16]
    if stamp.date() == datetime.now().astimezone().date():
        return stamp.strftime("%H:%M")
    return stamp.strftime("%m-%d %H:%M")


def voice_label(voice: str | None) -> str:
    """A preset name as is; a voice file by its name without the folder."""
    if not voice:
        return "(no voice)"
    if voice.endswith(".npz"):
        return Path(voice).stem
    return voice


def timing_s(take: Take, key: str) -> float | None:
    """A number from the take's timings (``first_audio_s``, ``total_s``), or None.

    Takes made before a timing was recorded (and plain takes, whose audio
    only exists once the whole take is made) have none; a damaged value
    counts as none rather than breaking the list.
    """
    value = (take.timings or {}).get(key) if isinstance(take.timings, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def first_audio_cell(take: Take) -> str:
    """``2.4 s`` (time to first audio of a script take), or ``—`` when not recorded."""
    first = timing_s(take, "first_audio_s")
    return "—" if first is None else f"{first:.1f} s"


def clip(text: str, limit: int = TEXT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class HistoryTable(GuardedHandlers, DataTable[str]):
    """One row per take; row keys are take ids."""

    BINDINGS = [  # tooltips: the help screen's text
        Binding("enter", "take('play')", "Play", show=False, tooltip="Play the take"),
        Binding("n", "take('rename')", "Rename", show=False, tooltip="Rename it"),
        Binding("delete,d", "take('delete')", "Delete", show=False,
                tooltip="Delete it (soft: `u` brings it back)"),
        Binding("u", "take('undo')", "Undo delete", show=False, tooltip="Undo the last delete"),
        Binding("e", "take('edit')", "Text to editor", show=False,
                tooltip="Copy its text (a script take's script) back into the editor"),
        Binding("g", "take('regenerate')", "Regenerate", show=False,
                tooltip="Regenerate it with the same seeds and settings"),
        Binding("v", "take('save_voice')", "Save as voice", show=False,
                tooltip="Save it as a voice under My voices"),
    ]

    class Action(Message):
        """A key asked for ``action`` on the take ``take_id`` (None: no take highlighted)."""

        def __init__(self, action: str, take_id: int | None) -> None:
            super().__init__()
            self.action = action
            self.take_id = take_id

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.takes: dict[int, Take] = {}

    def on_mount(self) -> None:
        self.add_column("#", key="id")
        self.add_column("time", key="time")
        self.add_column("text", key="text")
        self.add_column("voice", key="voice")
        self.add_column("length", key="duration")
        self.add_column("1st audio", key="first_audio")
        self.add_column("seed", key="seed")
        self.add_column("note", key="note")

    def set_takes(self, takes: Iterable[Take], keep: int | None = None) -> None:
        """Show ``takes`` newest first; the cursor stays on ``keep`` (or the current row)."""
        current = keep if keep is not None else self.current_id
        ordered = sorted(takes, key=lambda t: t.id, reverse=True)
        self.takes = {t.id: t for t in ordered}
        width = self.size.width
        limit = max(16, width - OTHER_COLUMNS) if width else TEXT_CHARS
        self.clear()
        for take in ordered:
            missing = not take.wav_exists
            cells = (
                str(take.id),
                local_time(take.created_at),
                clip(take.name if take.name else take.text, limit),
                voice_label(take.voice),
                "missing" if missing else f"{take.duration_s:.1f} s",
                first_audio_cell(take),
                "—" if take.seed is None else str(take.seed),
                "WAV MISSING" if missing else ("test weights" if take.random_weights else ""),
            )
            # Text, not str: a script's "[laughs]" is words, never console markup
            self.add_row(*(Text(c) for c in cells), key=str(take.id))
        if current in self.takes:
            self.move_cursor(row=list(self.takes).index(current), animate=False)

    @property
    def current_id(self) -> int | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    @property
    def current(self) -> Take | None:
        take_id = self.current_id
        return None if take_id is None else self.takes.get(take_id)

    def action_take(self, action: str) -> None:
        self.post_message(self.Action(action, self.current_id))
