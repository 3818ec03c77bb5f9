"""The Save dialog for a take: where, which file type, which mastering, trimming.

It offers the formats `bark-tui render --out` writes (M4B/M4A only where PyAV
is installed) and remembers the last choice in the settings. The path's
extension and the type list follow each other. The file is finished in a
thread (mastering a long take takes a moment); a problem (a folder that does
not exist, a name that exists, audio too silent to master) is shown in the
dialog, which stays open with the answer in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select

from ..core.guard import GuardedHandlers
from ..finish.formats import FORMATS
from ..finish.loudness import MASTER_CHOICES, MASTERINGS
from ..widgets.tick_box import TickBox


@dataclass(frozen=True)
class SaveChoice:
    """What the dialog settled: the file, its type (extension without the dot), mastering."""

    path: Path
    ext: str
    master: str
    trim: bool
    summary: str  # what the notice says (the measured loudness when mastered)


Save = Callable[[Path, str, bool], str]  # (path, master, trim) -> summary; raises on failure
Check = Callable[[str, str], tuple[Path | None, str | None]]  # (answer, ext) -> path | problem


def format_options(m4b: bool) -> list[tuple[str, str]]:
    rows = []
    for fmt in FORMATS:
        if fmt.sf_format is None and not m4b:
            continue
        for ext in fmt.extensions[:1] if fmt.name != "AAC" else fmt.extensions:
            rate = f"{fmt.default_rate / 1000:g} kHz"
            kbps = f", {fmt.default_kbps}k" if fmt.default_kbps else ""
            label = {".m4b": "M4B audiobook (AAC", ".m4a": "M4A (AAC"}.get(ext, fmt.name + " (")
            rows.append((f"{label}{'' if label.endswith('(') else ', '}{rate}{kbps})",
                         ext[1:]))
    return rows


def master_options() -> list[tuple[str, str]]:
    return [(MASTERINGS[name].summary if name in MASTERINGS else "none: level as made", name)
            for name in MASTER_CHOICES]


class SaveAudioScreen(GuardedHandlers, ModalScreen[SaveChoice | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, question: str, path: str, ext: str, master: str,
                 trim: bool, check: Check, save: Save, m4b: bool) -> None:
        super().__init__()
        self.title_text, self.question = title, question
        self.formats = format_options(m4b)
        known = {value for _, value in self.formats}
        self.ext = ext if ext in known else "wav"
        self.path = str(Path(path).with_suffix(f".{self.ext}"))
        self.master, self.trim = master, trim
        self.check, self.save = check, save
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box", classes="dialog"):
            yield Label(self.question, id="save-question", markup=False)
            yield Input(self.path, id="save-path", select_on_focus=False)
            yield Label("File type", classes="save-label")
            yield Select(self.formats, value=self.ext, allow_blank=False, id="save-format")
            yield Label("Mastering", classes="save-label")
            yield Select(master_options(), value=self.master, allow_blank=False,
                         id="save-master")
            yield TickBox("Trim silence and breaths at the ends", self.trim, id="save-trim")
            yield Label("", id="save-problem", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save-ok", variant="primary")
                yield Button("Cancel", id="save-cancel")

    def on_mount(self) -> None:
        self.query_one("#save-box").border_title = self.title_text
        self.query_one("#save-path", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id != "save-format" or event.value == Select.BLANK:
            return
        self.ext = str(event.value)
        box = self.query_one("#save-path", Input)
        path = Path(box.value.strip() or self.path)
        if path.suffix.lower() != f".{self.ext}":
            box.value = str(path.with_suffix(f".{self.ext}") if path.suffix else
                            path.with_name(path.name + f".{self.ext}"))

    def on_input_changed(self, event: Input.Changed) -> None:
        """A typed extension of a known type picks that type in the list."""
        event.stop()
        ext = Path(event.value.strip()).suffix.lower()[1:]
        if ext and ext != self.ext and ext in {value for _, value in self.formats}:
            self.ext = ext
            self.query_one("#save-format", Select).value = ext

    def _problem(self, text: str) -> None:
        self.query_one("#save-problem", Label).update(f"✖ {text}" if text else "")

    def _submit(self) -> None:
        if self.busy:
            return
        answer = self.query_one("#save-path", Input).value.strip()
        if not answer:
            self._problem("Please type a file name.")
            return
        path, problem = self.check(answer, self.ext)
        if path is None:
            self._problem(problem or "Cannot save there.")
            return
        master = str(self.query_one("#save-master", Select).value)
        trim = self.query_one("#save-trim", Checkbox).value
        self.busy = True
        self.query_one("#save-ok", Button).disabled = True
        self._problem("")
        self.query_one("#save-problem", Label).update("Saving…")
        self._write(path, master, trim)

    @work(thread=True, exclusive=True, group="save-audio")
    def _write(self, path: Path, master: str, trim: bool) -> None:
        try:
            summary = self.save(path, master, trim)
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, which stays open
            self.app.call_from_thread(self._failed, f"Could not write {path}: {exc}")
            return
        choice = SaveChoice(path, path.suffix.lower()[1:], master, trim, summary)
        self.app.call_from_thread(self.dismiss, choice)

    def _failed(self, text: str) -> None:
        self.busy = False
        self.query_one("#save-ok", Button).disabled = False
        self._problem(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save-ok":
            self._submit()
        elif not self.busy:
            self.dismiss(None)

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)
