"""The History table's "1st audio" column: script takes' time to first audio, "—" otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from bark_engine.options import EngineConfig
from bark_tui.core import locations
from bark_tui.history import HistoryStore, NewTake
from bark_tui.screens.prompt import PromptScreen
from bark_tui.studio.app import BarkApp
from bark_tui.widgets.history_table import COLUMNS

from .test_app_support import fresh_home, has_message, wait_until


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def add(store: HistoryStore, text: str, timings: dict, segments: list | None = None) -> int:
    audio = np.zeros(2_400, np.float32)
    new = NewTake(text=text, voice=None, seed=1, timings=timings, segments=segments)
    return store.add_take(new, audio, None).id


async def test_first_audio_column_for_new_old_and_damaged_rows(home):
    with HistoryStore(locations.history_db_path(), locations.takes_dir()) as store:
        script = add(store, "A script.", {"first_audio_s": 2.449, "total_s": 9.5})
        plain = add(store, "A plain take.",
                    {"semantic": {"tokens": 10, "seconds": 0.5}})  # as plain takes store them
        old = add(store, "Before the column.", {})
        damaged = add(store, "Damaged.", {"first_audio_s": "soon", "total_s": 1.0},
                      segments=[{"index": 0, "text": "Damaged."}])
    app = BarkApp(EngineConfig(models="/models/bark"), cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.main.history
        cells = {i: str(table.get_cell(str(i), "first_audio")) for i in (script, plain, old,
                                                                            damaged)}
        assert cells == {script: "2.4 s", plain: "—", old: "—", damaged: "—"}
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[labels.index("length") + 1] == "1st audio"
        # the damaged row can be selected: the waveform label skips what it cannot read
        table.move_cursor(row=0)
        await pilot.pause()
        assert table.current_id == damaged
        assert str(app.main.waveform.render()).split("│")[0].strip() == f"Take {damaged}"


async def test_narrow_terminals_give_up_seed_then_first_audio_and_get_them_back(home):
    with HistoryStore(locations.history_db_path(), locations.takes_dir()) as store:
        first = add(store, "A rather long first line of a script, to be clipped.",
                    {"first_audio_s": 1.25, "total_s": 4.0})
        add(store, "Second.", {})
    app = BarkApp(EngineConfig(models="/models/bark"), cursor_blink=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await pilot.pause()
        table = app.main.history
        assert "seed" not in table.column_keys and "first_audio" not in table.column_keys
        assert {"text", "voice", "duration", "note"} <= set(table.column_keys)
        # every column it keeps fits: no horizontal scrolling at 80 columns
        assert table.virtual_size.width <= table.size.width
        table.move_cursor(row=1)
        await pilot.resize_terminal(140, 30)
        await pilot.pause()
        assert table.column_keys == tuple(key for _, key in COLUMNS)
        assert str(table.get_cell(str(first), "first_audio")) == "1.2 s"
        assert table.current_id == first  # the highlighted take stays highlighted
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert "seed" not in table.column_keys and "first_audio" in table.column_keys
        assert table.virtual_size.width <= table.size.width


def test_take_matches_every_word_in_name_text_voice_seed_or_number(home):
    from bark_tui.history import Take
    from bark_tui.widgets.history_table import take_matches

    take = Take(id=12, created_at="", name="Intro", text="The lighthouse keeper.",
                voice="/home/me/voices/old sailor.npz", seed=4242, options={}, model_id="",
                random_weights=False, timings={}, duration_s=1.0, sample_rate=24_000,
                wav_file="x.wav", tokens_file=None, segments=None, deleted_at=None,
                takes_dir=home)
    for query in ("", "LIGHTHOUSE", "keeper intro", "old sailor", "4242", "#12", "  house  "):
        assert take_matches(take, query), query
    for query in ("lighthouse storm", "#13", "#1", "#120", "en_speaker", "4243"):
        assert not take_matches(take, query), query


async def test_filter_history_by_words_then_clear_it(home):
    with HistoryStore(locations.history_db_path(), locations.takes_dir()) as store:
        keeper = add(store, "The lighthouse keeper climbed.", {})
        ships = add(store, "Ships passed far out at sea.", {})
        lamp = add(store, "He polished the lighthouse lamp.", {})
    app = BarkApp(EngineConfig(models="/models/bark"), cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        main, table = app.main, app.main.history

        async def filter_by(text: str) -> None:
            table.focus()
            await pilot.press("slash")
            await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "dialog")
            app.screen.query_one("#prompt-input").value = text
            await pilot.press("enter")
            await pilot.pause()

        await filter_by("lighthouse")
        assert list(table.takes) == [lamp, keeper] and table.row_count == 2
        assert table.border_title == "History · “lighthouse”: 2 of 3"
        await filter_by("Lighthouse KEEPER")
        assert list(table.takes) == [keeper] and table.current_id == keeper
        await filter_by("storm")
        assert table.row_count == 0 and table.current is None
        assert "No take matches “storm”" in str(main.waveform.render())
        await pilot.press("enter")  # play: nothing to play, and it says why
        await pilot.pause()
        assert has_message(app, "No take matches the filter")
        await filter_by("")  # an empty answer shows every take again
        assert list(table.takes) == [lamp, ships, keeper] and table.border_title == "History"

        # a new take that the filter would hide clears the filter and is shown
        await filter_by("ships")
        new = add(app.store, "A brand new take.", {})
        main.refresh_history(select=new)
        await pilot.pause()
        assert table.query == "" and table.current_id == new and table.row_count == 4
        assert has_message(app, "History filter “ships” cleared to show take")
