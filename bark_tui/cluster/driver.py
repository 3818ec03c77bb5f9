"""The driver of a cluster render: segments scheduled over Ray actors, every finished
part kept as it arrives, the whole stitched here exactly as a local render does.

Scheduling is the local renderer's (`ScriptRenderer`): the same groups (`chains`),
the same seeds and keys, the same kept parts, the same release in script order.
What differs is that several batches are in flight at once, one per worker. In
fixed-voice mode every segment is its own group, sent in script order (segment 1
alone first, so it is heard early); in chain mode a group's segments go one after
another, each given its predecessor's tokens, preferably to the worker that made
the one before, longest groups first. Fault tolerance is Ray's: actors restart and
their calls are retried (`max_restarts`, `max_task_retries`); the driver notices a
batch that came back from another process than the one it was sent to and counts a
retry. A worker that fails for good ends the render with one line; every part made
so far is kept, and a rerun (here or without `--ray`) reuses them.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bark_engine.config import SAMPLE_RATE
from bark_engine.errors import BadInputError, BarkError, Cancelled
from bark_engine.options import EngineConfig, Request
from bark_engine.scripts.render import (
    InOrder,
    Pending,
    Rendered,
    RenderOptions,
    ScriptRenderer,
    SegmentTake,
    chains,
)
from bark_engine.scripts.script import Script

from .connect import LOCAL, Cluster, connect, disconnect, import_ray
from .manifest import Entry, Manifest, read_manifest
from .worker import SegmentWorker

POLL_S = 0.25  # how often the driver looks for finished batches and worker progress
DEFAULT_RETRIES = 3


class ClusterError(BarkError):
    """The cluster cannot go on (a worker failed for good, or none could start)."""


@dataclass(frozen=True)
class ClusterOptions:
    """How a render uses the cluster (the command line's `--ray*` options)."""

    address: str = LOCAL
    workers: int | None = None  # None: one per GPU, else the CPUs / cpus_per_worker
    cpus_per_worker: int = 1  # CPU workers: cores (and torch threads) each
    retries: int = DEFAULT_RETRIES  # restarts of a worker and retries of its batch


@dataclass
class WorkerView:
    """One worker as the progress display shows it."""

    name: str
    state: str = "starting"  # starting, idle, making, restarting, failed
    segments: tuple[int, ...] = ()
    stage: str = ""
    step: int = 0
    total: int | None = None
    tokens_per_s: float = 0.0
    made: int = 0  # segments this worker made in this run
    pid: int = 0  # its process (a restarted worker has a new one)


@dataclass(frozen=True)
class Snapshot:
    workers: tuple[WorkerView, ...]
    done: int  # segments finished (made or reused)
    total: int
    made: int  # made in this run
    audio_s: float  # seconds of audio made in this run
    wall_s: float

    @property
    def eta_s(self) -> float | None:
        if not self.made or self.done >= self.total:
            return None
        return (self.total - self.done) * self.wall_s / self.made


@dataclass
class _Worker:
    name: str
    handle: object
    view: WorkerView
    pid: int = 0
    host: str = ""
    batch: list[tuple[int, Pending]] | None = None  # (group, segment) in flight
    sent_pid: int = 0  # the process it was sent to
    future: object | None = None  # its batch's result
    poll: object | None = None  # a progress call not yet answered
    poll_since: float = 0.0


@dataclass
class ClusterRendered:
    rendered: Rendered
    manifest: Manifest
    cluster: Cluster
    identity: dict = field(default_factory=dict)  # the first worker's (model, device, …)
    startup_s: float = 0.0  # from the call until every worker had its models loaded


def _cause(error: BaseException) -> str:
    """The one line of a Ray error that says what went wrong inside the worker."""
    text = str(error)
    found = re.findall(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit)): (.+)$", text, re.M)
    if found:
        kind, message = found[-1]
        return message if kind in ("BadInputError", "CheckpointError", "VoiceError",
                                   "WeightsUnavailableError") else f"{kind}: {message}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class ClusterRenderer:
    """Renders a `Script` over Ray workers; reports segments in script order."""

    def __init__(self, engine, config: EngineConfig, options: RenderOptions,
                 cluster: ClusterOptions = ClusterOptions()) -> None:
        if options.parts_dir is None:
            raise BadInputError("a cluster render keeps its parts: give it a parts folder")
        if cluster.cpus_per_worker < 1:
            raise BadInputError("--ray-cpus-per-worker must be at least 1")
        if cluster.workers is not None and cluster.workers < 1:
            raise BadInputError("--ray-workers must be at least 1")
        self.engine = engine  # here: checks texts and resolves voices, loads no model
        self.config = config
        self.options = options
        self.cluster = cluster

    # ---- the workers --------------------------------------------------------------
    def _start(self, ray, info: Cluster) -> list[_Worker]:
        c = self.cluster
        gpus = info.gpus >= 1 and self.config.device != "cpu"
        n = c.workers or (int(info.gpus) if gpus else max(1, int(info.cpus // c.cpus_per_worker)))
        config = self.config if gpus else replace(self.config, threads=c.cpus_per_worker,
                                                  device="cpu")
        actor = ray.remote(num_cpus=1 if gpus else c.cpus_per_worker, num_gpus=1 if gpus else 0,
                           max_restarts=c.retries, max_task_retries=c.retries,
                           max_concurrency=2)(SegmentWorker)
        workers = [_Worker(f"w{i + 1}", actor.remote(config, f"w{i + 1}"),
                           WorkerView(f"w{i + 1}")) for i in range(n)]
        return workers

    def _identify(self, ray, workers: list[_Worker], on_progress,
                  cancel: threading.Event | None) -> dict:
        """Wait until every worker has loaded its models; refuse workers that would
        make different tokens (another device type or precision)."""
        ids = []
        on_progress(None)  # every worker starting
        for w in workers:
            future = w.handle.identity.remote()
            while not ray.wait([future], timeout=POLL_S)[0]:
                _check(cancel)
            try:
                ident = ray.get(future)
            except Exception as e:  # an actor that cannot start: its own error, one line
                raise ClusterError(f"worker {w.name} could not start: {_cause(e)}") from None
            w.pid, w.host = ident["pid"], ident["host"]
            w.view.pid = w.pid
            w.view.state = "idle"
            ids.append(ident)
            on_progress(None)
        models = {i["model_id"] for i in ids}
        if len(models) > 1:
            raise ClusterError("the workers would make different tokens (" + "; ".join(
                sorted(models)) + "): give them one device type and precision")
        return ids[0]

    # ---- the plan ---------------------------------------------------------------------
    def _plan(self, script: Script, local: ScriptRenderer, groups, model: str,
              names: list[str]) -> Manifest:
        opts = self.options
        earlier = read_manifest(opts.parts_dir)
        before = {(e.index, e.key): e for e in earlier.entries} if earlier else {}
        manifest = Manifest(model, opts.seed, opts.continuity, opts.reset_every, local.batch,
                            names)
        group_of = {seg.index: (g, k) for g, group in enumerate(groups)
                    for k, seg in enumerate(group)}
        for seg in script.segments:
            g, k = group_of[seg.index]
            pending = local.pending(seg, None) if k == 0 else None
            key = _key(pending) if pending else None
            entry = Entry(seg.index, seg.text, seg.voice or opts.default_voice,
                          opts.seed_of(seg), g, groups[g][k - 1].index if k else None,
                          asdict(replace(opts.generation, seed=opts.seed_of(seg))), key)
            old = before.get((seg.index, key)) if key else None
            if old is not None and old.status == "done":  # what an earlier run knew
                entry.worker, entry.seconds, entry.retries = old.worker, old.seconds, old.retries
            manifest.entries.append(entry)
        return manifest

    # ---- rendering ----------------------------------------------------------------------
    def render(self, script: Script, *,
               on_segment: Callable[[SegmentTake], None] | None = None,
               on_progress: Callable[[Snapshot], None] | None = None,
               cancel: threading.Event | None = None) -> ClusterRendered:
        """Every segment made (or reused) and stitched. ``cancel`` set stops the render
        with `Cancelled` within a poll; the parts made so far are kept."""
        opts = self.options
        local = ScriptRenderer(self.engine, opts)
        local.check(script)
        order = InOrder(script, on_segment)
        ray = import_ray()
        info = connect(self.cluster.address)
        workers: list[_Worker] = []
        try:
            workers = self._start(ray, info)
            made = {"n": 0, "audio": 0.0}

            def report(_=None) -> None:
                if on_progress is not None:
                    on_progress(Snapshot(tuple(w.view for w in workers), len(order.done),
                                         len(script.segments), made["n"], made["audio"],
                                         time.perf_counter() - order.start))

            ident = self._identify(ray, workers, report, cancel)
            startup = time.perf_counter() - order.start
            local = ScriptRenderer(self.engine, opts, model_id=ident["model_id"])
            groups = chains(script, opts)
            if opts.continuity == "chain":
                groups = sorted(groups, key=len, reverse=True)  # longest first (stable)
            manifest = self._plan(script, local, groups, ident["model_id"],
                                  [f"{w.name} (pid {w.pid} on {w.host})" for w in workers])
            manifest.write(opts.parts_dir)
            entries = {e.index: e for e in manifest.entries}
            self._run(ray, local, groups, order, workers, entries, manifest, made, report, cancel)
            manifest.write(opts.parts_dir)
            return ClusterRendered(order.rendered(local.batch), manifest, info, ident, startup)
        finally:
            for w in workers:  # cancelled first, a batch in flight is not retried
                if w.batch is not None:
                    with contextlib.suppress(Exception):
                        ray.cancel(w.future)
            for w in workers:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(w.handle, no_restart=True)
            if info.started_here:
                disconnect()

    def _run(self, ray, local: ScriptRenderer, groups, order: InOrder, workers: list[_Worker],
             entries: dict[int, Entry], manifest: Manifest, made: dict, report,
             cancel: threading.Event | None) -> None:
        pos = [0] * len(groups)  # each group's next segment
        busy: set[int] = set()  # groups with a segment in flight
        last: dict[int, str] = {}  # the worker that made a group's last segment
        parts = self.options.parts_dir
        first = True

        def next_pending(g: int) -> Pending | None:
            """The group's next segment to make; kept parts on the way are read."""
            group = groups[g]
            while pos[g] < len(group):
                k = pos[g]
                previous = order.done.get(group[k - 1].index) if k else None
                pending = local.pending(group[k], previous)
                kept = local.kept(pending)
                if kept is None:
                    return pending
                e = entries[pending.segment.index]
                e.key, e.part, e.status, e.reused = _key(pending), pending.path.name, "done", True
                order.finish(kept)
                pos[g] += 1
            return None

        for g in range(len(groups)):  # every kept part first: heard at once, counted done
            next_pending(g)
        manifest.write(parts)
        report()
        while True:
            _check(cancel)
            for w in workers:  # an idle worker gets the next batch
                if w.batch is not None or w.view.state == "failed":
                    continue
                size = (self.options.first_batch or local.batch) if first else local.batch
                mine = [g for g in range(len(groups)) if last.get(g) == w.name]
                batch = []
                for g in mine + [g for g in range(len(groups)) if g not in mine]:
                    if g in busy or pos[g] >= len(groups[g]):
                        continue
                    pending = next_pending(g)
                    if pending is not None:
                        batch.append((g, pending))
                        busy.add(g)
                    if len(batch) == size:
                        break
                if not batch:
                    continue
                first = False
                w.batch, w.sent_pid = batch, w.pid
                w.future = w.handle.make.remote(
                    [Request(p.segment.text, p.history, p.options, p.segment.index)
                     for _, p in batch])
                w.view.state, w.view.segments = "making", tuple(p.segment.index for _, p in batch)
            flying = {w.future: w for w in workers if w.batch is not None}
            if not flying:
                break
            done, _ = ray.wait(list(flying), num_returns=1, timeout=POLL_S)
            for future in done:
                w = flying[future]
                try:
                    out = ray.get(future)
                except Exception as e:
                    w.view.state = "failed"
                    report()
                    kept = len(order.done)
                    raise ClusterError(
                        f"worker {w.name} failed for good ({_cause(e)}); {kept} of "
                        f"{len(entries)} segments are kept in {parts}: run the same command "
                        "again to go on") from None
                retried = int(out["pid"] != w.sent_pid)
                w.pid = w.view.pid = out["pid"]
                for (g, p), arrays in zip(w.batch, out["takes"], strict=True):
                    take = local.made(p, arrays, out["seconds"])
                    e = entries[p.segment.index]
                    e.key, e.part, e.status, e.reused = _key(p), p.path.name, "done", False
                    e.worker, e.seconds = w.name, round(out["seconds"], 4)
                    e.retries += retried
                    pos[g] += 1
                    busy.discard(g)
                    last[g] = w.name
                    made["n"] += 1
                    made["audio"] += len(take.audio) / SAMPLE_RATE
                    w.view.made += 1
                    order.finish(take)
                w.batch = None
                w.view.state, w.view.segments, w.view.stage = "idle", (), ""
                manifest.write(parts)
            self._poll(ray, workers)
            report()

    @staticmethod
    def _poll(ray, workers: list[_Worker]) -> None:
        """Ask each busy worker where it is (answered while it makes its batch)."""
        now = time.perf_counter()
        for w in workers:
            if w.poll is not None:
                ready, _ = ray.wait([w.poll], timeout=0)
                if ready:
                    try:
                        state = ray.get(w.poll)
                    except Exception:
                        state = None
                    w.poll = None
                    if state is not None and w.batch is not None:
                        w.view.stage, w.view.step = state["stage"], state["step"]
                        w.view.total, w.view.tokens_per_s = state["total"], state["tokens_per_s"]
                        w.view.state, w.view.pid = "making", state["pid"]
                elif now - w.poll_since > 5.0 and w.batch is not None:
                    w.view.state = "restarting"
            if w.poll is None and w.batch is not None:
                w.poll, w.poll_since = w.handle.progress.remote(), now


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def _key(p: Pending) -> str:
    """The key in a part's file name (`segment-0001-KEY.npz`)."""
    return Path(p.path).stem.rsplit("-", 1)[1]

