"""What a parsed script is: its segments (one Bark call each), chapters and speakers,
and the options that decide how a script is cut and paced.

Plain frozen data shared by the parser, the renderer, the CLI and the studio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .sentences import estimate_seconds


@dataclass(frozen=True)
class ScriptOptions:
    """How to cut a script and how long to pause between segments."""

    budget_s: float = 13.0  # estimated seconds of speech per segment
    max_tokens: int = 256  # text tokens per segment (Bark's text context)
    sentence_pause_s: float = 0.25  # between segments of one speaker's paragraph
    speaker_pause_s: float = 0.5  # when the speaker or voice changes
    paragraph_pause_s: float = 0.75  # after a blank line
    pause_s: float = 1.0  # a bare `[pause]`
    chapter_pause_s: float = 2.0  # before a `# Chapter` heading
    speak_headings: bool = True  # chapter titles are read aloud
    speakers: Mapping[str, str] = field(default_factory=dict)  # speaker name -> voice
    default_voice: str | None = None  # None = the engine's default (no prompt)
    known_voices: frozenset[str] | None = None  # My-voices names; when given, others warn
    # What Bark is given for a paragraph's text, from the text and its voice (numbers read
    # aloud, a lexicon): applied before cutting and counting tokens. None: the text as is.
    rewrite: Callable[[str, str | None], str] | None = None


@dataclass(frozen=True)
class Segment:
    """One piece of a script, spoken by one Bark call."""

    index: int  # 0-based position in the script
    text: str  # what Bark is given (whitespace collapsed)
    voice: str | None  # preset or My-voices name; None = default voice
    speaker: str | None  # the `Name:` label it falls under, if any
    pause_before_s: float  # silence before it; 0 for the first segment
    line_no: int  # 1-based source line where it starts
    chapter: int | None = None  # index into `Script.chapters`; None before any heading


@dataclass(frozen=True)
class Chapter:
    """A `# Title` heading and the first segment under it."""

    title: str
    line_no: int
    first_segment: int | None  # None: nothing is spoken in it


@dataclass(frozen=True)
class Script:
    """Segments in speaking order, the speaker names found, and one line per oddity."""

    segments: tuple[Segment, ...]
    speakers_found: tuple[str, ...]
    warnings: tuple[str, ...]
    chapters: tuple[Chapter, ...] = ()
    title: str | None = None  # from a `Title:` line at the top
    author: str | None = None
    rewritten: bool = False  # `ScriptOptions.rewrite` changed some text

    @property
    def voices(self) -> tuple[str | None, ...]:
        """Distinct voices in order of first use (to resolve them all before generating)."""
        return tuple(dict.fromkeys(s.voice for s in self.segments))

    @property
    def estimated_seconds(self) -> float:
        """Speech estimate plus pauses: a rough length for the editor's status line."""
        speech = sum(estimate_seconds(s.text) for s in self.segments)
        return speech + sum(s.pause_before_s for s in self.segments)
