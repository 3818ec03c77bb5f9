"""The Ray actor of a cluster render: one `Engine`, its models loaded once, making the
batches of segments the driver sends, segment after segment.

Requests arrive with their voice already resolved to a `VoicePrompt` (the driver
resolves presets, files and My voices), so a worker needs the model folder and
nothing of the user's. The actor answers `progress` while a batch runs (it is made
with two concurrent calls), which is how the driver shows one line per worker.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence

from bark_engine.events import Event, StageProgress, StageStarted
from bark_engine.options import EngineConfig, Request


class SegmentWorker:
    def __init__(self, config: EngineConfig, name: str) -> None:
        from bark_engine.engine import Engine

        self.name = name
        self.engine = Engine(config)
        self._lock = threading.Lock()
        self._state: dict = {"segments": (), "stage": "loading", "step": 0, "total": None,
                             "tokens_per_s": 0.0}
        self.engine.load()
        self._state["stage"] = "idle"

    def identity(self) -> dict:
        """Who this worker is and what decides its tokens (its model id)."""
        import ray

        e = self.engine
        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
                "model_id": e.model_id, "device": str(e.device), "dtype": e.dtype_name,
                "steps": e.step_path, "random_weights": e.random_weights,
                "restarted": bool(ray.get_runtime_context().was_current_actor_reconstructed)}

    def _on_event(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, StageStarted):
                self._state.update(segments=event.segments or (event.segment,),
                                   stage=event.stage, step=0, total=event.total,
                                   tokens_per_s=0.0)
            elif isinstance(event, StageProgress):
                self._state.update(step=event.step, total=event.total,
                                   tokens_per_s=event.tokens_per_s)

    def progress(self) -> dict:
        with self._lock:
            return dict(self._state, pid=os.getpid())

    def make(self, requests: Sequence[Request]) -> dict:
        """The batch's segments as one batch of rows: their tokens and audio, the
        seconds it took and the process that made them."""
        t0 = time.perf_counter()
        gens = self.engine.generate_batch(list(requests), on_event=self._on_event)
        with self._lock:
            self._state.update(stage="idle", segments=(), step=0, total=None)
        return {"pid": os.getpid(), "seconds": time.perf_counter() - t0,
                "takes": [{"semantic_prompt": g.semantic, "coarse_prompt": g.coarse,
                           "fine_prompt": g.fine, "audio": g.audio} for g in gens]}
