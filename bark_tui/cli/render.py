"""`bark-tui render SCRIPT` (and `say --file` for long texts): a whole script, resumable.

Finished segments are kept in a parts folder beside the output
(`book.wav.parts/`); a rerun after an interruption reuses them.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bark_engine.config import SAMPLE_RATE
from bark_engine.errors import BadInputError
from bark_engine.events import Event, StageProgress, StageStarted
from bark_engine.options import EngineConfig, GenerationOptions

from ..core.settings import MAX_SEED
from .args import EXIT_CANCELLED, timestamped_wav
from .cluster import check_cluster_args, cluster_report, made_by, render_on_cluster
from .finish import (
    chapter_outputs,
    check_sidecars,
    deliver,
    plan_finishing,
    select_chapters,
    text_rewriter,
)
from .say import check_output_path, command_engine, generation_options, warn_precision


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
        self.done = 0  # segments finished (made or reused)
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
        self.done += 1
        how = "reused" if take.reused else f"{take.seconds:.1f} s"
        self.progress.update(self.segments, advance=1,
                             info=f"#{take.segment.index + 1} {len(take.audio) / SAMPLE_RATE:.1f} s "
                             f"of audio ({how})")


SEED_FILE = "render.json"  # in the parts folder: the seed a run without --seed drew
LONG_SCRIPT_SEGMENTS = 300  # beyond this a render asks first (--yes skips the question)


def kept_seed(parts: Path) -> int | None:
    """The seed an earlier run kept beside its parts, if it is readable."""
    try:
        seed = json.loads((parts / SEED_FILE).read_text(encoding="utf-8"))["seed"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None


def keep_seed(parts: Path, seed: int) -> None:
    from bark_engine.files import atomic_write

    parts.mkdir(parents=True, exist_ok=True)
    with atomic_write(parts / SEED_FILE, "w") as f:
        json.dump({"seed": seed}, f)


def confirm_length(script, err: Console, yes: bool) -> None:
    """Say how long the script is; a very long one is rendered only when confirmed."""
    from bark_engine.scripts.sentences import estimate_seconds

    n = len(script.segments)
    minutes = sum(estimate_seconds(seg.text) for seg in script.segments) / 60
    if n > 1:
        err.print(f"script: {n} segments, about {minutes:.0f} min of speech", highlight=False)
    if n <= LONG_SCRIPT_SEGMENTS or yes:
        return
    if not sys.stdin.isatty():
        raise BadInputError(f"the script has {n} segments (about {minutes:.0f} min); pass "
                            "--yes to render it")
    answer = input(f"Render all {n} segments? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise BadInputError("not rendered")


def run_render(args: argparse.Namespace, config: EngineConfig, text: str) -> int:
    from bark_engine.audio import write_wav
    from bark_engine.scripts.parse import parse_script
    from bark_engine.scripts.render import RenderOptions, ScriptRenderer
    from bark_engine.scripts.script import ScriptOptions

    check_cluster_args(args)
    per_chapter = getattr(args, "per_chapter", False)
    # With --per-chapter OUT itself is not written, only OUT-01.ext … (checked below).
    out = check_output_path(args.out or timestamped_wav(), force=args.force or per_chapter)
    finishing = plan_finishing(args, out)
    check_sidecars(out, finishing, args.force)
    rewriter = text_rewriter(args)
    gen_opts: GenerationOptions = generation_options(args)
    if args.long_form:
        gen_opts = gen_opts.with_long_form()
    engine = command_engine(args, config)
    warn_precision(engine)
    script = parse_script(text, ScriptOptions(speakers=parse_speakers(args.speaker),
                                              default_voice=args.voice, rewrite=rewriter),
                          count_tokens=engine.count_tokens)
    script = select_chapters(script, getattr(args, "chapters", None), per_chapter)
    if per_chapter:
        chapter_outputs(out, script, args.force)
    err = Console(stderr=True)
    for warning in (*script.warnings, *rewriter.notes()):
        err.print(f"note: {warning}", highlight=False)
    confirm_length(script, err, args.yes)
    parts = args.parts or out.with_name(out.name + ".parts")
    seed = args.seed
    if seed is None:
        seed = kept_seed(parts)
        if seed is not None:
            err.print(f"note: going on with seed {seed}, kept in {parts} by an earlier run "
                      "(--seed picks another)", highlight=False)
        else:
            seed = secrets.randbelow(2**31)
    if seed + len(script.segments) - 1 > MAX_SEED:
        raise BadInputError(f"--seed {seed} with {len(script.segments)} segments runs past "
                            f"the largest seed, {MAX_SEED}")
    keep_seed(parts, seed)
    options = RenderOptions(
        generation=gen_opts, seed=seed, default_voice=args.voice,
        continuity="chain" if args.chain else "fixed", reset_every=args.reset_every,
        parts_dir=parts, batch=args.batch)
    on_cluster = None
    try:
        if getattr(args, "ray", None) is not None:
            on_cluster, bars = render_on_cluster(args, config, engine, script, options, err)
            result = on_cluster.rendered
        else:
            bars = SegmentBars(err, len(script.segments))
            with bars.progress:
                result = ScriptRenderer(engine, options).render(
                    script, on_event=bars, on_segment=bars.segment_done)
    except KeyboardInterrupt as e:
        done = getattr(e, "done", None)
        if done is None:
            done = bars.done
        err.print(f"bark-tui: interrupted: {done} of {len(script.segments)} segments are "
                  f"kept in {parts}; run the same command again to go on (seed {seed})",
                  highlight=False, soft_wrap=True)
        return EXIT_CANCELLED
    finished = None
    if finishing is None:
        write_wav(out, result.audio, result.sample_rate)
    else:
        from ..finish.deliver import Piece

        pieces = [Piece(t.audio, t.segment.pause_before_s, t.segment.text, t.segment.speaker,
                        t.segment.chapter) for t in result.segments]
        finished = deliver(err, out, pieces, result.sample_rate, finishing, script=script,
                           per_chapter=per_chapter)
    reused = sum(t.reused for t in result.segments)
    noise = " (RANDOM TEST WEIGHTS: output is noise)" if engine.random_weights else ""
    err.print(
        f"{'wrote ' + str(out) if finishing is None else 'rendered'} · "
        f"{len(result.segments)} segments ({reused} reused from {parts}) · "
        f"{result.duration_s:.1f} s of audio in {result.total_s:.1f} s · first audio after "
        f"{result.first_audio_s:.1f} s · {result.batch} at a time"
        + (f" on {len(on_cluster.manifest.workers)} Ray workers" if on_cluster else "")
        + f" · seed {seed}{noise}", highlight=False)
    if args.json:
        print(json.dumps({
            "out": str(out), "seed": seed, "segments": len(result.segments), "reused": reused,
            "audio_seconds": round(result.duration_s, 4),
            "total_seconds": round(result.total_s, 4),
            "first_audio_seconds": round(result.first_audio_s, 4),
            "random_weights": engine.random_weights, "parts": str(parts),
            "batch": result.batch, **made_by(engine, on_cluster),
            "segment_seconds": [round(t.seconds, 4) for t in result.segments],
            "segment_texts": [t.segment.text for t in result.segments],
            "finished": finished,
            "cluster": None if on_cluster is None else cluster_report(on_cluster),
        }))
    return 0
