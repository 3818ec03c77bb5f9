"""Engine callback events → app messages, throttled per stage so a fast token loop
cannot flood the message queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.message import Message

from bark_engine.events import LoadProgress, StageFinished, StageProgress, StageStarted

from ..messages import EngineLoading, StageUpdate

Post = Callable[[Message], Any]  # how a worker talks back: the app's post_message

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress repaints per second per stage


class EventBridge:
    """Engine callback → app messages, at most one progress message per interval."""

    def __init__(
        self,
        post: Post,
        job_id: int,
        interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self._job_id = job_id
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.posted = 0  # how many messages went out (tests check the throttle)

    def _send(self, message: Message) -> None:
        self.posted += 1
        self._post(message)

    def _due(self, key: str, final: bool) -> bool:
        now = self._clock()
        if final or now - self._last.get(key, float("-inf")) >= self._interval:
            self._last[key] = now
            return True
        return False

    def __call__(self, event: Any) -> None:
        if isinstance(event, LoadProgress):
            final = event.total is not None and event.done >= event.total
            if self._due("load:" + event.what, final):
                self._send(EngineLoading(event.what, event.done, event.total, event.message))
        elif isinstance(event, StageStarted):
            self._last.pop(event.stage, None)
            self._send(StageUpdate(self._job_id, event.stage, 0, event.total))
        elif isinstance(event, StageProgress):
            final = event.total is not None and event.step >= event.total
            if self._due(event.stage, final):
                self._send(
                    StageUpdate(
                        self._job_id,
                        event.stage,
                        event.step,
                        event.total,
                        event.tokens_per_s,
                        event.elapsed_s,
                    )
                )
        elif isinstance(event, StageFinished):
            rate = event.tokens / event.seconds if event.seconds > 0 else 0.0
            self._send(
                StageUpdate(
                    self._job_id,
                    event.stage,
                    event.tokens,
                    event.tokens,
                    rate,
                    event.seconds,
                    state="done",
                )
            )
