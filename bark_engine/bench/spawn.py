"""Running one measurement: in a fresh interpreter (`child.py`), so peak RSS and
thread pools are its own, or in this process for the tests; and the OpenMP
wait settings the children start with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .child import RESULT_PREFIX
from .folders import BenchError


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run_in_process(spec: dict) -> dict:
    """Run one measurement here (tests): threads are restored afterwards."""
    import torch

    from . import child

    threads = torch.get_num_threads()
    torch.set_num_threads(spec["threads"])
    try:
        return child.run_task(spec)
    finally:
        torch.set_num_threads(threads)


def omp_env(omp: str | None) -> dict[str, str]:
    """OpenMP wait settings for the children (libgomp reads them at start-up).

    None: this environment's if it sets any, else the short spin the CLI and
    the studio use (`bark_engine.openmp`); `passive`: sleep at once
    (`OMP_WAIT_POLICY=PASSIVE`); `spin:N`: spin N rounds before sleeping.
    An empty value means: remove the variable for the children.
    """
    from ..openmp import default_waits

    if omp is None:
        if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
            return {}
        return {**default_waits(), "OMP_WAIT_POLICY": ""}
    if omp == "passive":
        return {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": ""}
    return {"GOMP_SPINCOUNT": omp.removeprefix("spin:"), "OMP_WAIT_POLICY": ""}


def omp_label(env: dict[str, str]) -> str:
    policy = env.get("OMP_WAIT_POLICY") or "unset"  # "" means: removed for the children
    spin = env.get("GOMP_SPINCOUNT")
    return f"OMP_WAIT_POLICY={policy}" + (f", GOMP_SPINCOUNT={spin}" if spin else "")


def run_child(spec: dict, threads: int, omp: str | None = None,
              source: Path | None = None) -> dict:
    """Run one measurement in a fresh interpreter and return its result (with the
    bark_engine of the checkout at `source` instead of this one, if given)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source.resolve())
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    for key, value in omp_env(omp).items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    proc = subprocess.run(
        [sys.executable, "-m", "bark_engine.bench.child", json.dumps(spec)],
        capture_output=True, text=True, env=env, cwd=source,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise BenchError(
        f"the {spec.get('engine', spec['task'])} run failed (exit {proc.returncode}):\n"
        + "\n".join(tail)
    )
