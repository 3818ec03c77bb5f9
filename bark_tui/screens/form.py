"""Save and cancel for the modal settings forms (settings, speakers and long scripts)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Button, Label


class SettingsForm:
    """Mixed into a `ModalScreen[Settings | None]` that defines `collect()`.

    Save dismisses with the collected settings, or shows why they were refused
    in the Label `#<FORM_ID>-problem`; cancel dismisses with None; the button
    `#<FORM_ID>-save` saves and any other button cancels.
    """

    FORM_ID = ""

    def collect(self) -> tuple[Any, list[str]]:
        raise NotImplementedError

    def action_save(self) -> None:
        screen: Any = self
        new, problems = self.collect()
        if new is None:
            label = screen.query_one(f"#{self.FORM_ID}-problem", Label)
            label.update("✖ " + "; ".join(problems))
            # a short terminal cuts the form off above that label: say it as a notice too
            screen.notify("Not saved: " + "; ".join(problems), severity="error", markup=False)
            return
        screen.dismiss(new)

    def action_cancel(self) -> None:
        screen: Any = self
        screen.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == f"{self.FORM_ID}-save":
            self.action_save()
        else:
            self.action_cancel()
