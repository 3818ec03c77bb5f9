"""Deleted takes give their space back: on quit (this session's deletes) and at start-up
(earlier sessions' deletes and files a crash left without a row)."""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from bark_engine.options import GenerationOptions
from bark_tui.core import locations
from bark_tui.history import HistoryStore

from .test_app_support import fresh_home, generate_take, make_app, type_text, wait_until


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


async def test_a_take_deleted_in_the_session_is_gone_from_disk_after_quitting(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Delete me.")
        take = await generate_take(pilot, app)
        kept = await generate_take(pilot, app)
        app.main.history.move_cursor(row=1)
        await pilot.pause()
        assert app.main.history.current_id == take.id
        app.main.history.focus()
        await pilot.press("d")
        await pilot.pause()
        assert take.wav_path.exists()  # undoable while the studio runs
    assert not take.wav_path.exists() and not take.tokens_path.exists()
    assert kept.wav_path.exists()
    store = HistoryStore(locations.history_db_path(), locations.takes_dir())
    assert [t.id for t in store.list_takes(include_deleted=True)] == [kept.id]
    store.close()


async def test_start_up_removes_old_deletes_and_crash_leftovers(home, tiny_models):
    from bark_engine.engine import Engine
    from bark_engine.options import EngineConfig

    gen = Engine(EngineConfig(models=str(tiny_models), device="cpu")).generate(
        "Old take.", None, GenerationOptions(max_duration_s=0.2, seed=1))
    store = HistoryStore(locations.history_db_path(), locations.takes_dir())
    old, recent = store.add_generation(gen), store.add_generation(gen)
    store.delete(old.id)
    store.delete(recent.id)
    store.close()
    with sqlite3.connect(locations.history_db_path()) as db:  # deleted in an earlier session
        db.execute("UPDATE takes SET deleted_at = '2026-01-01T00:00:00.000+00:00' WHERE id = ?",
                   (old.id,))
    orphan = locations.takes_dir() / "take-9999.wav"  # a kill between the file and its row
    orphan.write_bytes(b"RIFF")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    exports = locations.default_output_dir()
    exports.mkdir(parents=True, exist_ok=True)
    half = exports / ".take-3-hello.wav.k2j4x_9a.tmp"  # an export killed midway
    half.write_bytes(b"RIFF")
    mine = exports / "mine.wav"
    mine.write_bytes(b"RIFF")
    theirs = exports / ".another-program.tmp"  # not a name bark-tui makes: left alone
    theirs.write_bytes(b"x")
    for path in (half, mine, theirs):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.tidied is not None, 30, "the start-up tidy")
        assert app.tidied == (2, 1)
        assert not orphan.exists() and not old.wav_path.exists()
        assert not half.exists() and mine.exists() and theirs.exists()
        assert recent.wav_path.exists()  # deleted minutes ago: maybe another instance's undo


async def test_deleting_a_row_keeps_the_cursor_on_its_neighbour(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Row.")
        takes = [await generate_take(pilot, app) for _ in range(3)]  # newest first: 3, 2, 1
        history = app.main.history
        history.move_cursor(row=1)
        await pilot.pause()
        assert history.current_id == takes[1].id
        history.focus()
        await pilot.press("d")
        await pilot.pause()
        assert history.current_id == takes[0].id  # the older one moved up into its row
        await pilot.press("d")
        await pilot.pause()
        assert history.current_id == takes[2].id  # the last row went: the one above it


async def test_the_script_and_voice_come_back_after_quitting(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.area.focus()
        await type_text(pilot, "Half-written line")
        assert app.main.voices.select("v2/en_speaker_0")
        await pilot.pause()
    again = make_app(tiny_models)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert again.main.editor.text == "Half-written line"
        assert again.main.voices.selected.key == "v2/en_speaker_0"


async def test_another_instances_takes_show_up_and_its_deletes_are_respected(home, tiny_models):
    from bark_engine.engine import Engine
    from bark_engine.options import EngineConfig

    gen = Engine(EngineConfig(models=str(tiny_models), device="cpu")).generate(
        "From elsewhere.", None, GenerationOptions(max_duration_s=0.2, seed=1))
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.main.history.row_count == 0
        other = HistoryStore(locations.history_db_path(), locations.takes_dir())  # instance 2
        take = other.add_generation(gen)
        await wait_until(pilot, lambda: app.main.history.row_count == 1, 10, "the new take")
        assert app.main.history.current_id == take.id
        other.delete(take.id)
        app.main.take_action("rename", take.id)  # before the next watch tick: still listed
        await pilot.pause()
        assert any("deleted elsewhere" in str(n.message) for n in app._notifications)
        assert app.main.history.row_count == 0
        other.close()
