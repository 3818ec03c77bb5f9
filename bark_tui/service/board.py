"""The service's jobs: a bounded queue, one engine thread, and what each job leaves.

One `Engine` serves every request, so jobs run one at a time on a single
engine thread (the engine batches inside a job: takes, a script's segments).
Waiting jobs sit in a queue of `queue_size`; a job beyond it is refused
(`QueueFull`, which the HTTP layer answers with 503 and Retry-After).

A job records everything a client may ask for later: its events in order
(an SSE stream can start at any point and resume after a dropped
connection), its segments' audio and tokens, and the joined audio. Finished
jobs are kept `keep_minutes` and at most `MAX_KEPT_JOBS` of them, then removed.

Stdlib, numpy and the engine only: the board runs without a web framework,
which is how the tests drive it directly.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from typing import Any

from bark_engine.errors import BarkError, Cancelled
from bark_engine.events import Event

from .config import MAX_KEPT_BYTES, MAX_KEPT_JOBS
from .job import CANCELLED, DONE, FAILED, FINISHED, QUEUED, RUNNING, Job, JobEvent
from .work import Work, WorkResult

__all__ = ["CANCELLED", "DONE", "FAILED", "FINISHED", "QUEUED", "RUNNING", "Job", "JobBoard",
           "JobEvent", "QueueFull"]

log = logging.getLogger("bark_tui.serve")

WORKER_POLL_S = 0.25  # how often an idle engine thread looks for work and stale jobs


class QueueFull(Exception):
    """Every waiting place is taken."""


class JobBoard:
    """The queue, the engine thread and the kept jobs."""

    def __init__(self, engine: Any, *, queue_size: int, keep_minutes: float,
                 done_info: Any = None, batch_rows: int | None = None) -> None:
        self.engine = engine
        self.queue_size = queue_size
        # rows one engine batch may hold across waiting jobs (None: the engine's default)
        self.batch_rows = batch_rows
        self.keep_s = keep_minutes * 60.0
        self._done_info = done_info or (lambda: {})
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self.running: Job | None = None
        self._sharing: list[Job] = []  # the jobs whose rows share the running batch
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.completed = 0
        self.batches: list[int] = []  # jobs per engine batch, most recent last (a few kept)

    # ---- lifecycle ----------------------------------------------------------------
    def start(self, preload: bool = False) -> None:
        self._thread = threading.Thread(target=self._loop, args=(preload,),
                                        name="bark-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
            for job in [*self._sharing, *([self.running] if self.running else [])]:
                job.cancel.set()
            self._lock.notify_all()
        for job in waiting:
            job.cancel.set()
            job.finish(CANCELLED, message="the server is shutting down")
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- requests -------------------------------------------------------------------
    def submit(self, work: Work, *, cancel_on_disconnect: bool = False) -> Job:
        job = Job(work, cancel_on_disconnect=cancel_on_disconnect)
        with self._lock:
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(f"the queue is full ({self.queue_size} jobs waiting)")
            self._waiting.append(job)
            self._jobs[job.id] = job
            job.add("queued", position=len(self._waiting))  # before the engine can start it
            self._lock.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        self._reap()
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, …; None once it runs or has finished."""
        with self._lock:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return None

    def cancel(self, job: Job) -> None:
        """A waiting job ends at once; a running one stops at its next token. A job
        sharing its batch with others ends at once too: its rows are made but dropped
        (the batch stops early only when every job in it is cancelled)."""
        with self._lock:
            waiting = job in self._waiting
            if waiting:
                self._waiting.remove(job)
            job.cancel.set()
            shared = job in self._sharing and len(self._sharing) > 1
        if waiting:
            job.finish(CANCELLED, message="cancelled before it started")
            self._announce_positions()
        elif shared:
            job.finish(CANCELLED, message="cancelled", segments=0)

    @property
    def depth(self) -> int:
        """Jobs waiting (the running one not counted)."""
        with self._lock:
            return len(self._waiting)

    def jobs(self) -> list[Job]:
        self._reap()
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created)

    # ---- the engine thread ----------------------------------------------------------
    def _loop(self, preload: bool) -> None:
        if preload:
            try:
                self.engine.load()
                log.info("models loaded: %s", self.engine.model_id)
            except BarkError as exc:
                log.error("could not preload the models: %s", exc)
        while not self._stop.is_set():
            with self._lock:
                if not self._waiting:
                    self._lock.wait(WORKER_POLL_S)
                if self._stop.is_set() or not self._waiting:
                    job = None
                else:
                    job = self._waiting.popleft()
                    self.running = job
            if job is None:
                self._reap()
                continue
            try:
                rows = self._rows_of(job)
                if rows is None:
                    self._announce_positions()
                    self._run(job)
                else:
                    self._run_batch(self._gather(job, rows))
            except Exception as exc:  # noqa: BLE001 - the engine thread must never die
                with self._lock:
                    involved = list(self._sharing) or [job]
                error = _error_of(exc, job.id)
                for j in involved:
                    j.error = error
                    j.finish(FAILED, **error)
            finally:
                with self._lock:
                    self.running = None
                    self._sharing = []
                    self.completed += 1
            self._reap()

    def _run(self, job: Job) -> None:
        if job.cancel.is_set() or not job.start():
            job.finish(CANCELLED, message="cancelled before it started")
            return
        t0 = time.perf_counter()
        try:
            result = job.work.run(self.engine, job.on_event, job.add_segment, job.cancel)
        except Cancelled:
            job.finish(CANCELLED, message="cancelled", segments=len(job.segments))
            return
        except Exception as exc:  # noqa: BLE001 - the service keeps serving; one line
            job.error = _error_of(exc, job.id)
            job.finish(FAILED, **job.error)
            return
        self._done(job, result, time.perf_counter() - t0)

    def _rows_of(self, job: Job):
        """The job's rows when it is one batch (else None: it runs alone, and a job whose
        rows cannot be prepared, such as a voice that fails to load, fails there)."""
        if job.cancel.is_set():
            return None  # `_run` reports it
        try:
            return job.work.batch_rows(self.engine)
        except Exception:  # noqa: BLE001 - `_run` meets the same error and reports it
            return None

    def _gather(self, first: Job, rows: list) -> list[tuple[Job, list]]:
        """The first job and the waiting one-batch jobs after it that fit in one engine
        batch, in queue order (a job that cannot share is left for its turn)."""
        limit = self.batch_rows or self.engine.default_batch
        group = [(first, rows)]
        total = len(rows)
        with self._lock:
            candidates = list(self._waiting)
            self._sharing = [first]
        for job in candidates:
            if total >= limit:
                break
            more = self._rows_of(job)
            if more is None or total + len(more) > limit:
                continue
            with self._lock:  # taken from the queue and marked sharing in one step
                if job not in self._waiting:
                    continue  # cancelled meanwhile
                self._waiting.remove(job)
                self._sharing.append(job)
            group.append((job, more))
            total += len(more)
        self.batches = (self.batches + [len(group)])[-32:]
        self._announce_positions()
        return group

    def _run_batch(self, group: list[tuple[Job, list]]) -> None:
        """Several jobs' rows as one engine batch; each job gets its own rows' results,
        its own events (relabelled with its own segments) and its own ending."""
        jobs = [j for j, _ in group]
        requests = [r for _, rows in group for r in rows]
        spans, at = [], 0
        for _, rows in group:
            spans.append(range(at, at + len(rows)))
            at += len(rows)
        own = {id(j): tuple(r.segment for r in rows) for j, rows in group}
        for job in jobs:
            if job.cancel.is_set() or not job.start(batch_jobs=len(jobs),
                                                    batch_rows=len(requests)):
                job.finish(CANCELLED, message="cancelled before it started")

        def fan_out(event: Event) -> None:
            for job in jobs:  # a job that ended already records nothing more
                job.on_event(replace_segments(event, own[id(job)]) if len(jobs) > 1 else event)

        every = _AllCancelled(jobs)
        t0 = time.perf_counter()
        try:
            gens = self.engine.generate_batch(requests, on_event=fan_out, cancel=every)
        except Cancelled:
            for job in jobs:
                job.finish(CANCELLED, message="cancelled", segments=0)
            return
        except Exception as exc:  # noqa: BLE001
            if len(jobs) == 1:
                error = _error_of(exc, jobs[0].id)
                jobs[0].error = error
                jobs[0].finish(FAILED, **error)
                return
            # one job's row may be what failed: each job again alone, so the others
            # still get their audio and only the failing one its error
            log.warning("a shared batch of %d jobs failed (%s); running them one by one",
                        len(jobs), exc)
            for job in jobs:
                if not job.cancel.is_set() and not job.finished:
                    job.state = QUEUED
                    self._run(job)
            return
        seconds = time.perf_counter() - t0
        for job, span in zip(jobs, spans, strict=True):
            if job.cancel.is_set() or job.finished:  # cancelled meanwhile: rows dropped
                job.finish(CANCELLED, message="cancelled", segments=0)
                continue
            result = job.work.finish_rows([gens[i] for i in span], seconds, job.add_segment)
            self._done(job, result, seconds)

    def _done(self, job: Job, result: WorkResult, seconds: float) -> None:
        job.result = result
        audio_s = sum(s.duration_s for s in job.segments.values())
        job.finish(DONE, seconds=round(seconds, 4), segments=len(job.segments),
                   audio_seconds=round(audio_s, 4), timings=result.timings, **self._done_info())

    def _announce_positions(self) -> None:
        with self._lock:  # under the board's lock: no job starts between its snapshot and this
            for i, job in enumerate(self._waiting):
                job.add("queued", position=i + 1)

    def _reap(self) -> None:
        """Forget finished jobs older than `keep_s`, the oldest beyond MAX_KEPT_JOBS, and
        the oldest while the kept audio is over MAX_KEPT_BYTES."""
        now = time.time()
        with self._lock:
            done = sorted((j for j in self._jobs.values() if j.finished and j.finished_at),
                          key=lambda j: j.finished_at)
            stale = [j for j in done if now - j.finished_at > self.keep_s]
            stale += done[len(stale):][:max(0, len(done) - len(stale) - MAX_KEPT_JOBS)]
            kept = [j for j in done if j not in stale]
            total = sum(j.kept_bytes() for j in kept)
            for job in kept:
                if total <= MAX_KEPT_BYTES:
                    break
                stale.append(job)
                total -= job.kept_bytes()
            for job in stale:
                self._jobs.pop(job.id, None)


class _AllCancelled:
    """The cancel a shared batch checks between tokens: set once every job in it is."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs

    def is_set(self) -> bool:
        return all(j.cancel.is_set() for j in self.jobs)


def replace_segments(event: Event, segments: tuple[int, ...]) -> Event:
    """An event of a shared batch as one job sees it: its own segments only."""
    if not hasattr(event, "segments"):
        return event
    return dataclasses.replace(event, segment=segments[0], segments=segments)


def _error_of(exc: Exception, job_id: str) -> dict[str, str]:
    if isinstance(exc, BarkError):
        return {"message": str(exc), "type": "invalid_request_error"}
    log.exception("job %s failed", job_id)
    return {"message": f"internal error: {type(exc).__name__}: {exc}", "type": "server_error"}
