"""After a modal closes, focus is back where the user was (not silently in the editor)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from bark_tui.screens.help import HelpScreen
from bark_tui.screens.prompt import PromptScreen
from bark_tui.screens.settings import SettingsScreen

from .test_app_support import fresh_home, make_app, wait_until


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


async def _closes_back_to(pilot, app, opener, modal_type, widget) -> None:
    widget.focus()
    await pilot.pause()
    assert app.focused is widget
    await opener()
    await wait_until(pilot, lambda: isinstance(app.screen, modal_type), 10, modal_type.__name__)
    assert app.focused is not widget  # the modal has the focus while it is open
    await pilot.press("escape")
    await wait_until(pilot, lambda: app.screen is app.main, 10, "the modal to close")
    await pilot.pause()
    assert app.focused is widget, (modal_type.__name__, app.focused)


async def test_focus_returns_after_help_settings_palette_and_a_prompt(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        voices = app.main.query_one("#voice-table", DataTable)
        history = app.main.query_one("#history", DataTable)

        async def help_key():
            await pilot.press("f1")

        async def settings():
            app.action_settings()

        async def import_voice():
            app.action_import_voice()

        await _closes_back_to(pilot, app, help_key, HelpScreen, voices)
        await _closes_back_to(pilot, app, settings, SettingsScreen, history)
        await _closes_back_to(pilot, app, import_voice, PromptScreen, voices)
        # the command palette is a modal too
        from textual.command import CommandPalette

        async def palette():
            await pilot.press("ctrl+p")

        await _closes_back_to(pilot, app, palette, CommandPalette, history)
