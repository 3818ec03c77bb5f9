"""One service job: its state, its events in order, its segments and its result.

A job is written by the engine thread and read by request handlers (threads
and the event loop), so every write goes through one condition: an event is
recorded once, nothing is recorded after the job's ending, and handlers
waiting on the event loop are woken by each new event (`Job.changed`).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from bark_engine.events import Event, StageProgress

from .wire import event_to_wire
from .work import SegmentResult, Work, WorkResult

PROGRESS_EVERY_S = 0.1  # a job keeps at most ~10 progress events per second per stage

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "error", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class JobEvent:
    seq: int  # 1, 2, … within its job (the SSE id)
    name: str  # queued, started, load, stage_*, segment, done, error, cancelled
    data: dict[str, Any]


class Job:
    """One request's work, its progress and its results. Thread-safe."""

    def __init__(self, work: Work, *, cancel_on_disconnect: bool = False) -> None:
        self.id = secrets.token_hex(8)
        self.work = work
        self.kind = work.kind
        self.cancel_on_disconnect = cancel_on_disconnect
        self.created = time.time()
        self.finished_at: float | None = None
        self.state = QUEUED
        self.cancel = threading.Event()
        self.events: list[JobEvent] = []
        self.segments: dict[int, SegmentResult] = {}
        self.order: list[int] = []  # segment indexes in the order they finished
        self.result: WorkResult | None = None
        self.error: dict[str, str] | None = None
        self._changed = threading.Condition()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._last_progress: dict[str, float] = {}

    # ---- written by the engine thread ---------------------------------------------
    def add(self, name: str, **data: Any) -> bool:
        """Record an event; nothing is recorded after the job's last one (False then)."""
        with self._changed:
            if self.state in FINISHED:
                return False
            self._append(name, data)
        return True

    def _append(self, name: str, data: dict[str, Any]) -> None:
        """Under `_changed`: the event, then a wake-up for every waiting handler."""
        self.events.append(JobEvent(len(self.events) + 1, name, data))
        self._changed.notify_all()
        for loop, event in list(self._waiters):
            loop.call_soon_threadsafe(event.set)

    def on_event(self, event: Event) -> None:
        """The engine's callback: every event but progress is kept; progress is thinned."""
        if isinstance(event, StageProgress):
            now = time.monotonic()
            last = self._last_progress.get(event.stage, float("-inf"))
            final = event.total is not None and event.step >= event.total
            if not final and now - last < PROGRESS_EVERY_S:
                return
            self._last_progress[event.stage] = now
        body = event_to_wire(event)
        self.add(body.pop("event"), **body)

    def add_segment(self, seg: SegmentResult) -> None:
        with self._changed:
            if self.state in FINISHED:
                return  # cancelled meanwhile: its results are dropped
            self.segments[seg.index] = seg
            self.order.append(seg.index)
            self._append("segment", dict(
                index=seg.index, start=round(seg.start_s, 4), pause_before=seg.pause_before_s,
                duration=round(seg.duration_s, 4), samples=len(seg.audio),
                seconds=round(seg.seconds, 4), seed=seg.seed, voice=seg.voice, text=seg.text,
                timings=seg.timings))

    def start(self, **data: Any) -> bool:
        """Queued → running; False when the job already ended (cancelled while waiting)."""
        with self._changed:
            if self.state != QUEUED:
                return False
            self.state = RUNNING
            self._append("started", data)
        return True

    def finish(self, state: str, **data: Any) -> bool:
        """The job's one ending: False (and nothing recorded) when it has one already."""
        with self._changed:
            if self.state in FINISHED:
                return False
            self.state = state
            self.finished_at = time.time()
            self._append(state, data)
        return True

    # ---- read by request handlers ----------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def events_after(self, seq: int) -> list[JobEvent]:
        with self._changed:
            return self.events[seq:]

    async def changed(self, seq: int, timeout: float) -> None:
        """Until an event after `seq` exists or `timeout` passes (request handlers, on
        the event loop): woken by `add` at once, without polling."""
        event = asyncio.Event()
        key = (asyncio.get_running_loop(), event)
        with self._changed:
            if len(self.events) > seq:
                return
            self._waiters.add(key)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except (asyncio.TimeoutError, TimeoutError):  # two classes before Python 3.11
            pass
        finally:
            with self._changed:
                self._waiters.discard(key)

    def kept_bytes(self) -> int:
        """What the job's results hold in memory (audio and tokens)."""
        arrays = [a for seg in self.segments.values()
                  for a in (seg.audio, seg.semantic, seg.coarse, seg.fine)]
        if self.result is not None and self.result.audio is not None:
            arrays.append(self.result.audio)
        return sum(a.nbytes for a in arrays)

    def summary(self, position: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "kind": self.kind, "state": self.state,
                                "created": round(self.created, 3),
                                "segments_done": len(self.segments)}
        if position is not None:
            body["position"] = position
        if self.error:
            body["error"] = self.error
        return body
