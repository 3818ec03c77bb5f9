"""`bark-tui` command line: the app (bare), `say`, `voices`, `download`.

Heavy imports (torch, the engine, Textual) happen inside the command that
needs them, so `bark-tui --help` and `bark-tui voices` answer at once.
Expected errors print one line and exit 2; nothing is written on error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from bark_engine.errors import BarkError
from bark_engine.openmp import set_default_waits
from bark_engine.options import (
    DEFAULT_FINE_TEMP,
    DEFAULT_MIN_EOS_P,
    DEFAULT_TEXT_TEMP,
    DEFAULT_WAVEFORM_TEMP,
    PRECISIONS,
)

from ..core.settings import DEFAULT_VOICE, MAX_SEED
from .args import (  # noqa: F401 - EXIT_* and the helpers are the CLI's, from one place
    EXIT_CANCELLED,
    EXIT_USAGE,
    add_cluster_arguments,
    add_render_arguments,
    batch_size,
    server_choice,
    voice_choice,
)
from .finish import add_finish_arguments


def _model_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """Model options, accepted before or after the command.

    In a subcommand the defaults are suppressed, so `bark-tui --large say …`
    is not overridden by the subcommand's own default.
    """
    g = p.add_argument_group("model")
    d = {"default": argparse.SUPPRESS} if sub else {}
    g.add_argument(
        "--models",
        metavar="DIR|REPO",
        **d,
        help="a local model folder (same file names as suno/bark) or a hub repo id "
        "(default: suno/bark, cached by huggingface_hub)",
    )
    size = g.add_mutually_exclusive_group()
    size.add_argument("--small", dest="size", action="store_const", const="small", **d,
                      help="small models (default; fastest on CPU)")
    size.add_argument("--large", dest="size", action="store_const", const="large", **d,
                      help="large models (better quality, ~2.5x the memory)")
    g.add_argument("--device", default=argparse.SUPPRESS if sub else "auto",
                   help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--dtype", choices=PRECISIONS, **d,
                   help="precision of the weights (default: auto = bfloat16 where it is "
                        "faster: on a GPU, and on the CPU with the compiled kernels; else "
                        "float32). On the CPU only the matrix weights narrow (bfloat16/float16 "
                        "half of float32's bytes, int8 a quarter, per-output scales); the sums "
                        "stay float32. float32 is the precision whose greedy tokens equal the "
                        "original Bark's; int8 changes the weights most (compare with the "
                        "same --seed)")
    g.add_argument("--threads", type=int, **d,
                   help="CPU threads for torch (default: torch's choice)")
    g.add_argument("--offline", action="store_true", **d,
                   help="never touch the network (same as HF_HUB_OFFLINE=1)")
    g.add_argument("--no-cuda-graphs", dest="no_cuda_graphs", action="store_true", **d,
                   help="on a CUDA GPU, run each decode step op by op instead of replaying "
                   "a CUDA graph (slower; for debugging)")
    g.add_argument("--no-kernels", dest="no_kernels", action="store_true", **d,
                   help="on the CPU, use the pure-torch path instead of the compiled kernels "
                   "(slower, and other tokens for a seed; for comparing)")


def _server_options(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """Where the engine runs: here (default) or a `bark-tui serve` (before or after
    the command, like the model options)."""
    g = p.add_argument_group("engine server")
    d = {"default": argparse.SUPPRESS} if sub else {}
    g.add_argument("--server", metavar="URL", **d,
                   help="use the engine of a `bark-tui serve` at URL (e.g. "
                   "http://127.0.0.1:8765; env BARK_TUI_SERVER) instead of loading the models "
                   "here: the GPU there, the files and the sound here")
    g.add_argument("--api-key-file", dest="server_key_file", type=Path, metavar="F", **d,
                   help="the server's key, in a file only you can read (env BARK_TUI_API_KEY "
                   "holds the key itself)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def _checked(parse: Callable[[str], float], ok: Callable[[float], bool], message: str):
    """An argparse type: `parse`, then refuse (exit 2, one line) what `ok` rejects."""
    def check(text: str):
        value = parse(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(message)
        return value
    return check


_nonneg_float = _checked(_finite, lambda v: v >= 0, "must be ≥ 0")
_positive_float = _checked(_finite, lambda v: v > 0, "must be more than 0")
_positive_int = _checked(int, lambda v: v >= 1, "must be 1 or more")
_seed = _checked(int, lambda v: 0 <= v <= MAX_SEED, f"must be 0..{MAX_SEED}")
_prob = _checked(_finite, lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1")
_top_p = _checked(_finite, lambda v: 0.0 < v <= 1.0,  # the same range Settings accepts
                  "must be more than 0 and at most 1")


def _generation_options(say: argparse.ArgumentParser) -> None:
    """Seed, temperatures and stopping rules, shared by `say` and `render`."""
    say.add_argument("--seed", type=_seed, help="random seed (default: a fresh one, reported)")
    say.add_argument("--text-temp", type=_nonneg_float, default=DEFAULT_TEXT_TEMP,
                     help=f"semantic temperature (default {DEFAULT_TEXT_TEMP}; 0 = greedy)")
    say.add_argument("--waveform-temp", type=_nonneg_float, default=DEFAULT_WAVEFORM_TEMP,
                     help=f"coarse temperature (default {DEFAULT_WAVEFORM_TEMP}; 0 = greedy)")
    say.add_argument("--fine-temp", type=_nonneg_float, default=DEFAULT_FINE_TEMP,
                     help=f"fine temperature (default {DEFAULT_FINE_TEMP}; 0 = greedy)")
    say.add_argument("--top-k", type=_positive_int,
                     help="sample only among the k likeliest tokens")
    say.add_argument("--top-p", type=_top_p, help="nucleus sampling threshold (0 < p ≤ 1)")
    say.add_argument("--min-eos-p", type=_prob, default=DEFAULT_MIN_EOS_P,
                     help="end the speech once the end-token probability reaches this "
                     f"(default {DEFAULT_MIN_EOS_P})")
    say.add_argument("--max-duration", type=_positive_float, metavar="S",
                     help="stop the semantic stage after about S seconds of audio")
    say.add_argument("--json", action="store_true",
                     help="print one JSON object with timings on stdout")
    say.add_argument("--force", action="store_true",
                     help="overwrite output files that exist (else they are refused)")


class OneLineErrors(argparse.ArgumentParser):
    """A bad value or a missing argument is one line and exit 2, not the whole usage
    (which can run to twenty lines for `say`); the line says where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the "
                     "options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="bark-tui",
        description="A terminal studio for the Bark text-to-audio model. "
        "Run without a command to open the studio.",
    )
    _model_options(parser)
    _server_options(parser)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    say = sub.add_parser("say", help="generate speech from text into a WAV file",
                         description="Generate speech from TEXT and write a WAV file.")
    say.add_argument("text", nargs="?", help="what to say (use --file for a script file)")
    say.add_argument("--file", type=Path, help="read the text from this file")
    say.add_argument("--voice", type=voice_choice, default=DEFAULT_VOICE,
                     help="a preset, a .npz file, a My-voices name, or 'none' to let Bark "
                     f"pick a speaker (default: {DEFAULT_VOICE}, as in the studio)")
    say.add_argument("--out", type=Path, help="output file: .wav, .flac, .mp3, .ogg, .opus, "
                     ".m4b or .m4a (default: bark-<time>.wav here)")
    say.add_argument("--save-voice", type=Path, metavar="F.npz",
                     help="also save this take as a voice prompt (.npz, original Bark format)")
    say.add_argument("--takes", type=batch_size, metavar="N",
                     help="make N takes as one batch: OUT-1.wav … OUT-N.wav, seeds seed … seed+N-1")
    _generation_options(say)
    add_render_arguments(say)
    add_cluster_arguments(say)
    add_finish_arguments(say)
    _model_options(say, sub=True)
    _server_options(say, sub=True)

    render = sub.add_parser(
        "render", help="render a long script (segments, dialogue) into one WAV, resumably",
        description="Render a script file: split into segments, `Name: text` dialogue lines "
        "and [voice] switches, blank lines and [pause 1.5s] as silences. Finished segments "
        "are kept in OUT.parts/, so a rerun after an interruption goes on where it stopped.")
    render.add_argument("script", type=Path, help="the script file (UTF-8 text)")
    render.add_argument("--voice", type=voice_choice, default=DEFAULT_VOICE,
                        help="the voice of lines without a speaker or [voice] line: a preset, "
                        f".npz file, My-voices name or 'none' (default: {DEFAULT_VOICE})")
    render.add_argument("--out", type=Path, help="output file: .wav, .flac, .mp3, .ogg, "
                        ".opus, .m4b or .m4a (default: bark-<time>.wav here)")
    _generation_options(render)
    add_render_arguments(render)
    add_cluster_arguments(render)
    add_finish_arguments(render)
    _model_options(render, sub=True)
    _server_options(render, sub=True)

    voices = sub.add_parser("voices", help="list the voice presets")
    voices.add_argument("--lang", help="language code or name (en, German, …)")
    voices.add_argument("--gender", choices=["male", "female"], help="only this gender")
    voices.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _server_options(voices, sub=True)

    dl = sub.add_parser("download", help="fetch weights, tokenizer, codec and presets now",
                        description="Download everything Bark needs into the Hugging Face "
                        "cache, so later runs work offline.")
    _model_options(dl, sub=True)
    dl.add_argument("--no-presets", action="store_true", help="skip the 130 voice presets")

    from .book import add_book_parser

    add_book_parser(sub)

    info = sub.add_parser("info", help="versions, devices, precision, model files, sound",
                          description="What this machine and install give Bark: versions, "
                          "devices and the precision that would run, which model files are "
                          "already here, whether sound can play, and where files are kept. "
                          "Downloads and generates nothing.")
    _model_options(info, sub=True)
    _server_options(info, sub=True)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")

    serve = sub.add_parser(
        "serve", help="run the engine as an HTTP service (OpenAI speech API + Bark jobs)",
        description="Serve Bark over HTTP: OpenAI's POST /v1/audio/speech (so existing "
        "clients work), Bark's own job API with progress events, and the studio and CLI "
        "as clients (--server URL). Listens on this machine only unless given a key; from "
        "another machine use an SSH tunnel: ssh -L 8765:localhost:8765 gpu-box. "
        "Needs the serve extra: pip install 'bark-tui[serve]'.")
    from ..service.run import add_serve_arguments

    add_serve_arguments(serve)
    _model_options(serve, sub=True)
    return parser


def _engine_config(args: argparse.Namespace):
    from bark_engine.options import EngineConfig

    return EngineConfig(
        models=args.models,
        size=args.size or "small",
        device=args.device,
        dtype=args.dtype,
        threads=args.threads,
        offline=True if args.offline else None,
        cuda_graphs=not getattr(args, "no_cuda_graphs", False),
        kernels=not getattr(args, "no_kernels", False),
    )


def _fail(message: str) -> int:
    print(f"bark-tui: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_default_waits()  # before torch is imported: see bark_engine.openmp
    try:
        if args.command == "say":
            from .say import read_text, run_say

            config, text = _engine_config(args), read_text(args)
            if args.takes is not None:  # N takes as one batch
                from .takes import run_takes

                return run_takes(args, config, text)
            if args.file is not None:  # a script file: segments, dialogue, pauses
                from .render import run_render

                return run_render(args, config, text)
            return run_say(args, config, text)
        if args.command == "render":
            from .render import run_render
            from .say import read_text

            args.file, args.text = args.script, None
            return run_render(args, _engine_config(args), read_text(args))
        if args.command == "voices":
            return _run_voices(args)
        if args.command == "download":
            from .download import run_download

            return run_download(args, _engine_config(args))
        if args.command == "book":
            from .book import run_book

            return run_book(args)
        if args.command == "serve":
            from ..service.run import run_serve

            return run_serve(args, _engine_config(args))
        if args.command == "info":
            from .info import run_info

            return run_info(args, _engine_config(args))
        return _run_app(args)
    except BarkError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("bark-tui: interrupted", file=sys.stderr)
        return EXIT_CANCELLED


def _run_app(args: argparse.Namespace) -> int:
    # The studio's UI thread shares the cores with torch: OpenMP waits spin
    # only briefly (bark_engine.openmp, set in main()).
    from ..studio.app import run_app

    if args.home is not None:
        os.environ["BARK_TUI_HOME"] = str(args.home)
    server = None
    if getattr(args, "server", None) or getattr(args, "server_key_file", None):
        server = server_choice(args)  # env and saved settings: the app reads those itself
    return run_app(_engine_config(args), home=args.home, server=server) or 0


def _run_voices(args: argparse.Namespace) -> int:
    from bark_engine.voices.catalog import find_presets

    presets = find_presets(lang=args.lang, gender=args.gender)
    server = server_choice(args)
    own: list[dict] = []
    if server is not None:  # the server's presets are ours (same catalog); it may keep more
        from ..remote.http import Connection

        conn = Connection(server.url, server.key)
        conn.health()
        listed = conn.json("GET", "/v1/audio/voices")["voices"]
        served = {v["id"] for v in listed if v.get("kind") == "preset"}
        presets = [p for p in presets if p.name in served]
        if not args.lang and not args.gender:
            own = [v for v in listed if v.get("kind") == "user"]
    if args.json:
        rows = [
            {"name": p.name, "language": p.language, "gender": p.gender,
             "prompt_seconds": p.prompt_seconds}
            for p in presets
        ] + [{"name": v["name"], "language": None, "gender": None,
              "prompt_seconds": v.get("prompt_seconds"), "server_voice": True} for v in own]
        print(json.dumps(rows, indent=1))
        return 0
    if not presets:
        return _fail("no presets match; try `bark-tui voices` without filters")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(presets)} voice presets", title_justify="left")
    for col in ("name", "language", "gender", "sample"):
        table.add_column(col, justify="right" if col == "sample" else "left")
    for p in presets:
        sample = f"{p.prompt_seconds:.1f} s" if p.prompt_seconds else "—"
        table.add_row(p.name, p.language, p.gender or "—", sample)
    for v in own:
        table.add_row(v["name"], "(the server's own voice)", "—", f"{v['prompt_seconds']:.1f} s")
    if server is not None:
        table.title = f"{len(presets) + len(own)} voices on {server.label}"
    Console().print(table)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
