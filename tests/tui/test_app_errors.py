"""Bad input on purpose: each case is one clear notice, and nothing is lost."""

from __future__ import annotations

import numpy as np
import pytest
from textual import events

from bark_tui.core import locations
from bark_tui.screens.error import ErrorScreen
from bark_tui.screens.prompt import PromptScreen

from .test_app_support import (
    fresh_home,
    generate_take,
    has_message,
    make_app,
    messages,
    type_text,
    wait_for_message,
    wait_until,
    write_settings,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def problem(app) -> str:
    box = app.screen.query("#prompt-problem") or app.screen.query("#save-problem")
    return str(box.first().render())


async def run_palette(pilot, app, command: str) -> None:
    await pilot.press("ctrl+p")
    await type_text(pilot, command)
    await pilot.press("enter")
    await pilot.pause()


async def test_corrupt_voice_file_is_refused(home, tiny_models, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a real archive")
    not_npz = tmp_path / "notes.npz"
    np.savez(not_npz, something=np.arange(3))
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        before = app.main.voices.visible_keys()
        await run_palette(pilot, app, "Import voice file")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "the dialog")
        app.screen.query_one("#prompt-input").value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)  # still open, the path still there
        assert "broken.npz" in problem(app)
        assert app.screen.query_one("#prompt-input").value == str(bad)
        app.screen.query_one("#prompt-input").value = str(not_npz)
        await pilot.press("enter")
        await pilot.pause()
        assert "missing semantic_prompt" in problem(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        assert app.main.voices.visible_keys() == before
        assert not list(locations.user_voices_dir().glob("*.npz"))


async def test_import_a_good_voice_file(home, tiny_models, tmp_path):
    src = tiny_models / "speaker_embeddings" / "v2"
    good = tmp_path / "friend.npz"
    np.savez(good, **{f"{k}_prompt": np.load(src / f"en_speaker_9_{k}_prompt.npy")
                      for k in ("semantic", "coarse", "fine")})
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_palette(pilot, app, "Import voice file")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "the dialog")
        app.screen.query_one("#prompt-input").value = str(good)
        await pilot.press("enter")
        await wait_for_message(pilot, app, "Imported friend.npz")
        key = str(locations.user_voices_dir() / "friend.npz")
        assert key in app.main.voices.visible_keys()
        assert app.main.voices.entry(key).mine


async def test_output_folder_problems_keep_the_dialog(home, tiny_models, tmp_path):
    write_settings(seed_mode="fixed", fixed_seed=3, output_dir=str(tmp_path / "gone"))
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Keep me.")
        take = await generate_take(pilot, app)
        await pilot.press("ctrl+s")
        from bark_tui.screens.save_audio import SaveAudioScreen

        await wait_until(pilot, lambda: isinstance(app.screen, SaveAudioScreen), 10,
                         "the dialog")
        dialog = app.screen
        field = dialog.query_one("#save-path")
        assert field.value.startswith(str(tmp_path / "gone"))
        await pilot.press("enter")
        await pilot.pause()
        assert "does not exist" in problem(app) and str(tmp_path / "gone") in problem(app)
        field.value = "/sys/take.wav"  # a folder nobody may write, not even root
        await pilot.press("enter")
        await wait_until(pilot, lambda: not dialog.busy, 10, "the write to fail")
        await pilot.pause()
        assert "Could not write /sys/take.wav" in problem(app)
        assert "ermission denied" in problem(app)
        field.value = str(tmp_path / "fine")  # the suffix is added
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.main, 10, "the dialog to close")
        assert (tmp_path / "fine.wav").is_file()
        assert take.wav_exists  # the take itself was never at risk


async def test_deleted_wav_is_shown_missing_and_reported(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Gone soon.")
        take = await generate_take(pilot, app)
        take.wav_path.unlink()
        app._audio.clear()  # as after a restart: nothing cached
        app.main.refresh_history()
        await pilot.pause()
        cell = app.main.history.get_cell
        assert str(cell(str(take.id), "duration")) == "missing"
        assert str(cell(str(take.id), "note")) == "WAV MISSING"
        assert "WAV MISSING" in str(app.main.waveform.render())
        await pilot.press("ctrl+r")
        await wait_for_message(pilot, app, "is missing")
        assert app.playing_take is None
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is app.main  # no dialog for audio that is not there
        # its tokens survive, so it can still become a voice
        app.main.history.focus()
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "the dialog")
        app.screen.query_one("#prompt-input").value = "rescued"
        await pilot.press("enter")
        await pilot.pause()
        assert (locations.user_voices_dir() / "rescued.npz").is_file()
        assert app.store.get(take.id) is not None


async def test_script_over_the_limit_is_refused_and_kept(home, tiny_models):
    app = make_app(tiny_models)
    long_text = "Tell me more about it, please. " * 45  # ~300 tokens
    async with app.run_test(size=(120, 40)) as pilot:
        app.post_message(events.Paste(long_text))  # as the terminal delivers a paste
        await pilot.pause()
        assert "OVER the 256-token limit" in str(app.main.query_one("#script-status").render())
        # before the models load the count is an estimate: the engine has the last word
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, app, "Bark reads at most 256", 90)
        await wait_until(pilot, lambda: not app.queue.busy, 10, "the queue to settle")
        assert app.main.editor.text == long_text
        assert app.store.count() == 0
        assert not isinstance(app.screen, ErrorScreen)
        # once loaded, the real count is shown and generate refuses at once
        await wait_until(pilot, lambda: app.main.editor.exact, 30, "the real count")
        app.clear_notifications()
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not app.queue.busy
        assert has_message(app, "Shorten it — your text stays in the editor")


async def test_missing_weights_offline_says_the_way_out(home, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Hello.")
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, app, "bark-tui download", 60)
        text = next(m for m in messages(app) if "bark-tui download" in m)
        assert "--models DIR" in text and "Traceback" not in text
        assert not isinstance(app.screen, ErrorScreen)
        assert app.main.editor.text == "Hello."
        assert "failed" in str(app.main.query_one("#gen-title").render())


async def test_unexpected_errors_open_the_traceback_modal(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        def boom() -> None:
            raise RuntimeError("a bug in a worker")

        app.run_worker(boom, name="demo", thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen)
                         and app.screen.query("#error-details"), 10, "the modal")
        details = app.screen.query_one("#error-details").text
        assert "RuntimeError: a bug in a worker" in details and "Traceback" in details
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
