"""Long scripts and dialogue: who speaks with which voice, and how segments are made.

Each speaker found in the script (and each one already in the map) gets a
voice picker; "as written" leaves the speaker to the script's own voice
lines or the selected voice. The same form holds the long-script switches:
the long-form profile, voice continuity and playing while generating. Like
the settings screen it edits a copy and returns it on Save.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select

from bark_engine.config import MAX_BATCH
from bark_engine.options import LONG_FORM_MIN_EOS_P, LONG_FORM_TEXT_TEMP

from ..core.guard import GuardedHandlers
from ..core.settings import CONTINUITY_MODES, Settings, validate_settings
from ..widgets.tick_box import TickBox
from .form import SettingsForm

CONTINUITY_LABELS = {
    "fixed": "fixed: each segment starts from its voice preset",
    "chain": "chain: each segment continues the previous take",
}


def speaker_id(name: str) -> str:
    """A widget id for a speaker name (names may hold spaces and dots)."""
    return "spk-" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in name)


class SpeakersScreen(GuardedHandlers, SettingsForm, ModalScreen[Settings | None]):
    """Returns the new settings on Save, None on Cancel."""

    FORM_ID = "speakers"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, settings: Settings, speakers: list[str],
                 voices: list[tuple[str, str]]) -> None:
        """``speakers``: names found in the script; ``voices``: (label, value) choices."""
        super().__init__()
        self.original = settings
        mapped = {k.casefold(): k for k in settings.speakers}
        names = list(dict.fromkeys([*speakers, *(n for n in settings.speakers
                                                if n.casefold() not in
                                                {s.casefold() for s in speakers})]))
        self.speakers = names
        self.lookup = {n: settings.speakers.get(mapped.get(n.casefold(), n)) for n in names}
        self.voices = voices

    def _options(self, current: str | None) -> list[tuple[str, str]]:
        values = {v for _l, v in self.voices}
        if current and current not in values:  # keep a mapped voice the list lacks
            return [(f"{current} (not found)", current), *self.voices]
        return self.voices

    def compose(self) -> ComposeResult:
        s = self.original
        with VerticalScroll(id="speakers-box"):
            if not self.speakers:
                yield Label("No speakers yet: write lines such as “Ann: Hello.” in the script.",
                            classes="field-hint")
            with Grid(id="speakers-grid"):
                for name in self.speakers:
                    current = self.lookup.get(name)
                    yield Label(name, classes="field-label", markup=False)
                    yield Select(self._options(current), value=current or Select.NULL,
                                 prompt="as written", id=speaker_id(name), compact=True)
                yield Label("Continuity", classes="field-label")
                yield Select([(CONTINUITY_LABELS[m], m) for m in CONTINUITY_MODES],
                             value=s.continuity, allow_blank=False, id="set-continuity",
                             compact=True)
                yield Label("Reset every", classes="field-label")
                yield Input(str(s.reset_every), type="integer", id="set-reset_every",
                            placeholder="0 = never", compact=True)
                yield Label("Segments at once", classes="field-label")
                yield Input(str(s.batch), type="integer", id="set-batch",
                            placeholder=f"0 = auto (1..{MAX_BATCH})", compact=True)
                yield Label("Lexicon file", classes="field-label")
                yield Input(s.lexicon_file or "", id="set-lexicon_file", compact=True,
                            placeholder="a TOML of how to say names (ctrl+p → Edit lexicon)")
            yield TickBox(f"Long scripts: split long paragraphs; text temperature "
                           f"{LONG_FORM_TEXT_TEMP}, min_eos_p {LONG_FORM_MIN_EOS_P}", s.long_form,
                           id="set-long_form", compact=True)
            yield TickBox("Play segment 1 while the rest is made", s.play_while_generating,
                           id="set-play_while_generating", compact=True)
            yield TickBox("Read numbers aloud (15% → fifteen percent, in the voice's language)",
                           s.read_numbers, id="set-read_numbers", compact=True)
            yield Label("", id="speakers-problem", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="speakers-save", variant="primary")
                yield Button("Cancel", id="speakers-cancel")

    DEFAULT_CSS = """
    SpeakersScreen { align: center middle; }
    #speakers-box {
        width: 90; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    #speakers-grid { grid-size: 2; grid-columns: 24 1fr; height: auto; grid-gutter: 0 1; }
    #speakers-box .dialog-buttons { height: auto; margin-top: 1; }
    """

    def on_mount(self) -> None:
        box = self.query_one("#speakers-box")
        box.border_title = "Long scripts & speakers"
        box.border_subtitle = "ctrl+s save · escape cancel"
        self.query(Select).first().focus()  # the first speaker (or continuity)

    def collect(self) -> tuple[Settings | None, list[str]]:
        speakers = {k: v for k, v in self.original.speakers.items()
                    if k.casefold() not in {n.casefold() for n in self.speakers}}
        for name in self.speakers:
            value = self.query_one(f"#{speaker_id(name)}", Select).value
            if isinstance(value, str) and value:
                speakers[name] = value
        try:
            reset = int(self.query_one("#set-reset_every", Input).value.strip() or "0")
        except ValueError:
            return None, ["Reset every must be a whole number (0 = never)"]
        try:
            batch = int(self.query_one("#set-batch", Input).value.strip() or "0")
        except ValueError:
            return None, [f"Segments at once must be a whole number (0 = auto, 1..{MAX_BATCH})"]
        lexicon = self.query_one("#set-lexicon_file", Input).value.strip() or None
        if lexicon is not None:
            from bark_engine.errors import BarkError

            from ..text.lexicon import load_lexicon

            try:
                load_lexicon(Path(lexicon).expanduser())
            except BarkError as exc:
                return None, [str(exc)]
        new = dataclasses.replace(
            self.original, speakers=speakers, reset_every=reset, batch=batch,
            lexicon_file=lexicon,
            read_numbers=self.query_one("#set-read_numbers", Checkbox).value,
            continuity=str(self.query_one("#set-continuity", Select).value),
            long_form=self.query_one("#set-long_form", Checkbox).value,
            play_while_generating=self.query_one("#set-play_while_generating", Checkbox).value,
        )
        problems = validate_settings(new)
        return (None, problems) if problems else (new, [])
