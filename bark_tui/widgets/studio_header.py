"""The one-line header: what runs the models, and a loud flag for test weights.

Random weights make noise; a person who forgets that wastes an afternoon
tuning temperatures. So the flag is text ("RANDOM TEST WEIGHTS — output is
noise"), not a colour, and it appears before loading when a local folder
carries the marker file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label

from ..core.guard import GuardedHandlers

RANDOM_FLAG = "⚠ RANDOM TEST WEIGHTS — output is noise"


class StudioHeader(GuardedHandlers, Horizontal):
    """App name · size · device · weights flag · engine state."""

    model_size: reactive[str] = reactive("small")
    device: reactive[str] = reactive("auto")
    random_weights: reactive[bool | None] = reactive(None)
    engine_state: reactive[str] = reactive("models not loaded")

    def compose(self) -> ComposeResult:
        yield Label("bark-tui", id="header-title")
        yield Label("", id="header-model", markup=False)
        flag = Label(RANDOM_FLAG, id="header-random")
        flag.display = bool(self.random_weights)
        yield flag
        yield Label("", id="header-state", markup=False)

    def on_mount(self) -> None:
        self._refresh_labels()

    def _refresh_labels(self) -> None:
        if not self.children:
            return
        self.query_one("#header-model", Label).update(f"{self.model_size} · {self.device}")
        self.query_one("#header-random", Label).display = bool(self.random_weights)
        self.query_one("#header-state", Label).update(self.engine_state)

    def watch_model_size(self) -> None:
        self._refresh_labels()

    def watch_device(self) -> None:
        self._refresh_labels()

    def watch_random_weights(self) -> None:
        self._refresh_labels()

    def watch_engine_state(self) -> None:
        self._refresh_labels()
