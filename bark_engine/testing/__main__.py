"""`python -m bark_engine.testing random-models DIR --dims tiny|small|large`.

Writes a random-weight model folder in the real `suno/bark` layout, for tests
(tiny) and for benchmarks at the real dims (small, large).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

APPROX_SIZES = {  # what the folder holds, with / without the optimizer state
    "tiny": "~80 MB",
    "small": "~4.8 GB (~1.7 GB with --no-optimizer-state)",
    "large": "~13 GB (~4.5 GB with --no-optimizer-state)",
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bark_engine.testing",
        description="Test support for bark_engine.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rm = commands.add_parser(
        "random-models",
        help="write a model folder with random weights in the real suno/bark layout",
        description=(
            "Write Bark checkpoints, vocab.txt, an EnCodec folder and a few voice presets "
            "with RANDOM weights (generated audio is noise), laid out like suno/bark. "
            "Sizes: " + "; ".join(f"{k} {v}" for k, v in APPROX_SIZES.items()) + "."
        ),
    )
    rm.add_argument("dir", type=Path, help="folder to write (created if missing)")
    rm.add_argument(
        "--dims",
        choices=("tiny", "small", "large"),
        default="tiny",
        help="tiny: fast test models; small/large: the real dims (default: tiny)",
    )
    rm.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    rm.add_argument(
        "--no-optimizer-state",
        action="store_true",
        help="leave out the AdamW state real checkpoints carry (files ~3x smaller)",
    )
    return parser


def _human(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def random_models_command(args: argparse.Namespace) -> int:
    from .random_models import write_random_models

    root: Path = args.dir
    print(f"writing {args.dims} random-weight models (seed {args.seed}) to {root}", flush=True)
    start = time.perf_counter()
    total = 0

    def on_file(path: Path) -> None:
        nonlocal total
        size = _size_of(path)
        total += size
        print(f"  {_human(size):>10}  {path.relative_to(root)}", flush=True)

    write_random_models(
        root,
        dims=args.dims,
        seed=args.seed,
        optimizer_state=not args.no_optimizer_state,
        on_file=on_file,
    )
    elapsed = time.perf_counter() - start
    print(f"done: {_human(total)} in {elapsed:.1f} s. These weights are random: audio is noise.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "random-models":
        return random_models_command(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
