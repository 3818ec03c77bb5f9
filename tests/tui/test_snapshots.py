"""Snapshots of the main screen after a real generation, the settings and the help screen.

Deterministic by construction: fixed seed and one torch thread (same tokens,
same audio), a fixed clock and time zone for the history, cursor blink off,
and the stage speeds (which vary from run to run) blanked before the shot.
Baselines live in ``__snapshots__/test_snapshots/``; refresh them with
``python -m pytest tests/tui/test_snapshots.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

import time

import pytest

from bark_engine.options import EngineConfig
from bark_tui.history import store as history_store
from bark_tui.studio.app import BarkApp

from .test_app_support import fresh_home, make_app, wait_until, write_settings

SIZE = (120, 40)
STAMP = "2026-01-02T10:30:00.000+00:00"
SCRIPT = "Hello, my name is Suno. [laughs]"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(history_store, "utc_now", lambda: STAMP)
    yield fresh_home(tmp_path, monkeypatch)
    monkeypatch.undo()
    time.tzset()


async def settle_after_generation(pilot) -> None:
    """Type, pick a voice, generate, then blank what depends on the machine's speed."""
    app: BarkApp = pilot.app
    await pilot.pause()  # the editor takes focus once the screen is mounted
    await pilot.press(*SCRIPT)
    await pilot.press("ctrl+g")
    await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 120,
                     "the take")
    await wait_until(pilot, lambda: app.main.editor.exact, 30, "the real token count")
    # HistoryTable sizes its columns itself (DataTable's idle measuring trailed the shot
    # on a busy machine, ~1 run in 6, and once more in a full CI run); check they fit
    table = app.main.history

    def measured() -> bool:
        if table.row_count != 1:
            return False
        row = table.get_row_at(0)
        return all(column.content_width >= len(str(cell))
                   for column, cell in zip(table.ordered_columns, row, strict=True))

    await wait_until(pilot, measured, 10, "the history's column widths")
    table.refresh()
    for stage in ("semantic", "coarse", "fine", "decode"):
        row = app.main.generation.row(stage)
        row.show(row.state, row.step, row.total, 0.0, None)  # speeds differ between runs
    app.clear_notifications()
    app.main.editor.area.focus()
    app.main.editor.area.move_cursor((0, 0))
    await pilot.pause()


def test_main_screen_after_a_generation(snap_compare, home, tiny_models):
    app = make_app(tiny_models)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle_after_generation)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_small_terminals_keep_progress_and_the_take_in_view(snap_compare, home, tiny_models,
                                                            size):
    """The compact layout: header (random-weights warning), editor, voices, the stage
    rows, the new take's history row, the waveform and the footer all on screen."""
    app = make_app(tiny_models)

    async def settle(pilot) -> None:
        await settle_after_generation(pilot)
        main = app.main
        for part in ("#header-random", "#stage-decode", "#waveform", "#history", "#voices"):
            widget = main.query_one(part)
            region = widget.region
            assert region.height > 0 and region.bottom <= size[1], (part, region)
        assert main.history.row_count == 1 and main.history.size.height >= 3

    assert snap_compare(app, terminal_size=size, run_before=settle)


def test_settings_screen(snap_compare, home):
    write_settings(seed_mode="fixed", fixed_seed=42, output_dir="/home/me/Music/bark-tui")
    app = BarkApp(EngineConfig(models="/models/bark"), cursor_blink=False)
    assert snap_compare(app, terminal_size=SIZE, press=["ctrl+p", *"Settings", "enter"])


def test_help_screen(snap_compare, home):
    app = BarkApp(EngineConfig(models="/models/bark"), cursor_blink=False)
    assert snap_compare(app, terminal_size=SIZE, press=["f1"])
