"""Responsiveness: cancel mid-take, a visible capped queue, quitting while busy.

A take on the tiny models is over in a blink, so each test holds the real
engine at its first semantic progress event (the worker thread waits inside
the progress callback, after the app was told) until the test's keys have
landed, then lets it go. Everything else is the real path: the engine, its
cancel checks, the worker, the queue and the app.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bark_engine.audio import as_stored, read_wav
from bark_engine.events import StageProgress
from bark_tui.screens.prompt import PromptScreen
from bark_tui.studio.jobs.bridge import EventBridge
from bark_tui.studio.jobs.take import generation_thread_name

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


class Gate:
    """Where the worker thread waits: ``reached`` once it is mid-take, ``go`` to go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()


@pytest.fixture
def gate(monkeypatch) -> Gate:
    gate = Gate()
    forward = EventBridge.__call__

    def call(bridge: EventBridge, event) -> None:
        forward(bridge, event)
        if isinstance(event, StageProgress) and event.stage == "semantic" \
                and not gate.reached.is_set():
            gate.reached.set()
            gate.go.wait(60)

    monkeypatch.setattr(EventBridge, "__call__", call)
    yield gate
    gate.go.set()


def semantic_started(app) -> bool:
    row = app.main.generation.row("semantic")
    return row.state == "running" and row.step > 0


async def test_queue_cap_cancel_and_the_next_take(home, tiny_models, gate):
    app = make_app(tiny_models, max_waiting=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "A long take.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, gate.reached.is_set, 90, "the engine mid-take")
        await wait_until(pilot, lambda: semantic_started(app), 10, "semantic progress shown")
        first = app.queue.running
        await pilot.press("ctrl+g", "!", "ctrl+g")  # queue one, type, ask for one too many
        await pilot.press("escape")
        assert first.cancel.is_set()
        started = time.monotonic()
        gate.go.set()  # the engine goes on, sees the cancel at its next token
        await wait_until(pilot, lambda: app.queue.running is not first, 5, "the cancel")
        assert time.monotonic() - started < 1.0
        # the editor took the key typed while generating; the third request was refused
        assert app.main.editor.text == "A long take.!"
        await wait_for_message(pilot, app, "The queue is full (1 jobs waiting)")
        await wait_for_message(pilot, app, f"Cancelled job {first.id}")
        # the queued take runs next and lands in the history; the cancelled one never does
        await wait_until(pilot, lambda: not app.queue.busy, 120, "the queued take")
        takes = app.store.list_takes()
        assert [t.text for t in takes] == ["A long take."]
        assert takes[0].duration_s <= 0.5
        assert app.main.generation.row("semantic").state == "done"
        assert "Queue: empty" in str(app.main.query_one("#gen-queue").render())


async def test_queue_is_visible_and_audition_works_meanwhile(home, tiny_models, gate):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "One.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, gate.reached.is_set, 90, "the engine mid-take")
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert len(app.queue.waiting) == 1
        line = str(app.main.query_one("#gen-queue").render())
        assert f"1/{app.queue.capacity} waiting" in line and "job 2 “One.”" in line
        title = str(app.main.query_one("#gen-settings").render())
        assert title.startswith("In force: seed 1234 · voice v2/en_speaker_6")
        # auditioning works while the engine generates
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: ("voice", "v2/en_speaker_6") in app._audio, 30,
                         "the audition")
        assert app.queue.busy and not gate.go.is_set()  # the take is still mid-way
        await pilot.press("ctrl+q")
    gate.go.set()  # let the cancelled worker return before the test's event loop closes


async def test_quit_while_generating_stops_the_worker(home, tiny_models, gate):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Busy.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, gate.reached.is_set, 90, "the engine mid-take")
        running = app.queue.running
        assert any(t.name == generation_thread_name(running) for t in threading.enumerate())
        await pilot.press("ctrl+q")
    # the app has gone; its generation thread sees the cancel event and returns
    assert running.cancel.is_set()
    gate.go.set()
    deadline = time.monotonic() + 5
    while any(t.name == generation_thread_name(running) for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the generation thread kept running after quit"
        time.sleep(0.05)
    assert app.store.count() == 0


async def test_a_full_disk_is_named_holds_the_queue_and_goes_on_when_asked(
        home, tiny_models, gate, monkeypatch):
    """The take's WAV cannot be written (ENOSPC, injected at the history's write): the
    notice says the disk is full, the waiting job is held instead of running into the
    same error, and the next ctrl+g goes on with it first."""
    import errno

    import bark_engine.audio as audio_module

    real_write = audio_module.write_wav
    full = {"on": True}

    def write_wav(path, samples, rate):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, samples, rate)

    monkeypatch.setattr(audio_module, "write_wav", write_wav)
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "First.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, gate.reached.is_set, 90, "the engine mid-take")
        await pilot.press("ctrl+g")  # a second job waits
        await pilot.pause()
        assert len(app.queue.waiting) == 1
        held = app.queue.waiting[0]
        gate.go.set()
        await wait_for_message(pilot, app, "the disk is full, so the take could not be kept", 60)
        await wait_for_message(pilot, app, "The queue is held (1 waiting)")
        assert not app.queue.busy and list(app.queue.waiting) == [held]
        assert "the disk is full" in str(app.main.generation.query_one("#gen-title").content)
        assert app.store.count() == 0 and not list(app.store.takes_dir.glob("*.wav"))
        # the take made but not kept is still in memory: it plays, and saves elsewhere
        await wait_for_message(pilot, app, "ctrl+p → Play unsaved take")
        job, audio = app.unsaved
        assert len(audio) > 0
        before = app.main.header.engine_state
        app.action_play_unsaved()
        await pilot.pause()  # the capture sink plays it at once: "played" follows "▶ …"
        assert app.main.header.engine_state in (f"▶ playing unsaved job {job.id}", "played")
        assert before not in (f"▶ playing unsaved job {job.id}", "played")
        full["on"] = False  # space was freed (or another disk chosen)
        app.action_save_unsaved()
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen)
                         and app.screen.query("#prompt-input"), 10, "the prompt")
        target = home / "elsewhere" / "kept"
        target.parent.mkdir()
        app.screen.query_one("#prompt-input").value = str(target)
        await pilot.press("enter")
        await wait_for_message(pilot, app, f"Saved the unsaved take (job {job.id})")
        back, _rate = read_wav(target.with_suffix(".wav"))
        assert np.array_equal(back, as_stored(audio)) and app.unsaved is None
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, app, f"The queue goes on with job {held.id}")
        await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 120,
                         "the held job kept")
        assert app.store.list_takes()[0].text == held.text
        await pilot.press("ctrl+g")  # the queue is empty now: ctrl+g makes the script again
        await wait_until(pilot, lambda: app.store.count() == 2 and not app.queue.busy, 120,
                         "the new take")


async def test_no_room_for_a_take_is_said_before_generating(home, tiny_models, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5 * 2**20,
                                                                 5 * 2**20))
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "No room.")
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, app, "The disk holding the history has 5.0 MB free")
        assert not app.queue.busy and not app.host.loaded  # nothing was started


def test_a_full_disk_at_start_up_is_not_called_an_unreadable_history(tmp_path, monkeypatch):
    import sqlite3

    from bark_tui.history import HistoryError, HistoryStore, is_disk_full, save_problem
    from bark_tui.history import store as store_module

    def migrate(conn):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store_module, "migrate", migrate)
    with pytest.raises(HistoryError) as caught:
        HistoryStore(tmp_path / "history.sqlite3", tmp_path / "takes")
    assert "is full" in str(caught.value) and "history is fine" in str(caught.value)
    assert "unreadable" not in str(caught.value)
    err = OSError(28, "No space left on device")
    assert is_disk_full(err) and "the disk is full" in save_problem(err)
    assert not is_disk_full(OSError(13, "Permission denied"))
    assert save_problem(OSError(13, "Permission denied")).startswith("could not save the take")


async def test_takes_still_queued_at_quit_wait_again_after_a_restart(home, tiny_models, gate):
    """Quitting with takes in the queue (one being made, two waiting) loses none of
    them: the next start puts them back, held, with their texts, voices and seeds,
    and ctrl+g goes on with them (without adding the editor's script)."""
    from bark_tui.core import locations
    from bark_tui.core.session import load_session

    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "One.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, gate.reached.is_set, 90, "the engine mid-take")
        await pilot.press("ctrl+g")
        await type_text(pilot, " Two")
        await pilot.press("ctrl+g")
        await pilot.pause()
        jobs = [app.queue.running, *app.queue.waiting]
        expected = [(j.text, j.voice, j.options.seed) for j in jobs]
        assert [e[0] for e in expected] == ["One.", "One.", "One. Two"]
        await pilot.press("ctrl+q")
    gate.go.set()
    saved = load_session(locations.session_path()).queued
    assert [(r["text"], r["voice"], r["options"]["seed"]) for r in saved] == expected

    again = make_app(tiny_models)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not again.queue.busy
        assert [(j.text, j.voice, j.options.seed) for j in again.queue.waiting] == expected
        await wait_for_message(pilot, again, "3 job(s) that were waiting when the studio closed")
        assert "from last time" in str(again.main.query_one("#gen-title").render())
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, again, "The queue goes on with job")
        await wait_until(pilot, lambda: again.store.count() == 3 and not again.queue.busy, 180,
                         "the three takes")
        made = [(t.text, t.seed) for t in again.store.list_takes()]
        for text, _voice, seed in expected:  # each put-back take made with its own seed
            assert (text, seed) in made
        assert len(made) == 3
        assert again.main.editor.text == "One. Two"  # the script is back too
    assert load_session(locations.session_path()).queued == ()


async def test_a_take_cancelled_just_before_quitting_does_not_come_back(home, tiny_models, gate):
    """esc, then ctrl+q before the worker has stopped: the cancelled take is not
    among the jobs the next start puts back; the one waiting behind it is."""
    from bark_tui.core import locations
    from bark_tui.core.session import load_session

    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Cancelled.")
        await pilot.press("ctrl+g")
        await wait_until(pilot, gate.reached.is_set, 90, "the engine mid-take")
        app.main.editor.set_text("Waiting.")
        await pilot.pause()
        await pilot.press("ctrl+g")
        await pilot.press("escape")  # the worker is still held: the take has not ended
        assert app.queue.running is not None and app.queue.running.cancel.is_set()
        await pilot.press("ctrl+q")
    gate.go.set()
    assert [r["text"] for r in load_session(locations.session_path()).queued] == ["Waiting."]


async def test_a_full_queue_and_its_running_job_all_come_back(home, tiny_models, gate):
    """Quitting with a job running and the queue full puts every one back: the held
    queue holds one more than its capacity until ctrl+g starts the first; a new job
    that does not fit then is refused, and the queue goes on all the same."""
    from bark_engine.options import GenerationOptions
    from bark_tui.core import locations
    from bark_tui.core.job import Job
    from bark_tui.core.session import Session, save_session
    from bark_tui.studio.jobs.records import job_record

    texts = [f"Take {n}." for n in range(3)]
    save_session(locations.session_path(), Session(script="Another one.", queued=tuple(
        job_record(Job(text, None, GenerationOptions(seed=n))) for n, text in enumerate(texts))))
    app = make_app(tiny_models, max_waiting=2)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_message(pilot, app, "3 job(s) that were waiting when the studio closed")
        assert [j.text for j in app.queue.waiting] == texts and not app.queue.busy
        app.submit(app._new_job("Another one.", None, "no voice", app.next_options()))
        await pilot.pause()
        await wait_for_message(pilot, app, "The queue is full (2 jobs waiting)")
        assert app.queue.running.text == "Take 0."  # it went on with the first
        assert [j.text for j in app.queue.waiting] == texts[1:]
        await wait_until(pilot, gate.reached.is_set, 90, "the first take to run")
        await pilot.press("ctrl+q")
    gate.go.set()
