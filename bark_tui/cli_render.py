"""`bark-tui render SCRIPT` (and `say --file` for long texts): a whole script, resumable.

Finished segments are kept in a parts folder beside the output
(`book.wav.parts/`); a rerun after an interruption reuses them.
"""

from __future__ import annotations

import argparse
import json
import secrets

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bark_engine.config import SAMPLE_RATE
from bark_engine.errors import BadInputError
from bark_engine.events import Event, StageProgress, StageStarted
from bark_engine.options import EngineConfig, GenerationOptions

from .cli import timestamped_wav
from .cli_say import check_output_path, command_engine, generation_options, warn_precision
from .settings import MAX_SEED


def parse_speakers(pairs: list[str]) -> dict[str, str]:
    speakers = {}
    for pair in pairs:
        name, sep, voice = pair.partition("=")
        if not sep or not name.strip() or not voice.strip():
            raise BadInputError(f"--speaker wants NAME=VOICE, got '{pair}'")
        speakers[name.strip()] = voice.strip()
    return speakers


class SegmentBars:
    """A bar for segments and one for the stage in progress of the current batch."""

    def __init__(self, console: Console, n_segments: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
        )
        self.segments = self.progress.add_task("segments", total=n_segments, info="")
        self.stage = self.progress.add_task("", total=None, info="", visible=False)

    def __call__(self, event: Event) -> None:
        p = self.progress
        if isinstance(event, StageStarted):
            which = event.segments or (event.segment,)
            label = (f"seg {which[0] + 1}" if len(which) == 1 else
                     f"segs {which[0] + 1}-{which[-1] + 1}" if list(which) == list(
                         range(which[0], which[-1] + 1)) else f"{len(which)} segs")
            p.reset(self.stage, total=event.total, visible=True,
                    description=f"{label} {event.stage}", info="")
        elif isinstance(event, StageProgress):
            p.update(self.stage, completed=event.step, info=f"{event.tokens_per_s:6.1f}/s")

    def segment_done(self, take) -> None:
        how = "reused" if take.reused else f"{take.seconds:.1f} s"
        self.progress.update(self.segments, advance=1,
                             info=f"#{take.segment.index + 1} {len(take.audio) / SAMPLE_RATE:.1f} s "
                             f"of audio ({how})")


def run_render(args: argparse.Namespace, config: EngineConfig, text: str) -> int:
    from bark_engine.audio import write_wav
    from bark_engine.scripts.parse import ScriptOptions, parse_script
    from bark_engine.scripts.render import RenderOptions, ScriptRenderer

    out = check_output_path(args.out or timestamped_wav(), force=args.force)
    gen_opts: GenerationOptions = generation_options(args)
    if args.long_form:
        gen_opts = gen_opts.with_long_form()
    engine = command_engine(args, config)
    warn_precision(engine)
    script = parse_script(text, ScriptOptions(speakers=parse_speakers(args.speaker),
                                              default_voice=args.voice),
                          count_tokens=engine.count_tokens)
    err = Console(stderr=True)
    for warning in script.warnings:
        err.print(f"note: {warning}", highlight=False)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    if seed + len(script.segments) - 1 > MAX_SEED:
        raise BadInputError(f"--seed {seed} with {len(script.segments)} segments runs past "
                            f"the largest seed, {MAX_SEED}")
    parts = args.parts or out.with_name(out.name + ".parts")
    renderer = ScriptRenderer(engine, RenderOptions(
        generation=gen_opts, seed=seed, default_voice=args.voice,
        continuity="chain" if args.chain else "fixed", reset_every=args.reset_every,
        parts_dir=parts, batch=args.batch))
    bars = SegmentBars(err, len(script.segments))
    with bars.progress:
        result = renderer.render(script, on_event=bars, on_segment=bars.segment_done)
    write_wav(out, result.audio, result.sample_rate)
    reused = sum(t.reused for t in result.segments)
    noise = " (RANDOM TEST WEIGHTS: output is noise)" if engine.random_weights else ""
    err.print(
        f"wrote {out} · {len(result.segments)} segments ({reused} reused from {parts}) · "
        f"{result.duration_s:.1f} s of audio in {result.total_s:.1f} s · first audio after "
        f"{result.first_audio_s:.1f} s · {result.batch} at a time · seed {seed}{noise}",
        highlight=False)
    if args.json:
        print(json.dumps({
            "out": str(out), "seed": seed, "segments": len(result.segments), "reused": reused,
            "audio_seconds": round(result.duration_s, 4),
            "total_seconds": round(result.total_s, 4),
            "first_audio_seconds": round(result.first_audio_s, 4),
            "random_weights": engine.random_weights, "parts": str(parts),
            "batch": result.batch, "model": engine.model_id, "device": str(engine.device),
            "dtype": engine.dtype_name, "steps": engine.step_path,
            "segment_seconds": [round(t.seconds, 4) for t in result.segments],
        }))
    return 0
