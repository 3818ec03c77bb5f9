"""What the `bark-tui` commands share: argument groups, exit codes, the default output
name, the server choice (no heavy imports). Every `cli_*` module imports these from
here, never from `cli`, so the command modules form no import cycle."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bark_engine.config import MAX_BATCH
from bark_engine.options import LONG_FORM_MIN_EOS_P, LONG_FORM_TEXT_TEMP

EXIT_USAGE = 2
EXIT_CANCELLED = 130


def timestamped_wav(now: float | None = None) -> Path:
    """The default output name: bark-YYYYmmdd-HHMMSS.wav here."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path(f"bark-{stamp}.wav")


def server_choice(args: argparse.Namespace, saved=None):
    """The server the command line, the environment or (for the studio) the saved
    settings name; None: the engine runs here."""
    from ..remote.choice import choose_server

    return choose_server(getattr(args, "server", None), getattr(args, "server_key_file", None),
                         saved_url=getattr(saved, "server", None),
                         saved_key_file=getattr(saved, "server_key_file", None))


def batch_size(text: str) -> int:
    """1..MAX_BATCH rows: takes of one text, or segments of a script per batch."""
    value = int(text)
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_BATCH}")
    return value


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `render` and `say --file`."""
    p.add_argument("--speaker", action="append", default=[], metavar="NAME=VOICE",
                   help="voice for a `Name:` speaker in the script (repeatable)")
    p.add_argument("--chain", action="store_true",
                   help="use each segment as the next one's voice history (continuity; may drift)")
    p.add_argument("--reset-every", type=int, metavar="N",
                   help="with --chain, go back to the preset every N segments")
    p.add_argument("--long-form", action="store_true",
                   help=f"long-script profile: text temperature {LONG_FORM_TEXT_TEMP}, "
                   f"min_eos_p {LONG_FORM_MIN_EOS_P}")
    p.add_argument("--batch", type=batch_size, metavar="N",
                   help=f"render N independent segments at a time (1..{MAX_BATCH}; default: "
                   "what runs fastest on the device, 4 on a CPU, 8 on a GPU); a batch's "
                   "segments have exactly the tokens they would have alone")
    p.add_argument("--parts", type=Path, metavar="DIR",
                   help="where finished segments are kept (default: OUT.parts/); a run "
                   "without --seed goes on with the seed kept there")
    p.add_argument("--yes", action="store_true",
                   help="render a very long script without asking first")


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """`--ray` and its companions (render and say --file); Ray itself is imported only
    when a render asks for it."""
    g = p.add_argument_group("cluster (Ray, the 'ray' extra)")
    g.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="render on Ray workers: no address starts a local Ray instance on "
                   "127.0.0.1 for this render; 'auto' or ray://HOST:PORT joins a cluster")
    g.add_argument("--ray-workers", type=_at_least_one, metavar="N",
                   help="workers to start (default: one per GPU of the cluster, else its "
                   "CPUs / --ray-cpus-per-worker)")
    g.add_argument("--ray-cpus-per-worker", type=_at_least_one, default=1, metavar="N",
                   help="cores (torch threads) of each CPU worker (default 1)")
    g.add_argument("--ray-retries", type=int, default=3, metavar="N",
                   help="restarts of a worker that dies, each retrying its batch (default 3)")


NO_VOICE_WORDS = ("none", "")  # `--voice none`: no history prompt, Bark picks a speaker


def voice_choice(text: str) -> str | None:
    """A ``--voice`` value: a preset, a .npz file or a My-voices name, or None for none."""
    return None if text.strip().lower() in NO_VOICE_WORDS else text
