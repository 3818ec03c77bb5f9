"""Sentence and clause boundaries, speech-length estimates, and packing text into budgets.

Bark speaks at most ~15 s per call and reads at most 256 text tokens, so a
long script must be cut into pieces. This module finds where text may be cut
(sentence ends, then clause punctuation, then word boundaries, then — for
CJK — between characters) and packs the pieces greedily into segments that
fit a budget. It never cuts inside a word, inside a `[cue]`, and prefers not
to cut inside a sung `♪ … ♪` line.

Sentence ends (`sentence_spans`):
- `. ! ? …` (runs like `?!` or `...` included, then closing quotes or
  brackets) followed by whitespace or the end of the text, unless the next
  word starts with a lowercase letter (so "e.g. this", "wait... what" and
  "3.14" stay whole), the word before a single `.` is a title abbreviation
  (Mr, Dr, Prof, St, ...), or it is a single-letter initial ("J. R. Smith").
  A `.`/`!`/`?` directly followed by a CJK character also ends a sentence.
- `。！？｡．` end a sentence with no space needed; so do Hindi `।` `॥`, and
  Arabic/Urdu `؟` `۔`.
- Nothing inside `[...]` or between a pair of `♪` notes is a boundary; a
  closing `♪` right after a sentence end belongs to that sentence.

Speech-length estimate (`estimate_seconds`): ~14.5 characters per second for
alphabetic scripts (letters, digits, punctuation and one per whitespace run:
about 150 English words a minute) and ~6 per second for CJK characters
(Han, kana, Hangul), which each carry about a syllable.

Token estimate (`estimate_tokens`), used when no tokenizer is at hand:
deliberately high for multilingual BERT WordPiece — every CJK character and
every punctuation mark one token, every run of letters/digits one token per
two characters (rounded up). Packing needs that high bound so no segment
goes past the 256-token cut, and the studio's editor and preview show the same
number (marked "~") until the real tokenizer is loaded, so what they show and
where a script is cut never disagree.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

Span = tuple[int, int]  # [start, end) into the text being packed
Fits = Callable[[str], bool]

ALPHA_CHARS_PER_S = 14.5
CJK_CHARS_PER_S = 6.0

# Words (lowercase, no dot) that end with "." without ending a sentence.
ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "sra",
        "srta",
        "jr",
        "st",
        "mt",
        "vs",
        "hr",
        "fr",
        "frl",
        "nr",
        "mme",
        "mlle",
        "dra",
        "ing",
        "dipl",
    ]
)

_CJK_RE = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)
_WESTERN_END_RE = re.compile(r"[.!?…]+[\"'”’»)]*")
_OTHER_END_RE = re.compile(r"(?:[。！？｡．]+[」』）】〕》〉\"”’]*|[।॥؟۔]+[\"'”’)]*)")
_CLAUSE_END_RE = re.compile(r"(?:[,;:.!?…]+[\"'”’»)]*(?=\s)|[、，；：。！？｡]+[」』）】\"”’]*)")
_BRACKET_RE = re.compile(r"\[[^\[\]\n]*\]")
_TOKEN_RUN_RE = re.compile(r"[^\W_]+|\S", re.UNICODE)


def is_cjk(ch: str) -> bool:
    """True for Han, kana and Hangul characters (scripts written without spaces or syllabic)."""
    return bool(_CJK_RE.match(ch))


def normalize_space(text: str) -> str:
    """Collapse whitespace runs to one space and trim: what Bark is given."""
    return " ".join(text.split())


def estimate_seconds(text: str) -> float:
    """Rough seconds of speech for `text` (see the module docstring for the rates)."""
    text = normalize_space(text)
    cjk = len(_CJK_RE.findall(text))
    return cjk / CJK_CHARS_PER_S + (len(text) - cjk) / ALPHA_CHARS_PER_S


def estimate_tokens(text: str) -> int:
    """A conservative (high) count of multilingual-BERT WordPiece tokens."""
    total = 0
    for run in _TOKEN_RUN_RE.findall(text):
        cjk = len(_CJK_RE.findall(run))
        rest = len(run) - cjk
        total += cjk + (math.ceil(rest / 2) if run[0].isalnum() or cjk else rest)
    return total


# --- protected regions --------------------------------------------------------------------


def protected_regions(text: str, notes: bool = True) -> list[Span]:
    """Spans no cut may fall strictly inside: `[cues]`, and (if `notes`) `♪ … ♪` pairs."""
    regions = [m.span() for m in _BRACKET_RE.finditer(text)]
    if notes:
        marks = [i for i, ch in enumerate(text) if ch == "♪"]
        regions += [(marks[i], marks[i + 1] + 1) for i in range(0, len(marks) - 1, 2)]
    return regions


@functools.lru_cache(maxsize=8)
def _blocked(text: str, notes: bool = True) -> bytes:
    """1 at each offset strictly inside a protected region (a cut there is not allowed)."""
    mask = bytearray(len(text) + 1)
    for a, b in protected_regions(text, notes):
        mask[a + 1 : b] = b"\x01" * max(0, b - a - 1)
    return bytes(mask)


# --- sentences ------------------------------------------------------------------------------


def _western_end_ok(text: str, m: re.Match[str]) -> bool:
    """Is this `. ! ? …` run a sentence end (see the module docstring)?"""
    end = m.end()
    nxt = text[end] if end < len(text) else ""
    if nxt and is_cjk(nxt):
        return True
    if nxt and not nxt.isspace() and nxt != "♪":
        return False
    if text[end:].lstrip()[:1].islower():
        return False
    if m.group().rstrip("\"'”’»)") == ".":
        word = re.search(r"(\S+)$", text[: m.start()])
        if word:
            w = word.group(1).lstrip("(\"'“‘«")
            if w.lower() in ABBREVIATIONS or (len(w) == 1 and w.isupper()):
                return False
    return True


def sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence end, in order."""
    regions = protected_regions(text)
    blocked = _blocked(text)
    closing_notes = {b for a, b in regions if text[a] == "♪"}
    ends: set[int] = set()
    for m in _WESTERN_END_RE.finditer(text):
        if not _western_end_ok(text, m):
            continue
        end = m.end()
        after = len(text[end:]) - len(text[end:].lstrip(" \t"))
        if end + after + 1 in closing_notes and text[end + after] == "♪":
            end += after + 1  # "la la. ♪" : the closing note ends the sentence
        if not blocked[end]:
            ends.add(end)
    for m in _OTHER_END_RE.finditer(text):
        if not blocked[m.end()]:
            ends.add(m.end())
    return sorted(e for e in ends if 0 < e < len(text))


def _cut(text: str, span: Span, cuts: list[int]) -> list[Span]:
    """Split `span` at `cuts` and trim whitespace; empty pieces vanish."""
    start, end = span
    points = [start, *(c for c in cuts if start < c < end), end]
    pieces = []
    for a, b in zip(points, points[1:], strict=False):
        piece = text[a:b]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if b - a - lead - trail > 0:
            pieces.append((a + lead, b - trail))
    return pieces


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of `text`, whitespace-trimmed."""
    return _cut(text, (0, len(text)), sentence_ends(text))


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each with its whitespace collapsed."""
    return [normalize_space(text[a:b]) for a, b in sentence_spans(text)]


# --- finer cuts for pieces over budget -------------------------------------------------------


def _clause_cuts(text: str, span: Span) -> list[int]:
    blocked = _blocked(text)
    return [
        m.end() for m in _CLAUSE_END_RE.finditer(text, span[0], span[1]) if not blocked[m.end()]
    ]


def _word_cuts(text: str, span: Span) -> list[int]:
    blocked = _blocked(text, notes=False)
    return [
        p
        for p in range(span[0] + 1, span[1])
        if text[p - 1].isspace() and not text[p].isspace() and not blocked[p]
    ]


def _cjk_cuts(text: str, span: Span) -> list[int]:
    """Before a CJK character, or between a CJK character and a following letter/digit."""
    blocked = _blocked(text, notes=False)
    cuts = []
    for p in range(span[0] + 1, span[1]):
        before, here = text[p - 1], text[p]
        if before.isspace() or here.isspace() or blocked[p]:
            continue
        if is_cjk(here) or (is_cjk(before) and here.isalnum()):
            cuts.append(p)
    return cuts


_LEVELS: tuple[Callable[[str, Span], list[int]], ...] = (_clause_cuts, _word_cuts, _cjk_cuts)


@dataclass(frozen=True)
class Packed:
    """Result of packing: segment spans in order, and the spans that could not fit."""

    spans: tuple[Span, ...]
    oversized: tuple[Span, ...]  # pieces over budget that no allowed cut could shorten


def _atoms(text: str, span: Span, fits: Fits, level: int, oversized: list[Span]) -> list[Span]:
    """Cut `span` at ever finer boundaries until each piece fits (or nothing finer is allowed)."""
    if fits(normalize_space(text[span[0] : span[1]])):
        return [span]
    for next_level in range(level, len(_LEVELS)):
        pieces = _cut(text, span, _LEVELS[next_level](text, span))
        if len(pieces) > 1:
            return [a for p in pieces for a in _atoms(text, p, fits, next_level + 1, oversized)]
    oversized.append(span)
    return [span]


def pack(text: str, fits: Fits) -> Packed:
    """Greedily join consecutive sentences (or finer pieces) while `fits` holds."""
    oversized: list[Span] = []
    atoms = [a for s in sentence_spans(text) for a in _atoms(text, s, fits, 0, oversized)]
    spans: list[Span] = []
    for atom in atoms:
        if spans and atom not in oversized and spans[-1] not in oversized:
            merged = (spans[-1][0], atom[1])
            if fits(normalize_space(text[merged[0] : merged[1]])):
                spans[-1] = merged
                continue
        spans.append(atom)
    return Packed(tuple(spans), tuple(oversized))
