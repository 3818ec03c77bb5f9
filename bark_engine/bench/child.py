"""One measurement in a fresh process, so peak RSS and thread pools are its own.

`python -m bark_engine.bench.child '<json spec>'` prints one line
`BENCH-RESULT <json>` on stdout. The spec's `task` is `engine` (load one
engine, run the chosen stages `repeat` times) or `bandwidth`.
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
    runner = RUNNERS[spec["engine"]](spec["models"], spec["size"], work, inputs)
    runner.preload()  # imports are not part of the load time
    t0 = time.perf_counter()
    runner.load()
    load_s = time.perf_counter() - t0
    rss_after_load = peak_rss_mb()
    runs = []
    for i in range(spec["repeat"]):
        times = {}
        for n, stage in enumerate(spec["stages"]):
            runner.reseed(work.seed + 1000 * i + n)
            t0 = time.perf_counter()
            runner.run(stage)
            times[stage] = time.perf_counter() - t0
        runs.append(times)
    return {
        "engine": spec["engine"],
        "load_s": load_s,
        "runs": runs,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_load_mb": rss_after_load,
        "threads": torch.get_num_threads(),
    }


def run_bandwidth(spec: dict) -> dict:
    from .bandwidth import measure_bandwidth

    return measure_bandwidth(spec["megabytes"], spec["repeats"]).to_dict()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    import torch

    torch.set_num_threads(spec["threads"])
    result = run_engine(spec) if spec["task"] == "engine" else run_bandwidth(spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
