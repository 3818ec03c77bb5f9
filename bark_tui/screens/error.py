"""The modal for *unexpected* failures: the traceback, readable and copyable.

Expected failures are one-line notices; a bug deserves the whole story so it
can be reported, and it must never spill onto the terminal behind the app.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TextArea


class ErrorScreen(ModalScreen[None]):
    """Title, a one-line summary, the traceback in a read-only TextArea, Close."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, title: str, summary: str, details: str) -> None:
        super().__init__()
        self.title_text = title
        self.summary = summary
        self.details = details

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box"):
            yield Label(f"✖ {self.title_text}", id="error-title", markup=False)
            yield Label(self.summary, id="error-summary", markup=False)
            details = TextArea(self.details, read_only=True, id="error-details", soft_wrap=False)
            details.cursor_blink = False
            yield details
            yield Button("Close", id="error-close", variant="error")

    def on_mount(self) -> None:
        self.query_one("#error-box").border_title = "Unexpected error"
        self.query_one("#error-close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
