"""The History table's "1st audio" column: script takes' time to first audio, "—" otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from bark_engine.options import EngineConfig
from bark_tui import locations
from bark_tui.app import BarkApp
from bark_tui.history import HistoryStore, NewTake
from bark_tui.widgets.history_table import COLUMNS

from .test_app_support import fresh_home


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
