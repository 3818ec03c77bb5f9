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

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from ..core.guard import GuardedHandlers
from ..history import Take

TEXT_CHARS = 34  # the text column's width when the table's width is not known yet
OTHER_COLUMNS = 83  # room the other columns and paddings take (seeds are up to 10 digits)
MIN_TEXT = 16
COLUMNS = (  # (label, key), left to right
    ("#", "id"), ("time", "time"), ("text", "text"), ("voice", "voice"),
    ("length", "duration"), ("1st audio", "first_audio"), ("seed", "seed"), ("note", "note"),
)
# Given up in this order when the table is too narrow for every column, with the
# cells each takes (its widest value plus padding): the seed is also in the
# waveform label, the time to first audio in the generation panel.
NARROW_DROPS = (("seed", 12), ("first_audio", 11), ("time", 7))


def fitting_columns(width: int) -> tuple[tuple[str, ...], int]:
    """The column keys that fit ``width`` cells (0: not laid out yet, all of them),
    and the room left for the text column."""
    dropped: set[str] = set()
    others = OTHER_COLUMNS
    for key, cells in NARROW_DROPS:
        if not width or width >= others + MIN_TEXT:
            break
        dropped.add(key)
        others -= cells
    keys = tuple(key for _, key in COLUMNS if key not in dropped)
    return keys, (max(MIN_TEXT, width - others) if width else TEXT_CHARS)


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


def take_matches(take: Take, query: str) -> bool:
    """True when every word of ``query`` appears, in any case, in the take's name,
    text, voice or seed; a word ``#12`` matches take 12 alone."""
    seed = "" if take.seed is None else str(take.seed)
    haystack = " ".join(
        (take.name or "", take.text, take.voice or "", voice_label(take.voice), seed)
    ).casefold()
    for word in query.casefold().split():
        if word.startswith("#") and word[1:].isdigit():
            if int(word[1:]) != take.id:
                return False
        elif word not in haystack:
            return False
    return True


def take_cells(take: Take, limit: int) -> dict[str, str]:
    """Every column's text for one take (the text clipped to ``limit`` characters)."""
    missing = not take.wav_exists
    return {
        "id": str(take.id),
        "time": local_time(take.created_at),
        "text": clip(take.name if take.name else take.text, limit),
        "voice": take_voice_cell(take),
        "duration": "missing" if missing else f"{take.duration_s:.1f} s",
        "first_audio": first_audio_cell(take),
        "seed": "—" if take.seed is None else str(take.seed),
        "note": "WAV MISSING" if missing else ("test weights" if take.random_weights else ""),
    }


def take_voice_cell(take: Take) -> str:
    """The voice a take was spoken in: a script's own voices (its one voice, or "N
    voices" for a dialogue), not the voice that was selected when it was made."""
    voices = []
    for record in take.segments or []:
        voice = record.get("voice") if isinstance(record, dict) else None
        if voice not in voices:
            voices.append(voice)
    if len(voices) > 1:
        return f"{len(voices)} voices"
    return voice_label(voices[0] if voices else take.voice)


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
        Binding("slash", "take('filter')", "Filter", show=False, key_display="/",
                tooltip="Show only the takes whose text, name, voice or seed contain some words "
                        "(empty: all of them)"),
    ]

    class Action(Message):
        """A key asked for ``action`` on the take ``take_id`` (None: no take highlighted)."""

        def __init__(self, action: str, take_id: int | None) -> None:
            super().__init__()
            self.action = action
            self.take_id = take_id

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.takes: dict[int, Take] = {}  # the rows shown, newest first
        self.all_takes: list[Take] = []  # every take given, newest first (the filter's input)
        self.query = ""  # the filter: words every row shown contains (`take_matches`)
        self.column_keys: tuple[str, ...] = ()
        self._text_limit = TEXT_CHARS

    def on_mount(self) -> None:
        self._set_columns(fitting_columns(0)[0])

    def _set_columns(self, keys: tuple[str, ...], widths: dict[str, int] | None = None) -> None:
        """Columns ``keys``, each ``widths[key]`` cells wide where given (else measured
        by DataTable when idle, which can trail a repaint on a busy machine)."""
        self.clear(columns=True)
        for label, key in COLUMNS:
            if key in keys:
                self.add_column(label, key=key, width=None if widths is None else widths[key])
        self.column_keys = keys

    def on_resize(self) -> None:
        """Lay the rows out again for the new width (columns given up or back, text
        clipped anew), only when that changes what is shown."""
        keys, limit = fitting_columns(self.size.width)
        if keys == self.column_keys and (limit == self._text_limit or all(
                len(t.name or t.text) <= min(limit, self._text_limit)
                for t in self.takes.values())):
            self._text_limit = limit
            return
        self.set_takes(self.all_takes)

    def set_takes(self, takes: Iterable[Take], keep: int | None = None) -> None:
        """Show ``takes`` newest first; the cursor stays on ``keep`` (or the current row;
        when that take is gone, on the row that takes its place)."""
        current = keep if keep is not None else self.current_id
        row_before = self.cursor_coordinate.row if self.row_count else 0
        self.all_takes = sorted(takes, key=lambda t: t.id, reverse=True)
        ordered = [t for t in self.all_takes if take_matches(t, self.query)]
        self.takes = {t.id: t for t in ordered}
        keys, limit = fitting_columns(self.size.width)
        self._text_limit = limit
        rows = [(take.id, take_cells(take, limit)) for take in ordered]
        # Widths measured here, not left to DataTable's idle pass: the table is never
        # painted with the columns of before (header-wide) while a busy machine catches up.
        labels = {key: label for label, key in COLUMNS}
        widths = {key: max([cell_len(labels[key])] + [cell_len(c[key]) for _, c in rows])
                  for key in keys}
        self._set_columns(keys, widths)
        for take_id, cells in rows:
            # Text, not str: a script's "[laughs]" is words, never console markup
            self.add_row(*(Text(cells[k]) for k in keys), key=str(take_id))
        if current in self.takes:
            self.move_cursor(row=list(self.takes).index(current), animate=False)
        elif self.takes:  # its take is gone (deleted): the neighbour that took its place
            self.move_cursor(row=min(row_before, len(self.takes) - 1), animate=False)

    def set_query(self, query: str) -> None:
        """Show only the takes matching ``query`` ("" shows them all)."""
        self.query = " ".join(query.split())
        self.set_takes(self.all_takes)

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
