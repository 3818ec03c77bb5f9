"""What finishing costs on a long render: seconds of audio finished per second of wall
time, and the process's peak memory, for a format and a mastering preset.

    python -m bark_tui.finish.bench [--minutes 10] [--formats wav,mp3,m4b]
                                    [--master podcast] [--rounds 1]

The input is synthetic speech-like audio at Bark's 24 kHz (voiced tones with a
syllable envelope and a little noise), cut into 20 s segments of uneven level with
0.5 s pauses, as a long script renders. Each case runs in a child process of its own
so that its peak resident memory is its own; rounds interleave the cases because the
machine is shared, and best and median wall times are printed. What is timed is the
whole deliverable: `finish` (levelling, joining, resampling, mastering), the encoded
write and the read-back measurement.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINE_RATE = 24_000
SEGMENT_S = 20.0
PAUSE_S = 0.5


def speechlike(seconds: float, rate: int, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """Tones of a few pitches with a syllable-rate envelope: peaky like speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    pitch = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    noise = 0.05 * rng.standard_normal(len(t))
    x = (voiced + noise) * envelope
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def _case(minutes: float, ext: str, preset: str) -> dict:
    """One deliverable, timed in this process (the child's side)."""
    from .deliver import Finishing, Piece, finish, write_finished
    from .formats import choose_encoding
    from .loudness import MASTERINGS

    n = max(1, round(minutes * 60 / (SEGMENT_S + PAUSE_S)))
    rng = np.random.default_rng(0)
    pieces = [Piece(speechlike(SEGMENT_S, ENGINE_RATE, float(rng.uniform(0.05, 0.7)), i),
                    PAUSE_S) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"bench.{ext}"
        finishing = Finishing(choose_encoding(out), MASTERINGS[preset] if preset else None)
        t0 = time.perf_counter()
        written = write_finished(out, finish(pieces, ENGINE_RATE, finishing), finishing)
        wall = time.perf_counter() - t0
        size = out.stat().st_size
    m = written.measured
    return {"audio_s": written.duration_s, "wall_s": wall, "bytes": size,
            "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "lufs": None if m is None else m.lufs, "rms_db": None if m is None else m.rms_db,
            "true_peak_db": None if m is None else m.true_peak_db}


def _child(minutes: float, ext: str, preset: str) -> dict:
    cmd = [sys.executable, "-m", "bark_tui.finish.bench", "--child",
           "--minutes", str(minutes), "--formats", ext, "--master", preset]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{ext}: the child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fmt(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.1f}{unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bark_tui.finish.bench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="audio per case (default 10)")
    ap.add_argument("--formats", default="wav,mp3", help="extensions, comma-separated")
    ap.add_argument("--master", default="podcast",
                    help="mastering preset (podcast, audiobook, broadcast; '' for none)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    exts = [e.strip().lstrip(".") for e in args.formats.split(",") if e.strip()]
    if args.child:
        print(json.dumps(_case(args.minutes, exts[0], args.master)))
        return 0
    runs: dict[str, list[dict]] = {e: [] for e in exts}
    for r in range(args.rounds):
        for ext in exts:
            runs[ext].append(_child(args.minutes, ext, args.master))
            last = runs[ext][-1]
            print(f"round {r + 1} {ext}: {last['wall_s']:.1f} s", file=sys.stderr)
    print(f"finishing {args.minutes:g} min of synthetic speech at {ENGINE_RATE} Hz, "
          f"master={args.master or 'none'}, {args.rounds} round(s)")
    print("| format | best s | median s | x realtime (best) | peak RSS GB | MB out "
          "| LUFS | RMS dB | true peak dBTP |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for ext, rs in runs.items():
        walls = [x["wall_s"] for x in rs]
        last = rs[-1]
        print(f"| {ext} | {min(walls):.1f} | {statistics.median(walls):.1f} "
              f"| {last['audio_s'] / min(walls):.0f} | {max(x['rss_gb'] for x in rs):.2f} "
              f"| {last['bytes'] / 1e6:.0f} | {_fmt(last['lufs'], '')} "
              f"| {_fmt(last['rms_db'], '')} | {_fmt(last['true_peak_db'], '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
