"""Responsiveness: cancel mid-take, a visible capped queue, quitting while busy.

A full-length take on the tiny models runs for a few seconds (768 semantic
and ~2300 coarse steps), long enough to act on it; the actions right after
the first progress message are kept few so that this holds on a fast machine.
"""

from __future__ import annotations

import threading
import time

import pytest

from bark_tui.jobs import generation_thread_name

from .test_app_support import (
    fresh_home,
    make_app,
    type_text,
    wait_for_message,
    wait_until,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def semantic_started(app) -> bool:
    row = app.main.generation.row("semantic")
    return row.state == "running" and row.step > 0


async def test_queue_cap_cancel_and_the_next_take(home, tiny_models):
    app = make_app(tiny_models, take_s=None, max_waiting=1)  # full-length first take
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "A long take.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: semantic_started(app), 90, "semantic progress")
        first = app.queue.running
        app.max_duration_s = 0.3  # the takes asked for from now on are short
        await pilot.press("ctrl+g", "!", "ctrl+g")  # queue one, type, ask for one too many
        started = time.monotonic()
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.queue.running is not first, 5, "the cancel")
        assert time.monotonic() - started < 1.5
        assert first.cancel.is_set()
        # the editor took the key typed while generating; the third request was refused
        assert app.main.editor.text == "A long take.!"
        await wait_for_message(pilot, app, "The queue is full (1 takes waiting)")
        await wait_for_message(pilot, app, f"Cancelled job {first.id}")
        # the queued take runs next and lands in the history; the cancelled one never does
        await wait_until(pilot, lambda: not app.queue.busy, 120, "the queued take")
        takes = app.store.list_takes()
        assert [t.text for t in takes] == ["A long take."]
        assert takes[0].duration_s <= 0.5
        assert "Queue: empty" in str(app.main.query_one("#gen-queue").render())


async def test_queue_is_visible(home, tiny_models):
    app = make_app(tiny_models, take_s=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "One.")
        await pilot.press("ctrl+g", "ctrl+g")
        await pilot.pause()
        assert len(app.queue.waiting) == 1
        line = str(app.main.query_one("#gen-queue").render())
        assert f"1/{app.queue.capacity} waiting" in line and "job 2 “One.”" in line
        title = str(app.main.query_one("#gen-settings").render())
        assert title.startswith("In force: seed 1234 · voice v2/en_speaker_6")
        await pilot.press("ctrl+q")


async def test_quit_while_generating_stops_the_worker(home, tiny_models):
    app = make_app(tiny_models, take_s=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Busy.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: semantic_started(app), 90, "semantic progress")
        running = app.queue.running
        await pilot.press("ctrl+q")
    # the app has gone; its generation thread sees the cancel event and returns
    assert running.cancel.is_set()
    deadline = time.monotonic() + 5
    while any(t.name == generation_thread_name(running) for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the generation thread kept running after quit"
        time.sleep(0.05)
    assert app.store.count() == 0
