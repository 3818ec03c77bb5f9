"""Argument groups shared by several `bark-tui` commands (no heavy imports)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `render` and `say --file`."""
    p.add_argument("--speaker", action="append", default=[], metavar="NAME=VOICE",
                   help="voice for a `Name:` speaker in the script (repeatable)")
    p.add_argument("--chain", action="store_true",
                   help="use each segment as the next one's voice history (continuity; may drift)")
    p.add_argument("--reset-every", type=int, metavar="N",
                   help="with --chain, go back to the preset every N segments")
    p.add_argument("--long-form", action="store_true",
                   help="long-script profile: text temperature 0.6, min_eos_p 0.05")
    p.add_argument("--parts", type=Path, metavar="DIR",
                   help="where finished segments are kept (default: OUT.parts/)")
