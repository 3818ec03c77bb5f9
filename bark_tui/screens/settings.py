"""The settings screen: model source, engine server, size, device, precision, sampling,
seeds, output, theme.

The form edits a copy; nothing changes until Save, and Save refuses values
``validate_settings`` rejects, naming the field, so a typo never reaches the
engine or the file.
"""

from __future__ import annotations

import dataclasses

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from ..core.guard import GuardedHandlers
from ..core.settings import DTYPES, SEED_MODES, SIZES, Settings, validate_settings
from .form import SettingsForm

DEVICES = ("auto", "cpu", "cuda", "mps")
NUMBER_FIELDS = ("text_temp", "waveform_temp", "fine_temp", "min_eos_p")
LABELS = {
    "models": "Model source",
    "size": "Model size",
    "device": "Device",
    "dtype": "Precision",
    "text_temp": "Text temperature",
    "waveform_temp": "Waveform temperature",
    "fine_temp": "Fine temperature",
    "min_eos_p": "min_eos_p",
    "seed_mode": "Seed mode",
    "fixed_seed": "Fixed seed",
    "output_dir": "Output folder",
    "theme": "Theme",
    "server": "Engine server",
    "server_key_file": "Server key file",
    "ray": "Ray cluster",
}
HINTS = {
    "models": "folder or hub repo; empty: suno/bark",
    "dtype": "auto: bf16 if faster · int8: fastest",
    "text_temp": "semantic stage; 0 = greedy",
    "waveform_temp": "coarse stage; 0 = greedy",
    "fine_temp": "fine stage; 0 = argmax",
    "min_eos_p": "stop once EOS is this likely (0–1)",
    "fixed_seed": "used when the seed mode is fixed",
    "output_dir": "where Save suggests writing",
    "server": "a bark-tui serve; empty: here",
    "server_key_file": "only if the server wants a key",
    "ray": "long scripts: local, auto, ray://…",
}


class SettingsScreen(GuardedHandlers, SettingsForm, ModalScreen[Settings | None]):
    """Returns the new settings on Save, None on Cancel."""

    FORM_ID = "settings"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close the dialog; nothing is saved or changed"),
        Binding("ctrl+s", "save", "Save", tooltip="Save (Settings, Speakers) and close"),
    ]

    def __init__(self, settings: Settings, themes: list[str], default_output: str) -> None:
        super().__init__()
        self.original = settings
        self.themes = themes if settings.theme in themes else [settings.theme, *themes]
        self.default_output = default_output

    def _row(self, name: str, widget) -> ComposeResult:
        yield Label(LABELS[name], classes="field-label")
        yield widget
        yield Label(HINTS.get(name, ""), classes="field-hint", markup=False)

    def compose(self) -> ComposeResult:
        s = self.original
        devices = list(DEVICES) if s.device in DEVICES else [s.device, *DEVICES]
        with Vertical(id="settings-box"):
            with VerticalScroll(id="settings-scroll"), Grid(id="settings-grid"):
                yield from self._row(
                    "models",
                    Input(s.models or "", placeholder="suno/bark", id="set-models", compact=True),
                )
                yield from self._row(
                    "server",
                    Input(s.server or "", placeholder="this machine", id="set-server",
                          compact=True),
                )
                yield from self._row(
                    "server_key_file",
                    Input(s.server_key_file or "", placeholder="none", id="set-server_key_file",
                          compact=True),
                )
                yield from self._row(
                    "ray",
                    Input(s.ray or "", placeholder="off: this machine", id="set-ray",
                          compact=True),
                )
                yield from self._row(
                    "size",
                    Select([(x, x) for x in SIZES], value=s.size, allow_blank=False,
                           id="set-size", compact=True),
                )
                yield from self._row(
                    "device",
                    Select([(x, x) for x in devices], value=s.device, allow_blank=False,
                           id="set-device", compact=True),
                )
                yield from self._row(
                    "dtype",
                    Select([(x, x) for x in DTYPES], value=s.dtype, allow_blank=False,
                           id="set-dtype", compact=True),
                )
                for name in NUMBER_FIELDS:
                    yield from self._row(
                        name,
                        Input(f"{getattr(s, name):g}", type="number", id=f"set-{name}",
                              compact=True),
                    )
                yield from self._row(
                    "seed_mode",
                    Select([(x, x) for x in SEED_MODES], value=s.seed_mode, allow_blank=False,
                           id="set-seed_mode", compact=True),
                )
                yield from self._row(
                    "fixed_seed",
                    Input(str(s.fixed_seed), type="integer", id="set-fixed_seed", compact=True),
                )
                yield from self._row(
                    "output_dir",
                    Input(s.output_dir or "", placeholder=self.default_output,
                          id="set-output_dir", compact=True),
                )
                yield from self._row(
                    "theme",
                    Select([(x, x) for x in self.themes], value=s.theme, allow_blank=False,
                           id="set-theme", compact=True),
                )
            yield Label("", id="settings-problem", markup=False)
            yield Label(
                "Source, server, Ray, size, device and precision apply from the next "
                "generation.",
                id="settings-note",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="settings-save", variant="primary")
                yield Button("Cancel", id="settings-cancel")

    def on_mount(self) -> None:
        box = self.query_one("#settings-box")
        box.border_title = "Settings"
        box.border_subtitle = "ctrl+s save · escape cancel"
        self.query_one("#set-models", Input).focus()

    def _value(self, name: str) -> str:
        widget = self.query_one(f"#set-{name}")
        if isinstance(widget, Select):
            return str(widget.value)
        assert isinstance(widget, Input)
        return widget.value.strip()

    def collect(self) -> tuple[Settings | None, list[str]]:
        """Build settings from the form, or say which fields are wrong."""
        problems: list[str] = []
        values: dict[str, object] = {}
        for name in NUMBER_FIELDS:
            try:
                values[name] = float(self._value(name))
            except ValueError:
                problems.append(f"{LABELS[name]} must be a number")
        try:
            values["fixed_seed"] = int(self._value("fixed_seed") or "0")
        except ValueError:
            problems.append("Fixed seed must be a whole number")
        if problems:
            return None, problems
        new = dataclasses.replace(
            self.original,
            models=self._value("models") or None,
            server=self._value("server") or None,
            server_key_file=self._value("server_key_file") or None,
            ray=self._value("ray") or None,
            size=self._value("size"),
            device=self._value("device"),
            dtype=self._value("dtype"),
            seed_mode=self._value("seed_mode"),
            output_dir=self._value("output_dir") or None,
            theme=self._value("theme"),
            **values,  # type: ignore[arg-type]
        )
        problems = validate_settings(new)
        return (None, problems) if problems else (new, [])
