"""The voice library: presets and the user's own voices, filtered as you type.

Two ideas are kept apart on purpose: the *highlighted* row (where the cursor
is; what ctrl+o auditions) and the *selected* voice (what the next take uses;
changed with enter or a click). The selected voice is always written out under
the table, even when the filter hides its row, and marked "▶" in the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Select

from ..core.guard import GuardedHandlers

ANY = "any"
MINE_HEADER = "§mine"  # row key of the "My voices" heading (never a voice)
NO_VOICE = ""  # key of the "no voice prompt" entry


@dataclass(frozen=True)
class VoiceEntry:
    """One voice as the browser shows it."""

    key: str  # what the engine takes: preset name or .npz path ("" = no prompt)
    name: str
    language: str = "—"
    gender: str = "—"
    seconds: float | None = None
    mine: bool = False

    def matches(self, words: list[str], language: str, gender: str) -> bool:
        if language != ANY and self.language != language:
            return False
        if gender != ANY and self.gender.lower() != gender:
            return False
        name = self.name.lower()
        hay = re.split(r"[/_\s]+", f"{name} {self.language} {self.gender}".lower())
        # a word matches inside the name, or at the start of a word ("male" ≠ "female")
        return all(w in name or any(h.startswith(w) for h in hay) for w in words)

    @property
    def summary(self) -> str:
        if self.key == NO_VOICE:
            return "no voice prompt (Bark picks a random speaker)"
        bits = [self.name, self.language, self.gender.lower()]
        if self.seconds is not None:
            bits.append(f"{self.seconds:.1f} s sample")
        if self.mine:
            bits.append("my voice")
        return " · ".join(b for b in bits if b and b != "—")


NONE_ENTRY = VoiceEntry(NO_VOICE, "(no voice)", "—", "—")


class VoiceBrowser(GuardedHandlers, Vertical):
    """Filter inputs, the table, and the selected voice."""

    class Selected(Message):
        """The user chose the voice for the next takes."""

        def __init__(self, entry: VoiceEntry) -> None:
            super().__init__()
            self.entry = entry

    def __init__(self, selected: str = NO_VOICE, **kwargs) -> None:
        super().__init__(**kwargs)
        self._entries: dict[str, VoiceEntry] = {NO_VOICE: NONE_ENTRY}
        self._selected = selected
        self._populated = False
        self._row_keys: list[str] = []  # table order (DataTable's own order updates lazily)

    def compose(self) -> ComposeResult:
        with Horizontal(id="voice-filters"):
            yield Input(placeholder="filter voices…", id="voice-filter", compact=True)
            yield Select([("any language", ANY)], id="voice-language", compact=True,
                         allow_blank=False, value=ANY)
            yield Select(
                [("any gender", ANY), ("male", "male"), ("female", "female")],
                id="voice-gender",
                compact=True,
                allow_blank=False,
                value=ANY,
            )
        table: DataTable[str] = DataTable(id="voice-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Label("", id="voice-selected", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#voice-table", DataTable)
        table.add_column(" ", key="mark", width=1)
        table.add_column("voice", key="name")
        table.add_column("language", key="language")
        table.add_column("gender", key="gender")
        table.add_column("secs", key="seconds")  # length of the voice's own sample
        self._show_selected()

    # --- data ---------------------------------------------------------------

    def set_voices(self, presets: Iterable[VoiceEntry], mine: Iterable[VoiceEntry]) -> None:
        """Replace the catalogue (at start, and when My voices change)."""
        entries = [NONE_ENTRY, *presets, *mine]
        self._entries = {e.key: e for e in entries}
        languages = sorted({e.language for e in entries if e.language != "—"})
        lang_select = self.query_one("#voice-language", Select)
        current = lang_select.value if lang_select.value != Select.NULL else ANY
        lang_select.set_options([("any language", ANY)] + [(x, x) for x in languages])
        lang_select.value = current if current in (ANY, *languages) else ANY
        first = not self._populated
        self._populated = True
        # the first time, the cursor starts on the voice in use; later it stays put
        self.refilter(keep=self._selected if first else None)
        self._show_selected()

    def entry(self, key: str | None) -> VoiceEntry | None:
        return self._entries.get(key or NO_VOICE)

    @property
    def selected(self) -> VoiceEntry:
        return self._entries.get(self._selected, NONE_ENTRY)

    @property
    def highlighted(self) -> VoiceEntry | None:
        """The voice under the table cursor, if the cursor is on a voice."""
        table = self.query_one("#voice-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._entries.get(key or "")

    def select(self, key: str) -> bool:
        """Make ``key`` the voice for the next takes; False if it is unknown."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._selected = key
        self.refilter()
        self._show_selected()
        self.post_message(self.Selected(entry))
        return True

    def reveal(self, key: str) -> None:
        """Put the cursor on ``key``, clearing the filters if they hide it."""
        if key not in self.visible_keys():
            self.query_one("#voice-filter", Input).value = ""
            self.query_one("#voice-language", Select).value = ANY
            self.query_one("#voice-gender", Select).value = ANY
            self.refilter()
        keys = self.visible_keys()
        if key in keys:
            self.query_one("#voice-table", DataTable).move_cursor(row=keys.index(key))

    # --- filtering -------------------------------------------------------------

    def _filters(self) -> tuple[list[str], str, str]:
        words = self.query_one("#voice-filter", Input).value.lower().split()
        lang = self.query_one("#voice-language", Select).value
        gender = self.query_one("#voice-gender", Select).value
        return words, str(lang) if lang != Select.NULL else ANY, str(gender)

    def visible_keys(self) -> list[str]:
        """Row keys in table order (the heading row included)."""
        return list(self._row_keys)

    def refilter(self, keep: str | None = None) -> None:
        """Rebuild the rows from the filters; the cursor stays on ``keep`` (default: where
        it is) when that row is still shown."""
        table = self.query_one("#voice-table", DataTable)
        if keep is None:
            keep = self.highlighted.key if self.highlighted else self._selected
        words, lang, gender = self._filters()
        table.clear()
        self._row_keys = []
        shown = [e for e in self._entries.values() if e.matches(words, lang, gender)]
        presets = [e for e in shown if not e.mine]
        mine = [e for e in shown if e.mine]
        for entry in presets:
            self._add_row(table, entry)
        if mine or not words:
            table.add_row("", "── My voices ──", "", "", "", key=MINE_HEADER)
            self._row_keys.append(MINE_HEADER)
        for entry in mine:
            self._add_row(table, entry)
        keys = self.visible_keys()
        if keep in keys:
            table.move_cursor(row=keys.index(keep), animate=False)

    def _add_row(self, table: DataTable, entry: VoiceEntry) -> None:
        seconds = "" if entry.seconds is None else f"{entry.seconds:.1f}"
        mark = "▶" if entry.key == self._selected else ""
        cells = (mark, entry.name, entry.language, entry.gender.lower(), seconds)
        table.add_row(*(Text(c) for c in cells), key=entry.key)  # names are not markup
        self._row_keys.append(entry.key)

    def _show_selected(self) -> None:
        self.query_one("#voice-selected", Label).update(f"Voice: {self.selected.summary}")

    # --- events ---------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "voice-filter":
            event.stop()
            self.refilter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter picks the first matching voice."""
        if event.input.id != "voice-filter":
            return
        event.stop()
        for key in self.visible_keys():
            if key != MINE_HEADER and key in self._entries:
                self.select(key)
                self.query_one("#voice-table", DataTable).focus()
                return
        self.notify("No voice matches the filter.", severity="warning", markup=False)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id in ("voice-language", "voice-gender"):
            event.stop()
            self.refilter()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value)
        if key != MINE_HEADER:
            self.select(key)
