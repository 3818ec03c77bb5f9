"""Subtitles (SRT and WebVTT) from a finished file's segment positions.

One segment gives one or more cues: its text (without Bark's bracketed cues
such as `[laughs]`, unless asked) wrapped into lines of at most `MAX_LINE`
characters, at most `MAX_LINES` lines per cue; the segment's time is shared
among its cues in proportion to their characters. A dialogue speaker is named
as WebVTT's voice tag (`<v Ann>`), and in SRT as `Ann:` where the speaker
changes.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

MAX_LINE = 42
MAX_LINES = 2
SUBTITLE_KINDS = ("srt", "vtt")
_CUE_RE = re.compile(r"\[[^\[\]]*\]")
_SPACE_BEFORE_MARK_RE = re.compile(r"\s+([,.;:!?…])")


@dataclass(frozen=True)
class Timed:
    """Where a segment's audio sits in the finished file."""

    start_s: float
    end_s: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]
    speaker: str | None = None
    named: bool = False  # SRT writes the speaker's name before this cue


def readable(text: str, keep_cues: bool = False) -> str:
    """What a viewer reads: the text without `[cues]` (unless kept), spaces collapsed."""
    if not keep_cues:
        text = _SPACE_BEFORE_MARK_RE.sub(r"\1", _CUE_RE.sub(" ", text).strip())
    return " ".join(text.split())


def make_cues(segments: Sequence[Timed], keep_cues: bool = False) -> list[Cue]:
    cues: list[Cue] = []
    previous_speaker: str | None = None
    for seg in segments:
        text = readable(seg.text, keep_cues)
        if not text or seg.end_s <= seg.start_s:
            continue
        named = seg.speaker is not None and seg.speaker != previous_speaker
        previous_speaker = seg.speaker
        first = f"{seg.speaker}: {text}" if named else text  # SRT's name counts in its lines
        lines = textwrap.wrap(first, MAX_LINE, break_long_words=True, break_on_hyphens=False)
        groups = [tuple(lines[i:i + MAX_LINES]) for i in range(0, len(lines), MAX_LINES)]
        total = sum(len(" ".join(g)) for g in groups)
        t = seg.start_s
        for k, group in enumerate(groups):
            share = len(" ".join(group)) / total
            end = seg.end_s if k == len(groups) - 1 else t + share * (seg.end_s - seg.start_s)
            cues.append(Cue(t, end, group, seg.speaker, named and k == 0))
            t = end
    return cues


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _without_name(cue: Cue) -> tuple[str, ...]:
    if not cue.named:
        return cue.lines
    prefix = f"{cue.speaker}: "
    first = cue.lines[0].removeprefix(prefix) if cue.lines[0].startswith(prefix) else \
        cue.lines[0]
    return (first, *cue.lines[1:])


def to_srt(cues: Sequence[Cue]) -> str:
    blocks = [f"{i}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n" + "\n".join(c.lines)
              for i, c in enumerate(cues, start=1)]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue]) -> str:
    blocks = ["WEBVTT"]
    for c in cues:
        lines = [_vtt_escape(line) for line in _without_name(c)]
        if c.speaker:
            lines[0] = f"<v {c.speaker}>{lines[0]}"
        blocks.append(f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n"
                      + "\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def render_subtitles(kind: str, segments: Sequence[Timed], keep_cues: bool = False) -> str:
    cues = make_cues(segments, keep_cues)
    return to_srt(cues) if kind == "srt" else to_vtt(cues)
