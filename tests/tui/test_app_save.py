"""Save as WAV: a folder gets the default name inside it, a relative path lands where it
says (and the notice shows the absolute path), and a long refusal wraps in the dialog."""

from __future__ import annotations

import os

import pytest

from bark_engine.audio import read_wav

from .test_app_generate import answer_prompt
from .test_app_support import fresh_home, generate_take, has_message, make_app, type_text


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


async def test_save_into_a_folder_and_to_a_relative_path(home, tiny_models, tmp_path,
                                                         monkeypatch):
    from bark_tui.screens.take_actions import wav_file_name

    folder = tmp_path / "exports"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Save me.")
        take = await generate_take(pilot, app)
        await pilot.press("ctrl+s")
        await answer_prompt(pilot, app, str(folder))
        target = folder / wav_file_name(take)
        assert read_wav(target)[1] == 24_000
        assert has_message(app, f"Saved {target}")
        await pilot.press("ctrl+s")
        await answer_prompt(pilot, app, "exports/second")
        assert (folder / "second.wav").exists()
        assert has_message(app, f"Saved {folder / 'second.wav'}")
        # a refusal long enough to need two lines is shown whole
        deep = tmp_path / ("a-rather-long-folder-name-" * 4)
        await pilot.press("ctrl+s")
        dialog = await answer_prompt(pilot, app, str(deep / "x.wav"))
        problem = dialog.query_one("#prompt-problem")
        assert "does not exist" in str(problem.content)
        assert problem.size.height >= 2 and problem.size.width <= dialog.size.width
        assert os.path.basename(str(deep)) in str(problem.content)
