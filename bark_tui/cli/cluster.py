"""`--ray`: the render's segments made by Ray workers, shown as a local render is.

One progress line per worker (its segments, stage and tokens/s), one for the whole
render (segments done / total, seconds of audio made per wall second, ETA).
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bark_engine.errors import BadInputError
from bark_engine.options import EngineConfig


def check_cluster_args(args: argparse.Namespace) -> None:
    """Refuse what cannot go with `--ray`, before any work."""
    from .args import server_choice

    if getattr(args, "ray", None) is None:
        return
    if server_choice(args) is not None:
        raise BadInputError("--ray makes the segments on Ray workers; --server (or "
                            "BARK_TUI_SERVER) names one engine server: choose one")
    if args.ray_retries < 0:
        raise BadInputError("--ray-retries must be 0 or more")
    from ..cluster.connect import check_address, import_ray

    check_address(args.ray)
    import_ray()  # the install hint, before the models are looked at


class ClusterBars:
    """Rich bars fed by the driver's snapshots."""

    def __init__(self, console: Console, n_segments: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)
        self.total = self.progress.add_task("segments", total=n_segments,
                                            info="starting the workers…")
        self.workers: dict[str, int] = {}
        self.done = 0

    def __call__(self, snap) -> None:
        if snap is None:
            return
        p = self.progress
        self.done = snap.done
        rate = snap.audio_s / snap.wall_s if snap.wall_s > 0 else 0.0
        eta = snap.eta_s
        p.update(self.total, completed=snap.done,
                 info=f"{rate:.2f} audio s / s" + (f" · ETA {_clock(eta)}" if eta else ""))
        for w in snap.workers:
            if w.name not in self.workers:
                self.workers[w.name] = p.add_task(w.name, total=None, info="")
            task = self.workers[w.name]
            if w.state == "making" and w.stage:
                segs = _segments(w.segments)
                p.update(task, description=f"{w.name} {segs} {w.stage}", total=w.total,
                         completed=w.step, info=f"{w.tokens_per_s:6.1f}/s · made {w.made}")
            else:
                p.reset(task, description=f"{w.name} {w.state}", total=None,
                        info=f"made {w.made}")


def _segments(which: tuple[int, ...]) -> str:
    if not which:
        return ""
    if len(which) == 1:
        return f"seg {which[0] + 1}"
    return f"segs {which[0] + 1}-{which[-1] + 1}" if list(which) == list(
        range(which[0], which[-1] + 1)) else f"{len(which)} segs"


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def render_on_cluster(args: argparse.Namespace, config: EngineConfig, engine, script,
                      options, err: Console):
    """The script rendered by Ray workers: (ClusterRendered, the bars' segments done)."""
    from ..cluster.driver import ClusterOptions, ClusterRenderer

    renderer = ClusterRenderer(engine, config, options, ClusterOptions(
        address=args.ray, workers=args.ray_workers, cpus_per_worker=args.ray_cpus_per_worker,
        retries=args.ray_retries))
    bars = ClusterBars(err, len(script.segments))
    try:
        with bars.progress:
            return renderer.render(script, on_progress=bars), bars
    except KeyboardInterrupt:
        raise _Interrupted(bars.done) from None


class _Interrupted(KeyboardInterrupt):
    def __init__(self, done: int) -> None:
        super().__init__()
        self.done = done


def cluster_report(done) -> dict:
    """`--json`'s "cluster": where it ran and, per segment, who made it, in how many
    seconds and after how many retries."""
    return {"address": done.cluster.address, "workers": done.manifest.workers,
            "model": done.manifest.model, "device": done.identity.get("device"),
            "segments": [{"index": e.index, "worker": e.worker, "seconds": e.seconds,
                          "retries": e.retries, "reused": e.reused}
                         for e in done.manifest.entries]}


def made_by(engine, on_cluster) -> dict:
    """What made the tokens, for `--json`: this process's engine, or the workers'."""
    if on_cluster is None:
        return {"model": engine.model_id, "device": str(engine.device),
                "dtype": engine.dtype_name, "steps": engine.step_path}
    i = on_cluster.identity
    return {"model": i["model_id"], "device": i["device"], "dtype": i["dtype"],
            "steps": i["steps"]}
