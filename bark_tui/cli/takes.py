"""`bark-tui say TEXT --takes N`: N takes of one text as one batch, one WAV each.

`--out take.wav` gives take-1.wav … take-N.wav beside it, made with seeds
seed, seed+1, …; take i is exactly what `say --seed (seed+i-1)` would write.
"""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path

from rich.console import Console

from bark_engine.errors import BadInputError
from bark_engine.events import STAGES
from bark_engine.options import EngineConfig

from ..core.settings import MAX_SEED
from .args import timestamped_wav
from .say import (
    check_output_path,
    checked_engine,
    generation_options,
    noise_note,
    with_stage_bars,
)


def numbered(path: Path, i: int) -> Path:
    """take.wav → take-1.wav (the suffix kept; `.wav` added when there is none)."""
    suffix = path.suffix or ".wav"
    return path.with_name(f"{path.stem if path.suffix else path.name}-{i}{suffix}")


def run_takes(args: argparse.Namespace, config: EngineConfig, text: str) -> int:
    from bark_engine.audio import write_wav

    if args.file is not None:
        raise BadInputError("--takes works on one TEXT, not a script --file")
    base = args.out or timestamped_wav()
    one = args.takes == 1  # one take is the file named, no -1

    def name(path: Path, i: int) -> Path:
        return path if one else numbered(path, i + 1)

    from .finish import check_sidecars, deliver, plan_finishing, text_rewriter

    outs = [check_output_path(name(base, i), force=args.force) for i in range(args.takes)]
    finishing = plan_finishing(args, outs[0])
    for out in outs:
        check_sidecars(out, finishing, args.force)
    rewriter = text_rewriter(args)
    text = rewriter(text, args.voice)
    voices = None
    if args.save_voice is not None:
        voices = [check_output_path(name(args.save_voice, i), "voice", force=args.force,
                                    suffix=".npz") for i in range(args.takes)]
    options = generation_options(args)
    if args.seed is not None and args.seed + args.takes - 1 > MAX_SEED:
        raise BadInputError(f"--seed {args.seed} with {args.takes} takes runs past the largest "
                            f"seed, {MAX_SEED}")
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31 - args.takes)
    seeds = [seed + i for i in range(args.takes)]
    err = Console(stderr=True)
    engine = checked_engine(args, config, text)
    takes, total = with_stage_bars(
        err, lambda bars: engine.generate_takes(
            text, voice=args.voice, options=options, seeds=seeds, on_event=bars
        ),
    )
    finished = []
    for i, take in enumerate(takes):
        if finishing is None:
            write_wav(outs[i], take.audio, take.sample_rate)
        else:
            from ..finish.deliver import Piece

            finished.append(deliver(err, outs[i], [Piece(take.audio, 0.0, text)],
                                    take.sample_rate, finishing))
        if voices is not None:
            take.voice_prompt().save_npz(voices[i])
    noise = noise_note(takes[0].random_weights)
    for out, take in zip(outs, takes, strict=True):
        err.print(f"wrote {out} · {take.duration_s:.2f} s of audio · seed {take.seed}",
                  highlight=False)
    err.print(f"{len(takes)} takes in {total:.1f} s{noise}", highlight=False)
    if args.json:
        first = takes[0]
        report = {
            "takes": [
                {
                    "take": i + 1,
                    "seed": take.seed,
                    "out": str(outs[i]),
                    "audio_seconds": round(take.duration_s, 4),
                    "tokens": {s: t.tokens for s, t in take.timings.items() if s in STAGES},
                    **({"voice_file": str(voices[i])} if voices is not None else {}),
                    **({"finished": finished[i]} if finished else {}),
                }
                for i, take in enumerate(takes)
            ],
            "voice": first.voice,
            "model": first.model_id,
            "stage_seconds": {s: round(t.seconds, 4) for s, t in first.timings.items()
                              if s in STAGES and s != "decode"},
            "total_seconds": round(total, 4),
            "random_weights": first.random_weights,
        }
        print(json.dumps(report))
    return 0
