"""Several takes of one script as one batch (B = N, one seed per take), then keep some.

The takes run as one queued job through ``Engine.generate_takes``; nothing is
stored until the user has heard them in the compare screen and kept one or
more, so discarded takes leave no files and no rows.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from ...core.job import Job
from .bridge import EventBridge, Post
from .host import EngineHost

MIN_TAKES, MAX_TAKES = 2, 4


@dataclass
class TakesJob(Job):
    """N takes of one text with seeds ``seeds``."""

    seeds: list[int] = field(default_factory=list)


class TakesReady(Message):
    """The batch is done: ``generations`` in seed order, not stored yet."""

    def __init__(self, job: TakesJob, generations: list[Any]) -> None:
        super().__init__()
        self.job, self.generations = job, generations


class TakesKept(Message):
    """The chosen takes are in the history (``takes``), or ``error`` says why not."""

    def __init__(self, takes: list[Any], error: str | None = None) -> None:
        super().__init__()
        self.takes, self.error = takes, error


def parse_count(answer: str) -> int | None:
    text = answer.strip()
    if text.isdigit() and MIN_TAKES <= int(text) <= MAX_TAKES:
        return int(text)
    return None


def run_takes_job(host: EngineHost, job: TakesJob, post: Post, store: Any) -> None:
    """Generate the batch; report it (TakesReady) and end the job with nothing stored."""
    from bark_engine.errors import BarkError, Cancelled

    from ..messages import JobEnded, JobOutcome, JobStarted
    from .take import generation_thread_name, ready_engine

    thread = threading.current_thread()
    pool_name, thread.name = thread.name, generation_thread_name(job)
    post(JobStarted(job))
    bridge = EventBridge(post, job.id)
    try:
        engine = ready_engine(host, job, post, bridge)
        gens = engine.generate_takes(job.text, job.voice, job.options, seeds=job.seeds,
                                     on_event=bridge, cancel=job.cancel)
    except Cancelled:
        post(JobEnded(JobOutcome(job, cancelled=True)))
    except BarkError as exc:
        post(JobEnded(JobOutcome(job, error=str(exc))))
    except Exception as exc:  # noqa: BLE001 - shown in the error modal
        post(JobEnded(JobOutcome(job, error=f"unexpected error: {exc}",
                                 traceback=traceback.format_exc())))
    else:
        post(TakesReady(job, list(gens)))
        post(JobEnded(JobOutcome(job)))
    finally:
        thread.name = pool_name


def keep_takes(store: Any, voice: str | None, generations: list[Any], post: Post) -> None:
    """Store the chosen generations (files first, then rows), in a worker."""
    from ...history import NewTake

    kept = []
    try:
        if store is None:
            raise OSError("the history is unavailable")
        for gen in generations:
            new = NewTake.from_generation(gen)
            new.voice = voice
            tokens = {"semantic_prompt": gen.semantic, "coarse_prompt": gen.coarse,
                      "fine_prompt": gen.fine}
            kept.append(store.add_take(new, gen.audio, tokens))
    except Exception as exc:  # noqa: BLE001 - a notice; the compare screen's takes stay in memory
        post(TakesKept(kept, error=str(exc)))
        return
    post(TakesKept(kept))
