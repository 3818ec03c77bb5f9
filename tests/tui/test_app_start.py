"""The first screen: fast (no torch), focused, complete at 100×30 and 120×40."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, TextArea

from bark_engine.options import EngineConfig
from bark_tui.core import locations
from bark_tui.core.settings import load_settings
from bark_tui.screens.help import HelpScreen
from bark_tui.screens.settings import SettingsScreen
from bark_tui.studio.app import BarkApp
from bark_tui.widgets.studio_header import RANDOM_FLAG

from .test_app_support import fresh_home, has_message, make_app, type_text, write_settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def test_first_screen_needs_no_torch(tmp_path):
    """The app draws its whole first screen before torch (or transformers) is imported."""
    code = (
        "import asyncio, sys\n"
        "from bark_engine.options import EngineConfig\n"
        "from bark_tui.studio.app import BarkApp\n"
        "async def main():\n"
        f"    app = BarkApp(EngineConfig(models={str(tmp_path)!r}))\n"
        "    async with app.run_test(size=(120, 40)) as pilot:\n"
        "        await pilot.pause()\n"
        "        assert app.main.query_one('#voice-table').row_count > 100\n"
        "        print('torch' in sys.modules, 'transformers' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    env = {"BARK_TUI_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(Path(__file__).parents[2]), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


async def test_opens_with_editor_focused_and_flags_random_weights(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.focused, TextArea) and app.focused.id == "script"
        header = app.main.header
        assert header.random_weights is True  # known from the marker file, before loading
        assert str(app.main.query_one("#header-random").render()) == RANDOM_FLAG
        assert app.host.engine is None  # nothing loaded at start
        # the voice list holds the v2 presets and the "no voice" entry
        voices = app.main.voices
        assert "v2/en_speaker_6" in voices.visible_keys()
        assert voices.selected.key == "v2/en_speaker_6"  # the settings' default voice
        await type_text(pilot, "Hello there")
        assert app.main.editor.text == "Hello there"
        status = str(app.main.query_one("#script-status").render())
        assert status.startswith("~") and "tokens" in status and "≈" in status


async def test_no_random_flag_for_a_hub_repo(home):
    app = make_app("suno/bark")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not app.main.query_one("#header-random").display


async def test_everything_fits_at_100x30(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.main
        for selector in ("#header", "#script", "#script-status", "#voice-filter", "#voice-table",
                         "#voice-selected", "#stage-semantic", "#stage-decode",
                         "#history", "#waveform", "#footer"):
            widget = screen.query_one(selector)
            region = widget.region
            assert region.height >= 1 and region.width >= 10, selector
            assert region.bottom <= 30 and region.right <= 100, selector
        assert screen.query_one("#history", DataTable).region.height >= 4
        # the compact layout (under 32 rows) leaves out the settings line and an empty queue
        assert screen.has_class("-short")
        assert not screen.query_one("#gen-queue").display
        assert not screen.query_one("#gen-settings").display


async def test_keys_work_while_typing(home, tiny_models):
    """Editor focused: ctrl+g on an empty script warns; f1 opens help; ctrl+q quits."""
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert has_message(app, "script is empty")
        assert not app.queue.busy
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one("#help-text").source
        for cue in ("[laughs]", "[sighs]", "[music]", "♪", "…", "CAPITALS", "[MAN]", "[WOMAN]",
                    "ctrl+g", "ctrl+o"):
            assert cue in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        assert isinstance(app.focused, TextArea)
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0


async def test_token_status_warns_before_and_over_the_limit(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        area = app.main.editor.area
        area.insert("word " * 105)  # the estimate counts "word" as 2 tokens, until loaded
        await pilot.pause()
        status = app.main.query_one("#script-status")
        assert "near the 256-token limit" in str(status.render())
        assert status.has_class("-warning")
        area.insert("word " * 30)
        await pilot.pause()
        assert "OVER the 256-token limit" in str(status.render())
        assert status.has_class("-error")


async def test_filter_and_pick_a_voice(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        voices = app.main.voices
        app.main.query_one("#voice-filter").focus()
        await type_text(pilot, "female")
        keys = [k for k in voices.visible_keys() if k.startswith("v2/")]
        assert keys and all(voices.entry(k).gender == "female" for k in keys)
        for _ in range(len("female")):
            await pilot.press("backspace")
        await type_text(pilot, "en_speaker_9")
        assert [k for k in voices.visible_keys() if k.startswith("v2/")] == ["v2/en_speaker_9"]
        await pilot.press("enter")
        await pilot.pause()
        assert voices.selected.key == "v2/en_speaker_9"
        label = str(app.main.query_one("#voice-selected").render())
        assert "v2/en_speaker_9" in label and "female" in label
        assert "voice v2/en_speaker_9" in str(app.main.query_one("#gen-settings").render())


async def test_settings_screen_saves_and_persists(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p")
        await type_text(pilot, "Settings")
        await pilot.press("enter")
        await wait_until_screen(pilot, app, SettingsScreen)
        screen = app.screen
        temp = screen.query_one("#set-text_temp")
        temp.value = "abc"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)  # refused, still open
        assert "Text temperature must be a number" in str(
            screen.query_one("#settings-problem").render())
        temp.value = "0.6"
        screen.query_one("#set-min_eos_p").value = "0.05"
        screen.query_one("#set-seed_mode").value = "random"
        screen.query_one("#set-output_dir").value = str(home / "out")
        screen.query_one("#set-size").value = "large"
        screen.query_one("#set-dtype").value = "bfloat16"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is app.main
        assert app.main.header.model_size == "large"
        assert app.host.config.dtype == "bfloat16" and "bfloat16" in app.main.header.device
        assert "T 0.6/0.7/0.5" in str(app.main.query_one("#gen-settings").render())
    saved, warnings = load_settings(locations.settings_path())
    assert warnings == []
    assert (saved.text_temp, saved.min_eos_p, saved.seed_mode) == (0.6, 0.05, "random")
    assert saved.output_dir == str(home / "out") and saved.size == "large"
    assert saved.dtype == "bfloat16"


async def test_settings_buttons_cancel_and_save(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        for button, temp in (("#settings-cancel", "0.3"), ("#settings-save", "0.4")):
            await pilot.press("ctrl+p")
            await type_text(pilot, "Settings")
            await pilot.press("enter")
            await wait_until_screen(pilot, app, SettingsScreen)
            app.screen.query_one("#set-text_temp").value = temp
            app.screen.query_one(button).press()
            await pilot.pause()
            assert app.screen is app.main
    saved, _ = load_settings(locations.settings_path())
    assert saved.text_temp == 0.4  # the cancelled 0.3 never reached the file
    assert saved.models is None  # the run's --models was not changed in the form: not saved


async def wait_until_screen(pilot, app, kind) -> None:
    from .test_app_support import wait_until

    await wait_until(pilot, lambda: isinstance(app.screen, kind), 10, kind.__name__)
    await pilot.pause()


async def test_bad_settings_file_is_a_notice_not_a_crash(home, tiny_models):
    locations.settings_path().write_text('{"text_temp": "hot", "size": "huge"}')
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert has_message(app, "text_temp")
        assert has_message(app, "size")
        assert app.settings.text_temp == 0.7


def test_write_settings_helper_is_used(home):
    assert load_settings(locations.settings_path())[0].fixed_seed == 1234
    write_settings(fixed_seed=5)
    assert load_settings(locations.settings_path())[0].fixed_seed == 5


async def test_a_command_line_precision_survives_saving_settings(home, tiny_models):
    """`bark-tui --dtype bfloat16` with "auto" saved: the form shows bfloat16, and
    saving it (for any other change) keeps bfloat16 for this run rather than falling
    back, while the file keeps "auto": a one-off flag never becomes a setting."""
    write_settings(dtype="auto")
    app = BarkApp(EngineConfig(models=str(tiny_models), dtype="bfloat16"), cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.host.config.dtype == "bfloat16"
        await pilot.press("ctrl+p")
        await type_text(pilot, "Settings")
        await pilot.press("enter")
        await wait_until_screen(pilot, app, SettingsScreen)
        assert app.screen.query_one("#set-dtype").value == "bfloat16"
        app.screen.query_one("#set-text_temp").value = "0.65"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is app.main
        assert app.host.config.dtype == "bfloat16" and "bfloat16" in app.main.header.device
    saved = load_settings(locations.settings_path())[0]
    assert saved.dtype == "auto" and saved.text_temp == 0.65


async def test_a_refused_save_is_a_notice_even_on_a_short_terminal(home, tiny_models):
    """At 110×34 the form runs past the screen, so its problem line is out of sight: the
    refusal is also a notice."""
    app = make_app(tiny_models)
    async with app.run_test(size=(110, 34)) as pilot:
        app.action_settings()
        await wait_until_screen(pilot, app, SettingsScreen)
        app.screen.query_one("#set-server").value = "ftp://nowhere"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)  # nothing saved, the form stays
        assert has_message(app, "Not saved: not a server URL: 'ftp://nowhere'")
