"""The readable text of one XHTML chapter: headings and paragraphs, without notes.

A real HTML parser (the standard library's) walks the document; footnotes,
endnotes, note references, page-break markers, asides, scripts and styles are
dropped whole, so neither a footnote's text nor its number is read aloud.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "li", "blockquote", "section", "article", "br", "tr", "dd", "dt",
           "figcaption", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
_HEADINGS = {"h1": 1, "h2": 1, "h3": 2, "h4": 2, "h5": 2, "h6": 2}
_SKIP_TAGS = {"script", "style", "aside", "nav", "head", "title", "svg", "math", "noscript"}
_NOTE_TYPES = {"footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes",
               "noteref", "note", "pagebreak", "page-list", "biblioref"}
_NOTE_CLASSES = re.compile(r"\b(footnote|endnote|noteref|pagenum|page-?number|pagebreak)s?\b",
                           re.I)
_VOID = {"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"}


@dataclass
class Blocks:
    """Text blocks in reading order: (heading level or 0, text)."""

    items: list[tuple[int, str]] = field(default_factory=list)


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks = Blocks()
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.skip_depth = 0
        self.text: list[str] = []
        self.level = 0

    def _flush(self) -> None:
        text = " ".join("".join(self.text).split())
        if text:
            self.blocks.items.append((self.level, text))
        self.text = []
        self.level = 0

    def _is_note(self, tag: str, attrs: dict[str, str | None]) -> bool:
        kinds = set((attrs.get("epub:type") or "").split()) | set(
            (attrs.get("role") or "").replace("doc-", "").split())
        if kinds & _NOTE_TYPES or tag in _SKIP_TAGS:
            return True
        return bool(_NOTE_CLASSES.search(attrs.get("class") or "")
                    or _NOTE_CLASSES.search(attrs.get("id") or ""))

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): v for k, v in attrs}
        if tag in _VOID:
            if tag == "br" and not self.skip_depth:
                self.text.append(" ")
            return
        # A link inside a superscript is a note reference ("…he said.<sup><a>3</a></sup>").
        skipped = self.skip_depth > 0 or self._is_note(tag, a) or (
            tag == "a" and bool(self.stack) and self.stack[-1][0] == "sup")
        if skipped:
            self.skip_depth += 1
        elif tag in _BLOCKS:
            self._flush()
            self.level = _HEADINGS.get(tag, 0)
        self.stack.append((tag, skipped))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        while self.stack:  # tolerate unclosed tags: close up to the matching one
            open_tag, skipped = self.stack.pop()
            if skipped:
                self.skip_depth -= 1
            if open_tag == tag:
                break
        if not self.skip_depth and tag in _BLOCKS:
            self._flush()

    def handle_data(self, data):
        if not self.skip_depth:
            self.text.append(data)

    def close(self):
        super().close()
        self._flush()


_SUP_NUMBER = re.compile(r"<sup[^>]*>\s*\[?\d+\]?\s*</sup>", re.I)


def html_blocks(markup: str) -> list[tuple[int, str]]:
    """(heading level, text) for each block of `markup`: 1 for h1/h2, 2 for lower
    headings, 0 for paragraphs."""
    walker = _Walker()
    walker.feed(_SUP_NUMBER.sub("", markup))  # bare superscript note numbers
    walker.close()
    return walker.blocks.items
