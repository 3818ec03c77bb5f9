"""`bark-tui book extract`: a book file in, an editable script out.

EPUB chapters come in spine order (ebooklib reads the container; `html_text`
reads each chapter); a chapter's title is its first heading, else its entry in
the table of contents, else "Chapter N". Markdown keeps `#` headings as
chapters and drops its markup; plain text is taken as it is. The script is
what `render` reads: `Title:`, `Author:`, then `# Title` per chapter with its
paragraphs separated by blank lines.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bark_engine.errors import BadInputError

from .html_text import html_blocks

BOOK_SUFFIXES = (".epub", ".md", ".markdown", ".txt")


@dataclass(frozen=True)
class Book:
    title: str | None
    author: str | None
    chapters: tuple[tuple[str, tuple[str, ...]], ...]  # (title, paragraphs)

    def script(self) -> str:
        lines = []
        if self.title:
            lines.append(f"Title: {self.title}")
        if self.author:
            lines.append(f"Author: {self.author}")
        for title, paragraphs in self.chapters:
            if lines:
                lines.append("")
            lines.append(f"# {title}")
            for para in paragraphs:
                lines += ["", para]
        return "\n".join(lines) + "\n"


def _meta(book, name: str) -> str | None:
    try:
        values = book.get_metadata("DC", name)
    except (KeyError, AttributeError):
        return None
    text = " ".join(str(values[0][0]).split()) if values else ""
    return text or None


def _toc_titles(book) -> dict[str, str]:
    """File name -> title from the table of contents (its first entry per file)."""
    titles: dict[str, str] = {}

    def walk(entry) -> None:  # a Link or Section, or (Section, [children]), or a list
        if isinstance(entry, tuple | list):
            for child in entry:
                walk(child)
            return
        href = getattr(entry, "href", None) or getattr(entry, "file_name", None)
        title = getattr(entry, "title", None)
        if isinstance(href, str) and isinstance(title, str) and title.strip():
            titles.setdefault(href.split("#")[0], " ".join(title.split()))
    walk(book.toc or [])
    return titles


def read_epub(path: Path) -> Book:
    if not zipfile.is_zipfile(path):
        raise BadInputError(f"{path.name} is not an EPUB: it is not a zip file")
    import ebooklib
    from ebooklib import epub

    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": False})
    except (epub.EpubException, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise BadInputError(f"{path.name} is not a readable EPUB: {exc}") from None
    except Exception as exc:  # lxml's XML errors and the like, from a damaged book
        raise BadInputError(f"{path.name} is not a readable EPUB: {type(exc).__name__}: "
                            f"{exc}") from None
    toc = _toc_titles(book)
    chapters: list[tuple[str, tuple[str, ...]]] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        if isinstance(item, epub.EpubNav):
            continue
        markup = item.get_content().decode("utf-8", errors="replace")
        blocks = html_blocks(markup)
        title = next((text for level, text in blocks if level == 1), None)
        paragraphs = [text for level, text in blocks if text != title or level == 0]
        if title is None:
            title = toc.get(item.get_name())
        if not paragraphs:
            continue
        chapters.append((title or f"Chapter {len(chapters) + 1}", tuple(paragraphs)))
    if not chapters:
        raise BadInputError(f"{path.name} has no text to read")
    return Book(_meta(book, "title"), _meta(book, "creator"), tuple(chapters))


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"(\*\*|__|\*|`)")
_MD_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")


def read_text_book(path: Path) -> Book:
    """Markdown or plain text: `#` headings are chapters, blank lines part paragraphs."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name} is not UTF-8 text") from None
    markdown = path.suffix.lower() in (".md", ".markdown")
    chapters: list[tuple[str, list[str]]] = []
    title = author = None
    para: list[str] = []

    def close() -> None:
        if para:
            if not chapters:
                chapters.append(("", []))
            chapters[-1][1].append(" ".join(para))
            para.clear()

    for raw in text.splitlines():
        line = raw.strip()
        tag = re.fullmatch(r"(title|author)\s*:\s*(.+)", line, re.I)
        if tag and not chapters and not para:
            if tag.group(1).lower() == "title":
                title = tag.group(2).strip()
            else:
                author = tag.group(2).strip()
            continue
        heading = _MD_HEADING.fullmatch(line)
        if heading:
            close()
            level, name = len(heading.group(1)), heading.group(2)
            if level == 1:
                chapters.append((name, []))
            else:
                if not chapters:
                    chapters.append(("", []))
                chapters[-1][1].append(name)
            continue
        if not line:
            close()
            continue
        if markdown:
            line = _MD_MARKS.sub("", _MD_LINK.sub(r"\1", line))
        para.append(line)
    close()
    found = [(name or (title or "Chapter 1"), tuple(ps)) for name, ps in chapters if ps]
    if not found:
        raise BadInputError(f"{path.name} has no text to read")
    return Book(title, author, tuple(found))


def read_book(path: Path) -> Book:
    if not path.is_file():
        raise BadInputError(f"book file not found: {path}")
    if path.suffix.lower() == ".epub":
        return read_epub(path)
    return read_text_book(path)
