"""`bark-tui book extract BOOK -o SCRIPT.txt`: a book as a script to edit and render."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_book_parser(sub) -> None:
    book = sub.add_parser("book", help="make a script from a book (EPUB, Markdown, text)",
                          description="Books in: turn a book into a script that render reads "
                          "(Title:/Author: lines, one `# Chapter` heading per chapter).")
    actions = book.add_subparsers(dest="book_command", metavar="ACTION", required=True)
    extract = actions.add_parser(
        "extract", help="write an editable script from an EPUB, Markdown or text book",
        description="Chapters in reading (spine) order, titled by their headings; footnotes, "
        "note numbers and page numbers dropped. Edit the script, then: bark-tui render "
        "SCRIPT --out book.m4b (chapter marks) or --per-chapter (one file per chapter).")
    extract.add_argument("book", type=Path, help="an .epub, .md or .txt file")
    extract.add_argument("-o", "--out", type=Path, help="the script to write (default: "
                         "BOOK with .txt, beside it)")
    extract.add_argument("--force", action="store_true", help="overwrite the script if it exists")


def run_book(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bark_engine.files import atomic_write
    from bark_engine.scripts.parse import parse_script

    from ..books.extract import read_book
    from .say import check_output_path

    book = read_book(args.book)
    out = args.out or args.book.with_suffix(".txt")
    if out.resolve() == args.book.resolve():
        out = args.book.with_name(args.book.stem + ".script.txt")
    out = check_output_path(out, "script", force=args.force, suffix=".txt")
    text = book.script()
    with atomic_write(out, "w") as f:
        f.write(text)
    script = parse_script(text)
    paragraphs = sum(len(ps) for _, ps in book.chapters)
    minutes = script.estimated_seconds / 60
    Console(stderr=True).print(
        f"wrote {out} · {len(book.chapters)} chapters · {paragraphs} paragraphs · "
        f"{len(script.segments)} segments, about {minutes:.0f} min of speech"
        + (f" · “{book.title}”" if book.title else "")
        + (f" by {book.author}" if book.author else ""), highlight=False)
    return 0
