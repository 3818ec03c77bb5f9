"""The help screen lists every key the studio answers to, read from the real bindings."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.screen import Screen
from textual.widgets import Markdown

from bark_engine.options import EngineConfig
from bark_tui.screens.error import ErrorScreen
from bark_tui.screens.help import TEXTUAL_ACTIONS, HelpScreen
from bark_tui.screens.prompt import PromptScreen
from bark_tui.screens.settings import SettingsScreen
from bark_tui.screens.speakers import SpeakersScreen
from bark_tui.screens.takes_compare import TakesCompareScreen
from bark_tui.studio.app import BarkApp

from .test_app_support import fresh_home


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def declared_by_studio(node: object, key: str, action: str) -> bool:
    """Declared by one of our classes, by Textual's App/Screen (quit, tab, copy), or bound
    on the app itself (the command palette's key is added there, not declared)?

    A Textual widget's own keys (a text area's editing keys, a table's
    arrows) are the widget's business and stay out of the help.
    """
    if isinstance(node, App):
        return True
    for cls in type(node).__mro__:
        if cls.__module__.startswith("bark_tui") or cls in (App, Screen):
            for binding in vars(cls).get("BINDINGS", []):
                keys = [k.strip() for k in binding.key.split(",")]
                if key in keys and binding.action == action:
                    return True
    return False


def help_text(binding) -> str:
    return TEXTUAL_ACTIONS.get(binding.action) or binding.tooltip or binding.description


async def test_every_binding_of_the_app_is_in_help(home):
    app = BarkApp(EngineConfig(models="/models/bark"), cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        main = app.main
        live: dict[str, object] = {}
        for widget in (main.editor.area, main.history, main.voices.query_one("DataTable")):
            widget.focus()
            await pilot.pause()
            for key, active in app.active_bindings.items():
                if not active.binding.system and declared_by_studio(
                        active.node, key, active.binding.action):
                    live[key] = active.binding
        assert {"ctrl+g", "ctrl+t", "ctrl+p", "f1", "ctrl+q", "tab", "g", "d", "delete"} <= set(live)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        page = app.screen.query_one("#help-text", Markdown).source
        rows = {line for line in page.splitlines() if line.startswith("| `")}
        for key, binding in live.items():
            shown = binding.key_display or key  # "/" for slash
            assert any(f"`{shown}`" in row and help_text(binding) in row for row in rows), key
        assert "slash" in live  # the History filter, shown as `/`
        # the dialogs' keys (their screens are not open here): each has its row
        for cls in (TakesCompareScreen, SettingsScreen, SpeakersScreen, PromptScreen,
                    ErrorScreen):
            for binding in cls.BINDINGS:
                for key in binding.key.split(","):
                    assert any(f"`{key}`" in row for row in rows), (cls.__name__, key)
