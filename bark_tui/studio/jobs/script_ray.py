"""A long script of the studio rendered on Ray workers (Settings → Ray cluster).

The driver (`bark_tui.cluster.driver.ClusterRenderer`) makes the same plan, seeds
and parts as the local renderer and hands back finished segments in script order,
so the studio plays segment 1 as soon as it arrives, exactly as for a local render.
Several workers make segments at once; the generation panel's title names all the
segments in flight and its stage rows follow the earliest of them (the one heard
next). Ray is imported only here, only when such a render runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bark_engine.events import StageProgress, StageStarted
from bark_engine.scripts.render import Rendered, RenderOptions

from ..messages import RayWorkersChanged, SegmentStarted
from .bridge import Post
from .host import EngineHost


class RayProgress:
    """Driver snapshots → the studio's messages: `SegmentStarted` when the segments in
    flight change, stage events of the earliest of them through the job's bridge."""

    def __init__(self, post: Post, job: Any, on_event: Callable[[Any], None]) -> None:
        self.post, self.job, self.on_event = post, job, on_event
        self.flying: tuple[int, ...] = ()
        self.shown: Any = None  # the worker view whose stage the rows show
        self.since = 0.0  # when that stage began (here)

    def __call__(self, snap: Any) -> None:
        if snap is None:
            return
        workers = (sum(w.state != "starting" for w in snap.workers), len(snap.workers))
        if workers != self.job.ray_workers:
            self.job.ray_workers = workers
            self.post(RayWorkersChanged(self.job.id, *workers))
        making = [w for w in snap.workers if w.state == "making" and w.segments]
        flying = tuple(sorted(i for w in making for i in w.segments))
        lead = min((w for w in making if w.stage), key=lambda w: w.segments[0], default=None)
        shown = self.shown
        if shown is not None and (lead is None or (lead.segments, lead.stage) !=
                                  (shown.segments, shown.stage)):
            self.finish()  # the stage shown ended (or its batch came back)
        if flying and flying != self.flying:
            self.flying = flying  # the app resets the rows for a new lead segment
            self.post(SegmentStarted(self.job.id, flying[0], self.job.count, flying))
        if lead is None:
            return
        now = time.monotonic()
        if self.shown is None:
            self.since = now
            self.on_event(StageStarted(lead.stage, lead.total, lead.segments[0],  # type: ignore[arg-type]
                                       lead.segments))
        self.shown = replace(lead)  # a copy: the driver updates its views in place
        self.on_event(StageProgress(lead.stage, lead.step, lead.total, lead.tokens_per_s,  # type: ignore[arg-type]
                                    now - self.since, lead.segments[0], lead.segments))

    def finish(self) -> None:
        """The stage shown is over: its row is full (its last count stands for all)."""
        w, self.shown = self.shown, None
        if w is not None:
            steps = w.total or w.step
            self.on_event(StageProgress(w.stage, steps, steps, w.tokens_per_s,  # type: ignore[arg-type]
                                        time.monotonic() - self.since, w.segments[0],
                                        w.segments))


def render_on_ray(host: EngineHost, job: Any, options: RenderOptions, post: Post,
                  on_event: Callable[[Any], None],
                  on_segment: Callable[[Any], None]) -> tuple[Rendered, str, bool]:
    """The job's script made by Ray workers at ``job.ray``: (the render, the model id
    that made its tokens, whether its weights are random).

    The engine here is built, not loaded: it checks texts and resolves voices;
    each worker loads its own models.
    """
    from bark_engine.errors import BarkError, Cancelled

    from ...cluster.driver import ClusterOptions, ClusterRenderer

    if job.cancel.is_set():
        raise Cancelled("cancelled before it started")
    if host.server is not None:
        raise BarkError(f"the engine is the server {host.server.label}: a script goes to the "
                        "Ray cluster only when no engine server is set")
    post(RayWorkersChanged(job.id, 0, 0))  # the title says Ray is starting
    engine = host.ensure_built()
    progress = RayProgress(post, job, on_event)
    done = ClusterRenderer(engine, host.config, options, ClusterOptions(address=job.ray)).render(
        job.script, on_segment=on_segment, on_progress=progress, cancel=job.cancel)
    progress.finish()
    return done.rendered, done.identity["model_id"], bool(done.identity["random_weights"])
