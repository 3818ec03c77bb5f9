"""What a cluster render costs and gains on this machine: seconds of audio made per
wall second for a script rendered in this process and by 1 and 2 Ray CPU workers,
and Ray's overhead per segment.

    python -m bark_tui.cluster.bench [--dims tiny,small] [--minutes 5] [--seconds 4]
                                     [--rounds 2] [--models DIR]

The script is `minutes * 60 / seconds` segments, each capped at `--seconds` of audio
(random weights never stop by themselves, so every segment is the same work). All
variants use every core: the local render with that many torch threads, "1x2" one
worker with them all, "2x1" two workers of one thread each. Workers are started
(and load their models) for each render; that start-up is timed apart. Ray's
overhead per segment is what the one-worker render takes beyond start-up and the
local render, over the segments: scheduling, moving tokens and audio, the driver
keeping each part. Rounds interleave the variants (the machine is shared); best and
median are printed. Every render is checked to equal the local one, bit for bit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOICE = "v2/en_speaker_0"
TEXT = "This is segment number {i} of the benchmark script, read at an even pace."


def _script(engine, n: int):
    from bark_engine.scripts.parse import parse_script
    from bark_engine.scripts.script import ScriptOptions

    text = "\n\n".join(TEXT.format(i=i) for i in range(n))
    return parse_script(text, ScriptOptions(default_voice=VOICE), count_tokens=engine.count_tokens)


def bench_dims(dims: str, models: Path | None, minutes: float, seconds: float,
               rounds: int) -> list[str]:
    from bark_engine.bench.folders import find_models
    from bark_engine.engine import Engine
    from bark_engine.options import EngineConfig, GenerationOptions
    from bark_engine.scripts.render import RenderOptions, ScriptRenderer

    from .connect import connect
    from .driver import ClusterOptions, ClusterRenderer

    folder, dims = find_models(models, dims)
    cores = os.cpu_count() or 1
    config = EngineConfig(models=str(folder), device="cpu", threads=cores)
    engine = Engine(config)
    n = max(2, round(minutes * 60 / seconds))
    script = _script(engine, n)
    gen = GenerationOptions(max_duration_s=seconds)
    connect("local", num_cpus=cores)
    walls: dict[str, list[float]] = {"local": [], "1x2": [], "2x1": []}
    startups: dict[str, list[float]] = {"1x2": [], "2x1": []}
    audio_s = 0.0
    reference = None
    for r in range(rounds):
        for variant in walls:
            with tempfile.TemporaryDirectory() as tmp:
                opts = RenderOptions(generation=gen, seed=1, default_voice=VOICE,
                                     parts_dir=Path(tmp) / "parts")
                t0 = time.perf_counter()
                if variant == "local":
                    out = ScriptRenderer(engine, opts).render(script)
                else:
                    workers, cpus = (1, cores) if variant == "1x2" else (cores, 1)
                    done = ClusterRenderer(Engine(config), config, opts, ClusterOptions(
                        workers=workers, cpus_per_worker=cpus)).render(script)
                    out = done.rendered
                    startups[variant].append(done.startup_s)
                walls[variant].append(time.perf_counter() - t0)
            audio_s = out.duration_s
            if reference is None:
                reference = out.audio
            elif not np.array_equal(reference, out.audio):
                raise SystemExit(f"{variant}: the audio differs from the local render")
            print(f"  {dims} round {r + 1}/{rounds} {variant}: {walls[variant][-1]:.1f} s",
                  file=sys.stderr, flush=True)
    best_local = min(walls["local"])
    lines = [f"{dims} dims (random weights) · {n} segments capped at {seconds:g} s · "
             f"{audio_s:.0f} s of audio · {cores} cores · {rounds} round(s)",
             "| variant | best wall s | median wall s | audio s / wall s (best) "
             "| worker start-up s (best) | vs local |",
             "| --- | --- | --- | --- | --- | --- |"]
    for variant, ws in walls.items():
        up = f"{min(startups[variant]):.1f}" if variant in startups else "—"
        lines.append(f"| {variant} | {min(ws):.1f} | {statistics.median(ws):.1f} "
                     f"| {audio_s / min(ws):.3f} | {up} | {best_local / min(ws):.2f}x |")
    overhead = (min(walls["1x2"]) - min(startups["1x2"]) - best_local) / n
    lines.append(f"Ray overhead per segment (1x{cores} beyond start-up and the local "
                 f"render): {overhead * 1000:.0f} ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bark_tui.cluster.bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", default="tiny,small", help="tiny, small or both (random weights)")
    p.add_argument("--models", type=Path, help="a random-weight model folder to use")
    p.add_argument("--minutes", type=float, default=5.0, help="audio in the script (default 5)")
    p.add_argument("--seconds", type=float, default=4.0, help="audio per segment (default 4)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    from .connect import disconnect

    try:
        for dims in args.dims.split(","):
            print("\n".join(bench_dims(dims.strip(), args.models, args.minutes, args.seconds,
                                       args.rounds)), flush=True)
    finally:
        disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
