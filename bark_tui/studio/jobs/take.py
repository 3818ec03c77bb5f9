"""The work a worker thread does for a take, an audition or a token count.

Plain functions of plain objects: the app runs them with ``run_worker(thread=True)``,
and they talk back only through ``post`` (the app's thread-safe ``post_message``).
Every ending of a take is reported as a ``JobEnded``, so the queue always moves on.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from ...core.job import Job
from .bridge import EventBridge, Post
from .host import EngineHost


def generation_thread_name(job: Job) -> str:
    """The worker thread's name while it runs ``job`` (for debuggers, and quit tests)."""
    return f"bark-tui generate job {job.id}"


def run_generation(host: EngineHost, job: Job, post: Post, store: Any) -> None:
    """Load if needed, generate, store the take (files first, then row), report how it ended.

    Every ending is reported as a :class:`JobEnded`, so the queue always moves
    on; an unexpected exception travels with its traceback for the error modal.
    """
    thread = threading.current_thread()
    pool_name, thread.name = thread.name, generation_thread_name(job)
    try:
        _generate(host, job, post, store)
    finally:
        thread.name = pool_name


def ready_engine(host: EngineHost, job: Any, post: Post, on_event: Any) -> Any:
    """The loaded engine for a job about to run, announcing a load it had to do.

    Raises `Cancelled` when the job was cancelled while it waited in the queue,
    before any (slow) loading. Shared by every kind of job.
    """
    from bark_engine.errors import Cancelled

    from ..messages import EngineReady

    if job.cancel.is_set():
        raise Cancelled("cancelled before it started")
    engine, fresh = host.ensure_loaded(on_event)
    if fresh:
        device = f"{engine.device} · {engine.dtype_name}"
        post(EngineReady(engine.model_id, device, engine.random_weights, engine.precision_advice))
    return engine


def _generate(host: EngineHost, job: Job, post: Post, store: Any) -> None:

    from bark_engine.errors import BarkError, Cancelled

    from ...history import NewTake
    from ..messages import JobEnded, JobOutcome, JobStarted

    post(JobStarted(job))
    bridge = EventBridge(post, job.id)
    gen = None
    try:
        engine = ready_engine(host, job, post, bridge)
        gen = engine.generate(
            job.text, voice=job.voice, options=job.options, on_event=bridge, cancel=job.cancel
        )
        if store is None:
            raise BarkError("the history is unavailable, so the take could not be kept")
        tokens = {
            "semantic_prompt": gen.semantic,
            "coarse_prompt": gen.coarse,
            "fine_prompt": gen.fine,
        }
        new = NewTake.from_generation(gen)
        new.voice = job.voice  # what the user picked (a preset name or a voice file path)
        take = store.add_take(new, gen.audio, tokens)
    except Cancelled:
        post(JobEnded(JobOutcome(job, cancelled=True)))
    except BarkError as exc:  # made but not kept: the audio goes with it (play or save it)
        post(JobEnded(JobOutcome(job, error=str(exc), audio=gen and gen.audio)))
    except Exception as exc:  # noqa: BLE001 - shown in the error modal, never on the terminal
        post(JobEnded(dataclasses.replace(failed_outcome(job, exc), audio=gen and gen.audio)))
    else:
        post(JobEnded(JobOutcome(job, take=take, audio=gen.audio)))


MIN_FREE_BYTES = 32 * 2**20  # below this on the history's disk a take is not started


def no_room(folder: Path) -> str | None:
    """Why a new take would not fit on the disk holding ``folder`` (None: it fits)."""
    import shutil

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return None  # unknown: try, and report a failed save as such
    if free >= MIN_FREE_BYTES:
        return None
    return (f"The disk holding the history has {free / 2**20:.1f} MB free; a take needs room "
            f"to be kept. Free some space, then generate again.")


def failed_outcome(job: Any, exc: Exception, kept: int = 0) -> Any:
    """How a job that raised ends: a save that failed (a full disk named as such, and
    the queue held) or, for anything else, the error modal with its traceback."""
    import sqlite3
    import traceback

    from ...history import is_disk_full, save_problem
    from ..messages import JobOutcome

    if isinstance(exc, (OSError, sqlite3.OperationalError)) or is_disk_full(exc):
        return JobOutcome(job, error=save_problem(exc), kept=kept, disk_full=is_disk_full(exc))
    return JobOutcome(job, error=f"unexpected error: {exc}", traceback=traceback.format_exc(),
                      kept=kept)


def run_audition(host: EngineHost, voice: str, post: Post) -> None:
    """Decode a voice's own sample with the codec alone (no GPT stages)."""
    from bark_engine.config import SAMPLE_RATE
    from bark_engine.errors import BarkError

    from ..messages import AuditionReady, Problem

    bridge = EventBridge(post, job_id=0)
    try:
        engine = host.ensure_codec(bridge)
        audio = engine.audition(voice)
    except BarkError as exc:
        post(Problem(f"Cannot audition {voice}: {exc}"))
        return
    post(AuditionReady(voice, audio, SAMPLE_RATE))


def run_count(host: EngineHost, text: str, post: Post) -> None:
    """Count tokens with the engine's real tokenizer (loads only the tokenizer)."""
    from bark_engine.errors import BarkError

    from ..messages import TokenCount

    engine = host.engine
    if engine is None:
        return
    try:
        tokens = engine.count_tokens(text)
    except BarkError:
        return  # the estimate stays; generating will say what is wrong
    post(TokenCount(text, tokens))
