"""One measurement in a fresh process, so peak RSS and thread pools are its own.

`python -m bark_engine.bench.child '<json spec>'` prints one line
`BENCH-RESULT <json>` on stdout. The spec's `task` is `engine` (load one
engine, warm up, run the chosen stages), `bandwidth`, `paired_bound` (our
semantic stage between two bandwidth readings), `takes` (our takes per
minute at several batch sizes), `script` (a fixed-voice script rendered
at several batch sizes) or `accuracy` (logits of other precisions against
float32's).
"""

from __future__ import annotations

import json
import resource
import sys
import time

RESULT_PREFIX = "BENCH-RESULT "


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run_engine(spec: dict) -> dict:
    import torch
    from transformers.utils import logging as hf_logging

    from .engines import RUNNERS
    from .work import Work, stage_inputs

    hf_logging.set_verbosity_error()  # the port warns about its own generate() arguments
    work = Work(**spec["work"])
    inputs = stage_inputs(work, spec["models"])
    device, dtype = spec.get("device", "cpu"), spec.get("dtype", "float32")
    runner = RUNNERS[spec["engine"]](spec["models"], spec["size"], work, inputs, device, dtype)
    runner.preload()  # imports are not part of the load time
    t0 = time.perf_counter()
    runner.load()
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_mb()
    t0 = time.perf_counter()
    runner.warm_up(spec["stages"])
    first_use_s = time.perf_counter() - t0
    runs, cpu_runs, part_runs = [], [], []
    for i in range(spec.get("repeat", 1)):
        times, cpu, parts = {}, {}, {}
        for n, stage in enumerate(spec["stages"]):
            runner.reseed(work.seed + 1000 * i + n)
            c0, t0 = time.process_time(), time.perf_counter()
            runner.run(stage)
            times[stage] = time.perf_counter() - t0
            # CPU time of all threads: steadier than wall time on a busy machine
            cpu[stage] = time.process_time() - c0
            parts.update(runner.parts(stage))
        runs.append(times)
        cpu_runs.append(cpu)
        part_runs.append(parts)
    engine = getattr(runner, "engine", None)  # ours: what its weights take as loaded
    return {
        "engine": spec["engine"],
        "weight_mb": engine.weight_bytes() / 2**20 if engine is not None else None,
        "load_s": load_s,
        "first_use_s": first_use_s,
        "runs": runs,
        "cpu_runs": cpu_runs,
        "part_runs": part_runs,  # e.g. coarse_prefills, coarse_steps (ours)
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_load_mb": rss_after_load,
        "threads": torch.get_num_threads(),
        "gpu_peak_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        ),
    }


def _our_engine(spec: dict):
    from ..engine import Engine
    from ..options import EngineConfig, GenerationOptions
    from .work import Work

    work = Work(**spec["work"])
    engine = Engine(EngineConfig(models=spec["models"], size=spec["size"],
                                 device=spec.get("device", "cpu"),
                                 dtype=spec.get("dtype", "float32")))
    options = GenerationOptions(
        text_temp=work.text_temp, waveform_temp=work.waveform_temp, fine_temp=work.fine_temp,
        max_semantic_steps=work.semantic_tokens, allow_early_stop=False,
    )
    return engine, work, options


def run_takes(spec: dict) -> dict:
    """Our takes per minute at batch sizes B (`Engine.generate_takes`)."""
    from dataclasses import asdict

    from .takes import format_takes_table, measure_takes_per_minute

    engine, work, options = _our_engine(spec)
    rows = measure_takes_per_minute(
        engine, work.text, batches=spec["batches"], voice=work.voice, options=options,
        seed=work.seed, sequential=spec["sequential"], repeats=spec.get("repeats", 1),
    )
    return {
        "rows": [{**asdict(r), "speedup": r.speedup, "audio_per_second": r.audio_per_second,
                  "semantic_step_ms": r.semantic_step_ms} for r in rows],
        "table": format_takes_table(rows),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_script(spec: dict) -> dict:
    """A fixed-voice script of `seconds` of audio at batch 1 and at `batches`."""
    from dataclasses import asdict

    from .script import SEGMENT_SECONDS, format_script_table, measure_script

    engine, work, options = _our_engine(spec)
    batches = spec["batches"] or [engine.default_batch]
    rows = measure_script(engine, spec["seconds"], batches=batches, voice=work.voice,
                          options=options, seed=work.seed,
                          segment_seconds=spec.get("segment_seconds", SEGMENT_SECONDS))
    return {
        "rows": [{**asdict(r), "audio_per_second": r.audio_per_second} for r in rows],
        "table": format_script_table(rows),
        "default_batch": engine.default_batch,
    }


def run_paired_bound(spec: dict) -> dict:
    """Our semantic stage with the bandwidth read right before and right after each run.

    This VM's memory bandwidth swings by 1.5x within minutes (other tenants),
    so a bound measured once at the start can be far from the one in force
    while a stage runs. Each pair here is measured back to back; the report
    keeps the higher of the two readings (the stricter bound). Its own
    process, so its buffers stay out of the engine rows' peak RSS.
    """
    from .bandwidth import measure_bandwidth
    from .engines import RUNNERS
    from .work import Work, stage_inputs

    work = Work(**spec["work"])
    runner = RUNNERS["ours"](spec["models"], spec["size"], work, stage_inputs(work, spec["models"]))
    runner.preload()
    runner.load()
    runner.warm_up(["semantic"])
    pairs = []
    for i in range(spec["rounds"]):
        before = measure_bandwidth(spec["megabytes"], repeats=5)
        runner.reseed(work.seed + 1000 * i)
        t0 = time.perf_counter()
        runner.run("semantic")
        seconds = time.perf_counter() - t0
        after = measure_bandwidth(spec["megabytes"], repeats=5)
        pairs.append({"seconds": seconds, "gbs_before": before.gbs, "gbs_after": after.gbs})
    return {"pairs": pairs}


def run_bandwidth(spec: dict) -> dict:
    from .bandwidth import measure_bandwidth

    return measure_bandwidth(spec["megabytes"], spec["repeats"]).to_dict()


def run_accuracy(spec: dict) -> dict:
    from .accuracy import measure

    return measure(spec["models"], spec["size"], spec["precisions"])


def run_task(spec: dict) -> dict:
    tasks = {
        "accuracy": run_accuracy,
        "engine": run_engine,
        "bandwidth": run_bandwidth,
        "takes": run_takes,
        "script": run_script,
        "paired_bound": run_paired_bound,
    }
    return tasks[spec["task"]](spec)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    import torch

    torch.set_num_threads(spec["threads"])
    result = run_task(spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
