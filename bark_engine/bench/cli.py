"""`python -m bark_engine.bench`: our engine against transformers' Bark port.

The parent process only orchestrates: it finds (or writes) a random-weight
model folder, warms the page cache with its files, then runs the bandwidth
measurement and each engine in a child process of its own (`child.py`), so
peak RSS and thread pools are not mixed, and prints one table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ..files import atomic_write
from ..options import PRECISIONS
from .folders import BenchError, checkpoint_config, find_models, model_files, warm_page_cache
from .spawn import load_average, omp_env, omp_label, run_child, run_in_process
from .work import STAGES, Work

PRECISION_NAMES = tuple(p for p in PRECISIONS if p != "auto")

# The long-scripts issue asks for takes/min at B = 1, 2, 4 on CPU at small dims.
# The main table compares the engines at B = 1 (a take is the fixed work);
# `--takes 1,2,4` adds our batched takes (`bark_engine.takes`) in a child of
# its own, each take being the same fixed work.
BATCH_SIZES = (1,)
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bark_engine.bench",
        description=(
            "Benchmark bark_engine against transformers' Bark port on the same random weights: "
            "per-stage speed, end-to-end audio seconds per second, load time, peak RSS, "
            "and the batch-1 bound from this machine's memory bandwidth."
        ),
    )
    p.add_argument(
        "--models", type=Path, help="random-weight model folder (default: find or write one)"
    )
    p.add_argument("--dims", choices=("tiny", "small", "large"), default="small")
    p.add_argument(
        "--device", default="cpu",
        help="cpu (default) or cuda[:N]; on a GPU the CPU bandwidth bound is skipped",
    )
    p.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
        help="weights and activations of both engines (default float32)",
    )
    p.add_argument(
        "--threads", type=int, default=2, help="torch threads in each engine (default 2)"
    )
    p.add_argument(
        "--stages", default=",".join(STAGES),
        help=f"comma-separated subset of {','.join(STAGES)} (default: all)",
    )
    p.add_argument("--engines", default="ours,port", help="comma-separated subset of ours,port")
    p.add_argument(
        "--precisions", metavar="P,P,...", default="",
        help="also run ours in these precisions (bfloat16, float16, int8), interleaved with "
        "the others, and measure their logits against float32's per stage",
    )
    p.add_argument(
        "--repeat", type=int, default=1,
        help="rounds (a fresh process per engine per round, order alternating); best is kept",
    )
    p.add_argument("--json", type=Path, help="also write the raw and derived numbers here")
    p.add_argument(
        "--semantic-tokens", type=int, default=256,
        help="size of the fixed work (default 256 → 768 coarse tokens); smaller for smoke tests",
    )
    p.add_argument("--voice", default="v2/en_speaker_6", help="voice preset, or 'none'")
    p.add_argument("--bandwidth-mb", type=float, default=400.0, help="tensor size for bandwidth")
    p.add_argument("--no-bandwidth", action="store_true", help="skip the bandwidth measurement")
    p.add_argument(
        "--paired-rounds", type=int, default=3,
        help="runs of our semantic stage, each between two bandwidth readings, for the bound "
        "share (default 3; 0 skips)",
    )
    p.add_argument(
        "--omp", metavar="passive|spin:N",
        help="OpenMP waits in both engines: passive (sleep at once) or spin:N (spin N rounds "
        "first); default: as set in this environment, else the CLI's short spin",
    )
    p.add_argument(
        "--takes", metavar="B,B,...",
        help="also measure our takes/min at these batch sizes (e.g. 1,2,4; slow at small dims; "
             "--repeat batches per size, the best kept)",
    )
    p.add_argument(
        "--takes-sequential", action="store_true",
        help="with --takes: also run the same seeds one by one (speedup, exactness check)",
    )
    p.add_argument(
        "--script", type=float, metavar="SECONDS",
        help="also render a fixed-voice script of about SECONDS of audio at batch 1 and at "
        "--script-batch (time to first audio beside the total; slow: ~2 min of audio)",
    )
    p.add_argument(
        "--script-batch", metavar="B,B,...", default="",
        help="batch sizes for --script besides 1 (default: the engine's default here)",
    )
    p.add_argument("--script-segment", type=float, default=12.0, metavar="S",
                   help="seconds of audio per script segment (default 12)")
    p.add_argument(
        "--baseline", type=Path, metavar="DIR",
        help="also run the engine of another checkout (e.g. a git worktree of the last "
        "release) on the same work, as 'before', interleaved with the others",
    )
    # Tests: run the engines in this process (fast, but RSS and threads are then shared).
    p.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    return p


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_benchmark(args: argparse.Namespace, log=print) -> dict:
    """Measure everything the table shows; returns the raw results."""
    import torch
    import transformers

    from ..config import CHECKPOINT_FILES
    from ..model import kernels
    from ..model.precision import dtype_name, resolve_dtype
    from .bandwidth import kv_bytes_per_token, semantic_bytes_per_token

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise BenchError(f"--stages: use a subset of {','.join(STAGES)}")
    stages = [s for s in STAGES if s in stages]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or any(e not in ("ours", "port") for e in engines):
        raise BenchError("--engines: use ours, port or both")
    if args.baseline is not None:
        if not (args.baseline / "bark_engine" / "bench" / "child.py").is_file():
            raise BenchError(f"--baseline {args.baseline}: not a bark-tui checkout")
        engines.append("before")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if any(p not in PRECISION_NAMES or p == args.dtype for p in precisions):
        raise BenchError(f"--precisions: some of {', '.join(PRECISION_NAMES)}, "
                         f"besides --dtype {args.dtype}")
    if precisions and args.device != "cpu":
        raise BenchError("--precisions runs on the CPU")
    engines += [f"ours-{p}" for p in precisions]
    if args.omp not in (None, "passive") and not re.fullmatch(r"spin:\d+", args.omp):
        raise BenchError("--omp: passive or spin:N (e.g. spin:3000)")
    if args.threads < 1 or args.repeat < 1 or args.semantic_tokens < 2 or args.paired_rounds < 0:
        raise BenchError(
            "--threads and --repeat must be ≥ 1, --semantic-tokens ≥ 2, --paired-rounds ≥ 0"
        )
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        raise BenchError("--device: cpu, cuda or cuda:N")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {args.device}: this torch build sees no CUDA GPU")
    on_gpu = args.device != "cpu"
    folder, dims = find_models(args.models, args.dims)
    size = "large" if dims == "large" else "small"
    if not all((folder / n).is_file() for n in CHECKPOINT_FILES[size].values()):
        raise BenchError(f"{folder}: missing the {size} checkpoints")
    voice = None if args.voice in ("", "none") else args.voice
    work = Work(semantic_tokens=args.semantic_tokens, voice=voice)
    cfg = checkpoint_config(folder, size)
    log(f"models {folder} (dims {dims}); warming the page cache ...")
    warm_page_cache(model_files(folder, size))
    results: dict = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "kernels": kernels.status().describe(),
            "load_before": load_average(),
            "omp": omp_label({**os.environ, **omp_env(args.omp)}),
            "in_process": bool(args.in_process),
        },
        "models": str(folder),
        "dims": dims,
        "dtype": args.dtype,
        "auto_dtype": dtype_name(resolve_dtype("auto", torch.device(args.device),
                                               kernels.available())),
        "device": args.device,
        "gpu": torch.cuda.get_device_name(args.device) if on_gpu else None,
        "threads": args.threads,
        "repeat": args.repeat,
        "stages": stages,
        "batch_sizes": list(BATCH_SIZES),
        "config": {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd},
        "work": {
            **work.to_dict(),
            "coarse_tokens": work.coarse_tokens,
            "coarse_frames": work.coarse_frames,
            "audio_seconds": work.audio_seconds,
            "units": work.units(),
        },
        "engines": {},
    }
    if not args.no_bandwidth and not on_gpu:  # the bound is the CPU's batch-1 bound
        log(f"bandwidth ({args.bandwidth_mb:.0f} MB, {args.threads} threads) ...")
        bw_spec = {
            "task": "bandwidth", "threads": args.threads, "megabytes": args.bandwidth_mb,
            "repeats": 10,
        }
        if args.in_process:
            bw = run_in_process(bw_spec)
        else:
            bw = run_child(bw_spec, args.threads, args.omp)
        per_token = semantic_bytes_per_token(cfg, getattr(torch, args.dtype).itemsize)
        # Average cached positions over the run: 257 context + history of the tokens so far.
        kv = kv_bytes_per_token(cfg, 257 + args.semantic_tokens / 2)
        results["bandwidth"] = bw
        results["bound"] = {
            "bytes_per_token": per_token,
            "tok_s": bw["gbs"] * 1e9 / per_token,
            "kv_bytes_per_token": kv,
        }
    rounds: dict[str, list[dict]] = {name: [] for name in engines}
    for r in range(args.repeat):
        # Alternate the order, so a busy spell on the machine hits both engines alike.
        for name in engines if r % 2 == 0 else engines[::-1]:
            log(f"round {r + 1}/{args.repeat}, {name}: load, warm-up, {', '.join(stages)} ...")
            ours = name == "before" or name.startswith("ours-")
            spec = {
                "task": "engine", "engine": "ours" if ours else name,
                "models": str(folder), "size": size, "threads": args.threads,
                "work": work.to_dict(), "stages": stages, "device": args.device,
                "dtype": name.removeprefix("ours-") if name.startswith("ours-") else args.dtype,
            }
            if name == "before":
                run = run_child(spec, args.threads, args.omp, source=args.baseline)
                run["engine"] = "before"
            elif args.in_process:
                run = run_in_process(spec)
            else:
                run = run_child(spec, args.threads, args.omp)
            run["engine"] = name
            run["load_avg"] = load_average()
            rounds[name].append(run)
    results["engines"] = {name: merge_rounds(runs) for name, runs in rounds.items()}
    if "bound" in results and "semantic" in stages and "ours" in engines and args.paired_rounds:
        log(f"semantic beside the bandwidth: {args.paired_rounds} pair(s) ...")
        spec = {
            "task": "paired_bound", "models": str(folder), "size": size, "threads": args.threads,
            "work": work.to_dict(), "rounds": args.paired_rounds,
            "megabytes": args.bandwidth_mb,
        }
        results["paired_bound"] = run_in_process(spec) if args.in_process else run_child(
            spec, args.threads, args.omp
        )
    if precisions:
        log(f"accuracy: logits in {', '.join(precisions)} against float32, per stage ...")
        spec = {"task": "accuracy", "models": str(folder), "size": size,
                "threads": args.threads, "precisions": precisions}
        results["accuracy"] = run_in_process(spec) if args.in_process else run_child(
            spec, args.threads, args.omp)
    if args.takes:
        try:
            batches = [int(b) for b in args.takes.split(",") if b.strip()]
        except ValueError:
            raise BenchError("--takes: comma-separated batch sizes, e.g. 1,2,4") from None
        log(f"takes: ours at B = {', '.join(map(str, batches))} ...")
        spec = {
            "task": "takes", "models": str(folder), "size": size, "threads": args.threads,
            "work": work.to_dict(), "batches": batches, "sequential": args.takes_sequential,
            "device": args.device, "dtype": args.dtype, "repeats": args.repeat,
        }
        results["takes"] = run_in_process(spec) if args.in_process else run_child(
            spec, args.threads, args.omp
        )
    if args.script:
        try:
            batches = [int(b) for b in args.script_batch.split(",") if b.strip()]
        except ValueError:
            raise BenchError("--script-batch: comma-separated batch sizes, e.g. 4") from None
        log(f"script: ~{args.script:.0f} s of audio at batch 1 and "
            f"{', '.join(map(str, batches)) or 'the default'} ...")
        spec = {
            "task": "script", "models": str(folder), "size": size, "threads": args.threads,
            "work": work.to_dict(), "seconds": args.script, "batches": batches,
            "segment_seconds": args.script_segment, "device": args.device, "dtype": args.dtype,
        }
        results["script"] = run_in_process(spec) if args.in_process else run_child(
            spec, args.threads, args.omp
        )
    results["machine"]["load_after"] = load_average()
    return results


def merge_rounds(runs: list[dict]) -> dict:
    """One engine's rounds: every run's stage times (the report keeps the best),
    the fastest load and warm-up, the highest peak RSS."""
    return {
        "engine": runs[0]["engine"],
        "load_s": min(r["load_s"] for r in runs),
        "first_use_s": min(r["first_use_s"] for r in runs),
        "runs": [times for r in runs for times in r["runs"]],
        "cpu_runs": [times for r in runs for times in r["cpu_runs"]],
        "part_runs": [parts for r in runs for parts in r.get("part_runs", [])],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "weight_mb": runs[0].get("weight_mb"),
        "gpu_peak_mb": max((r.get("gpu_peak_mb") or 0.0 for r in runs), default=0.0) or None,
        "rounds": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from .report import format_table, summarize

    args = _parser().parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        results = run_benchmark(args, log)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    summary = summarize(results)
    print(format_table(results, summary), end="")
    if args.json is not None:
        payload = {"results": results, "summary": summary}
        with atomic_write(args.json, "w") as f:
            json.dump(payload, f, indent=2, default=str)
    return 0
