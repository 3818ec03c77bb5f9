"""Several takes side by side: hear each, keep one or more, drop the rest.

One row per take (seed, length, waveform strip). Enter plays the highlighted
take, space marks it to keep, k keeps the highlighted one (or the marked
ones) and escape drops them all. Returns the indices to keep, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label

from ..core.guard import GuardedHandlers
from ..widgets.waveform import _peaks, envelope_to_blocks

STRIP = 40  # waveform characters per take


def take_row(index: int, gen: Any, kept: bool) -> tuple[str, str, str, str, str]:
    audio = np.asarray(gen.audio)
    strip = envelope_to_blocks(_peaks(audio, STRIP)) if len(audio) else "(silent)"
    return ("✔ keep" if kept else "", f"take {index + 1}", f"seed {gen.seed}",
            f"{len(audio) / gen.sample_rate:.2f} s", strip)


class TakesCompareScreen(GuardedHandlers, ModalScreen[list[int] | None]):
    """``play(index)`` plays a take; the result is what to keep.

    Enter is the table's own "row selected", which plays the row.
    """

    BINDINGS = [
        Binding("space", "mark", "Mark to keep", tooltip="Mark (or unmark) the take to keep"),
        Binding("k", "keep", "Keep",
                tooltip="Keep the marked takes (or the highlighted one) in the history"),
        Binding("escape", "discard", "Drop all", tooltip="Close and keep none of them"),
    ]

    DEFAULT_CSS = """
    TakesCompareScreen { align: center middle; }
    #compare-box {
        width: 100; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    #compare-table { height: auto; max-height: 10; }
    #compare-box .dialog-buttons { height: auto; margin-top: 1; }
    """

    def __init__(self, generations: list[Any], play: Callable[[int], None], title: str) -> None:
        super().__init__()
        self.generations = generations
        self.play = play
        self.title_text = title
        self.marked: set[int] = set()

    def compose(self) -> ComposeResult:
        with Vertical(id="compare-box"):
            yield Label("enter plays · space marks · k keeps (the marked, or this one) · "
                        "escape drops all", id="compare-help")
            yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep", id="compare-keep", variant="primary")
                yield Button("Drop all", id="compare-drop")

    def on_mount(self) -> None:
        box = self.query_one("#compare-box")
        box.border_title = self.title_text
        table = self.query_one(DataTable)
        table.add_columns("", "take", "seed", "length", "waveform")
        self._fill()
        table.focus()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for i, gen in enumerate(self.generations):
            table.add_row(*take_row(i, gen, i in self.marked), key=str(i))
        if self.generations:
            table.move_cursor(row=min(max(row, 0), len(self.generations) - 1))

    @property
    def current(self) -> int:
        return self.query_one(DataTable).cursor_row

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_play()

    def action_play(self) -> None:
        self.play(self.current)

    def action_mark(self) -> None:
        self.marked ^= {self.current}
        self._fill()

    def action_keep(self) -> None:
        self.dismiss(sorted(self.marked) if self.marked else [self.current])

    def action_discard(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "compare-keep":
            self.action_keep()
        else:
            self.action_discard()
