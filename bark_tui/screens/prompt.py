"""A one-field modal: a question, a default answer, a check, OK/Cancel.

Used for renaming a take, naming a voice and importing a voice file. The
check runs before the dialog closes, so a bad answer is corrected in place
instead of being lost in a notice after the dialog vanished.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from ..core.guard import GuardedHandlers

Check = Callable[[str], str | None]  # answer -> problem (None when fine)


class PromptScreen(GuardedHandlers, ModalScreen[str | None]):
    """Returns the stripped answer, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        question: str,
        value: str = "",
        check: Check | None = None,
        ok_label: str = "OK",
        allow_empty: bool = False,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.value = value
        self.check = check
        self.ok_label = ok_label
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box", classes="dialog"):
            yield Label(self.question, id="prompt-question", markup=False)
            yield Input(self.value, id="prompt-input", select_on_focus=True)
            yield Label("", id="prompt-problem", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok_label, id="prompt-ok", variant="primary")
                yield Button("Cancel", id="prompt-cancel")

    def on_mount(self) -> None:
        self.query_one("#prompt-box").border_title = self.title_text
        self.query_one("#prompt-input", Input).focus()

    def _submit(self) -> None:
        answer = self.query_one("#prompt-input", Input).value.strip()
        problem = "Please type something." if not answer and not self.allow_empty else None
        if problem is None and self.check is not None:
            problem = self.check(answer)
        if problem:
            self.query_one("#prompt-problem", Label).update(f"✖ {problem}")
            return
        self.dismiss(answer)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "prompt-ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
