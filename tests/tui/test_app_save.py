"""Save as WAV: a folder gets the default name inside it, a relative path lands where it
says (and the notice shows the absolute path), and a long refusal wraps in the dialog."""

from __future__ import annotations

import os

import pytest

from bark_engine.audio import read_wav

from .test_app_support import (
    fresh_home,
    generate_take,
    has_message,
    make_app,
    type_text,
    wait_until,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


async def answer_save(pilot, app, text: str | None = None, fmt: str | None = None,
                      master: str | None = None, trim: bool | None = None):
    """Wait for the Save dialog, set its fields, press enter, wait for the write."""
    from bark_tui.screens.save_audio import SaveAudioScreen

    await wait_until(pilot, lambda: isinstance(app.screen, SaveAudioScreen), 10, "the dialog")
    screen = app.screen
    if fmt is not None:
        screen.query_one("#save-format").value = fmt
        await pilot.pause()
    if text is not None:
        screen.query_one("#save-path").value = text
        await pilot.pause()
    if master is not None:
        screen.query_one("#save-master").value = master
    if trim is not None:
        screen.query_one("#save-trim").value = trim
    screen.query_one("#save-path").focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.screen is not screen or not screen.busy, 30,
                     "the file to be written")
    await pilot.pause()
    return screen


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
        await answer_save(pilot, app, str(folder))
        target = folder / wav_file_name(take)
        assert read_wav(target)[1] == 24_000
        assert has_message(app, f"Saved {target}")
        await pilot.press("ctrl+s")
        await answer_save(pilot, app, "exports/second")
        assert (folder / "second.wav").exists()
        assert has_message(app, f"Saved {folder / 'second.wav'}")
        # a refusal long enough to need two lines is shown whole
        deep = tmp_path / ("a-rather-long-folder-name-" * 4)
        await pilot.press("ctrl+s")
        dialog = await answer_save(pilot, app, str(deep / "x.wav"))
        problem = dialog.query_one("#save-problem")
        assert "does not exist" in str(problem.content)
        assert problem.size.height >= 2 and problem.size.width <= dialog.size.width
        assert os.path.basename(str(deep)) in str(problem.content)


@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg", "opus", "m4b"])
async def test_save_in_each_format_mastered_and_remembered(fmt, home, tiny_models, tmp_path):
    import soundfile as sf

    from bark_tui.core import locations
    from bark_tui.core.settings import load_settings

    if fmt == "m4b":
        pytest.importorskip("av")
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Master me.")
        await generate_take(pilot, app)
        await pilot.press("ctrl+s")
        from bark_tui.screens.save_audio import SaveAudioScreen

        await wait_until(pilot, lambda: isinstance(app.screen, SaveAudioScreen), 10, "dialog")
        app.screen.query_one("#save-format").value = fmt
        await pilot.pause()
        assert app.screen.query_one("#save-path").value.endswith(f".{fmt}")  # followed
        await answer_save(pilot, app, str(tmp_path / "first"), master="podcast", trim=True)
        assert (tmp_path / f"first.{fmt}").is_file()
        target = tmp_path / "take"
        await pilot.press("ctrl+s")
        await answer_save(pilot, app, str(target))  # the same type offered again
        written = target.with_suffix(f".{fmt}")
        assert written.is_file()
        if fmt == "m4b":
            from bark_tui.finish.m4b import read_m4b

            rate = read_m4b(written)[1]
        else:
            rate = sf.info(str(written)).samplerate
        assert rate == {"flac": 24000, "mp3": 44100, "ogg": 24000, "opus": 48000,
                        "m4b": 44100}[fmt]
        assert has_message(app, f"Saved {written}") and has_message(app, "LUFS")
        saved, _ = load_settings(locations.settings_path())
        assert (saved.save_format, saved.save_master, saved.save_trim) == (fmt, "podcast", True)


async def test_typed_extension_picks_the_type_and_unknown_ones_are_refused(home, tiny_models,
                                                                          tmp_path):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Typed.")
        await generate_take(pilot, app)
        await pilot.press("ctrl+s")
        dialog = await answer_save(pilot, app, str(tmp_path / "x.aiff"))
        assert "Cannot save as '.aiff'" in str(dialog.query_one("#save-problem").render())
        dialog.query_one("#save-path").value = str(tmp_path / "x.flac")
        await pilot.pause()
        assert dialog.query_one("#save-format").value == "flac"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.main, 10, "the dialog to close")
        assert (tmp_path / "x.flac").is_file()


async def test_preview_shows_what_bark_reads_and_the_lexicon_is_edited_here(
        home, tiny_models, tmp_path, monkeypatch):
    """Numbers read aloud in the preview; "Edit lexicon" makes the file from its template
    in $EDITOR, remembers it in the settings, and a broken one is reported, not used."""
    from bark_tui.core import locations
    from bark_tui.core.settings import load_settings
    from bark_tui.widgets.segment_list import SegmentPreview

    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i \'s/^\\[en\\]$/[en]\\n"Suno" = "Soo no"/\' "$1"\n',
                      encoding="utf-8")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Suno has 3 cats.")
        preview = app.main.editor.query_one(SegmentPreview)
        await wait_until(pilot, lambda: "Bark reads:" in str(preview.render()), 10, "preview")
        assert "Bark reads: Suno has three cats." in str(preview.render())
        await app.run_action("edit_lexicon")
        await pilot.pause()
        path = locations.lexicon_path()
        assert path.is_file() and "# How Bark should say" in path.read_text(encoding="utf-8")
        assert load_settings(locations.settings_path())[0].lexicon_file == str(path)
        assert has_message(app, "entries in use")
        app.main.editor.set_text("Suno has 4 cats.")
        await wait_until(pilot, lambda: "Soo no has four" in str(preview.render()), 10,
                         "the lexicon in the preview")
        take = await generate_take(pilot, app)
        assert take.text == "Soo no has four cats."  # what Bark was given
        editor.write_text('#!/bin/sh\necho "[en" >> "$1"\n', encoding="utf-8")
        await app.run_action("edit_lexicon")
        await pilot.pause()
        assert has_message(app, "not valid TOML")


async def test_open_a_book_shows_its_chapters(home, tiny_models, tmp_path):
    pytest.importorskip("ebooklib")
    from bark_tui.screens.prompt import PromptScreen
    from bark_tui.widgets.segment_list import SegmentPreview
    from tests.finish.test_cli_finish import make_epub

    book = tmp_path / "book.epub"
    make_epub(book)
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.run_action("open_script")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen)
                         and app.screen.query("#prompt-input"), 10, "dialog")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "missing.epub")
        await pilot.press("enter")
        await pilot.pause()
        assert "No file at" in str(app.screen.query_one("#prompt-problem").render())
        app.screen.query_one("#prompt-input").value = str(book)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.main, 10, "the dialog to close")
        assert app.main.editor.text.startswith("Title: A Small Book")
        assert has_message(app, "3 chapters")
        preview = app.main.editor.query_one(SegmentPreview)
        await wait_until(pilot, lambda: "chapters: 1 The Start · 2 The Middle · 3 The End"
                         in str(preview.render()), 10, "the chapters in the preview")
        assert "3 chapters of “A Small Book”" in str(preview.render())
