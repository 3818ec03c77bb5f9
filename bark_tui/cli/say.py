"""`bark-tui say`: one take from the shell, with per-stage progress bars on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bark_engine.errors import BadInputError
from bark_engine.events import (
    STAGES,
    Event,
    LoadProgress,
    StageFinished,
    StageProgress,
    StageStarted,
)
from bark_engine.options import EngineConfig, GenerationOptions

from .args import EXIT_USAGE, timestamped_wav

if TYPE_CHECKING:
    from bark_engine.engine import Engine

Result = TypeVar("Result")


def check_output_path(path: Path, what: str = "output", *, force: bool = False,
                      suffix: str = ".wav") -> Path:
    """The file to write, refused before any work if its folder is missing or not
    writable, or if it exists and `force` is off (nothing is overwritten silently).
    A name without an extension gets `suffix`."""
    path = path.expanduser()
    if not path.suffix and not path.is_dir():
        path = path.with_name(path.name + suffix)
    folder = path.resolve().parent
    if not folder.is_dir():
        raise BadInputError(f"{what} folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise BadInputError(f"{what} folder is not writable: {folder}")
    if path.is_dir():
        raise BadInputError(f"{what} path is a folder, not a file: {path}")
    if path.exists() and not force:
        raise BadInputError(f"{path} exists; pass --force to overwrite it")
    return path


def read_text(args: argparse.Namespace) -> str:
    if args.file is not None and args.text is not None:
        raise BadInputError("give either TEXT or --file, not both")
    if args.file is not None:
        try:
            return args.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInputError(f"cannot read {args.file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise BadInputError(f"{args.file} is not UTF-8 text") from None
    if args.text is None:
        raise BadInputError("nothing to say: give TEXT or --file")
    return args.text


def generation_options(args: argparse.Namespace) -> GenerationOptions:
    """The sampling options of `say` and `render`.

    The parser's option names are the fields' names (`cli._generation_options`),
    so they are taken by name rather than listed again; only `--max-duration`
    differs from its field, which carries the unit.
    """
    values = vars(args)
    return GenerationOptions.from_mapping({**values, "max_duration_s": values.get("max_duration")})


def checked_engine(args: argparse.Namespace, config: EngineConfig, text: str) -> Engine:
    """An engine for `say` that has already refused bad text or an unknown voice.

    Both checks need only the tokenizer and the voice file, so a typo fails in
    a moment instead of after the models have loaded.
    """
    engine = command_engine(args, config)
    engine.check_text(text)
    engine.resolve_voice(args.voice)
    warn_precision(engine)
    return engine


def command_engine(args: argparse.Namespace, config: EngineConfig) -> Engine:
    """The engine a command uses: here, or the server `--server`/BARK_TUI_SERVER names
    (a `RemoteEngine`, which answers the same calls)."""
    from ..core.locations import user_voices_dir
    from ..remote.choice import build_engine
    from .args import server_choice

    return build_engine(config, server_choice(args), user_voices_dir())


def warn_precision(engine: Engine) -> None:
    """Say on stderr when the chosen precision is likely slow on this machine."""
    advice = engine.precision_advice
    if advice:
        Console(stderr=True).print(f"note: {advice}", highlight=False, markup=False)


def with_stage_bars(err: Console, work: Callable[[StageBars], Result]) -> tuple[Result, float]:
    """`work(on_event)` under per-stage progress bars on stderr; its result and wall seconds."""
    started = time.perf_counter()
    with StageBars(err) as bars:
        result = work(bars)
    return result, time.perf_counter() - started


def noise_note(random_weights: bool) -> str:
    """The summary's warning that a take from random test weights is noise."""
    return " (RANDOM TEST WEIGHTS: output is noise)" if random_weights else ""


class StageBars:
    """Rich progress: one bar per stage plus a line for loading, all on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.load_task: TaskID | None = None

    def __enter__(self) -> StageBars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        p = self.progress
        if isinstance(event, LoadProgress):
            if self.load_task is None:
                self.load_task = p.add_task("load", total=event.total, rate="")
            p.update(self.load_task, completed=event.done, total=event.total,
                     rate=event.message or event.what)
        elif isinstance(event, StageStarted):
            self.tasks[event.stage] = p.add_task(event.stage, total=event.total, rate="")
        elif isinstance(event, StageProgress):
            task = self.tasks[event.stage]
            unit = "tok/s" if event.stage in ("semantic", "coarse") else "it/s"
            p.update(task, completed=event.step, rate=f"{event.tokens_per_s:6.1f} {unit}")
        elif isinstance(event, StageFinished):
            task = self.tasks[event.stage]
            done = p.tasks[task].completed
            p.update(task, total=max(done, 1), completed=max(done, 1))


def run_say(args: argparse.Namespace, config: EngineConfig, text: str) -> int:
    """One take of ``text`` (`say` without --takes or --file) into one file."""
    from bark_engine.audio import write_wav

    from .finish import check_sidecars, deliver, plan_finishing, text_rewriter

    if getattr(args, "per_chapter", False) or getattr(args, "chapters", None):
        raise BadInputError("--per-chapter and --chapters need a script: use render SCRIPT "
                            "or say --file")
    out = check_output_path(args.out or timestamped_wav(), force=args.force)
    finishing = plan_finishing(args, out)
    check_sidecars(out, finishing, args.force)
    rewriter = text_rewriter(args)
    text = rewriter(text, args.voice)
    for note in rewriter.notes():
        Console(stderr=True).print(f"note: {note}", highlight=False)
    save_voice = None
    if args.save_voice is not None:
        save_voice = check_output_path(args.save_voice, "voice", force=args.force,
                                       suffix=".npz")
    options = generation_options(args)
    err = Console(stderr=True)
    engine = checked_engine(args, config, text)
    gen, total = with_stage_bars(
        err, lambda bars: engine.generate(text, voice=args.voice, options=options, on_event=bars)
    )
    finished = None
    if finishing is None:
        write_wav(out, gen.audio, gen.sample_rate)
    else:
        from ..finish.deliver import Piece

        finished = deliver(err, out, [Piece(gen.audio, 0.0, text)], gen.sample_rate, finishing)
    if save_voice is not None:
        gen.voice_prompt().save_npz(save_voice)
    noise = noise_note(gen.random_weights)
    err.print(
        f"{'wrote ' + str(out) if finishing is None else 'made'} · {gen.duration_s:.2f} s of audio in {total:.1f} s · seed {gen.seed}{noise}",
        highlight=False,
    )
    if args.json:
        report = {
            "out": str(out),
            "seed": gen.seed,
            "voice": gen.voice,
            "model": gen.model_id,
            "device": str(engine.device),
            "dtype": engine.dtype_name,
            "steps": engine.step_path,
            "stages": {
                stage: {"tokens": t.tokens, "seconds": round(t.seconds, 4)}
                for stage, t in gen.timings.items()
                if stage in STAGES
            },
            "audio_seconds": round(gen.duration_s, 4),
            "total_seconds": round(total, 4),
            "random_weights": gen.random_weights,
            "text": text,
            "finished": finished,
        }
        if save_voice is not None:
            report["voice_file"] = str(save_voice)
        print(json.dumps(report))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(EXIT_USAGE)
