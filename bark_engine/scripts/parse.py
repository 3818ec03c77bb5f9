"""Long scripts and dialogue: cut a script into segments Bark can speak, with pauses between.

Bark speaks about 13-15 s per call, so the long-form recipe is: one call per
segment, joined with short silences. `parse_script` reads a script line by
line and returns the segments in order, each with its voice, its speaker and
the silence to put before it.

Script syntax:
- Text lines are spoken. Consecutive lines of one speaker and voice form a
  paragraph; it is cut at sentence ends and packed into segments of at most
  `budget_s` of estimated speech and `max_tokens` text tokens (see
  `sentences`). Bark's cues (`[laughs]`, `♪ … ♪`, `—`, CAPS, `[MAN]`, ...)
  are ordinary text and pass through untouched.
- A blank line ends a paragraph: `paragraph_pause_s` of silence.
- `[pause]` (`pause_s`, 1 s) or `[pause 1.5s]` / `[pause 1.5]` anywhere
  inserts exactly that silence instead of the usual gap (several in a row
  add up). Pauses before the first or after the last segment are dropped.
- `Name: text` at the start of a line switches the speaker. Name is 1-32
  letters, digits, spaces or `_ . -`, at most 3 words, followed by `:` and a
  space (or a full-width `：`), so `http://…` and `10:30` are not speakers. A
  name of the speaker map, or one already met, is always a speaker; any other
  must look like a name: each word starting with a capital (or a letter
  without case), no digits, and not a heading or note word (`NOT_SPEAKERS`),
  so `Chapter 1: The Beginning` and `Note: bring water.` are spoken (with a
  warning saying so).
- `# Title` starts a chapter (a Markdown heading of level 1, as `book
  extract` writes them): the title is spoken as a paragraph of its own
  (`speak_headings`; audiobooks read chapter titles aloud) after
  `chapter_pause_s`, and segments carry their chapter's number. `## Sub`
  headings are spoken as paragraphs without their `#`s. `Title:` and
  `Author:` lines before any text are the script's tags, not speech.
- A line holding only `[voice name]` (a preset such as `[v2/en_speaker_6]`,
  `[announcer]`, or a My-voices name) that is not a known cue switches the
  voice for the text that follows, and ends the current speaker's turn.

Voices: a speaker's voice is `options.speakers[name]` (case-insensitive) if
mapped; otherwise the voice the speaker first spoke with: the last
voice-switch line before their first line, or `default_voice`. So
`[v2/en_speaker_6]` then `Ann: ...` gives Ann that voice for the whole
script. Gaps: `sentence_pause_s` between segments of one
paragraph, `speaker_pause_s` when the speaker or voice changes,
`paragraph_pause_s` after a blank line (the largest that applies).

numpy-free and torch-free: the editor calls this on every keystroke.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..voices.catalog import is_preset_name, valid_user_voice_name
from .script import Chapter, Script, ScriptOptions, Segment
from .sentences import (
    estimate_seconds,
    estimate_tokens,
    is_cjk,
    normalize_space,
    pack,
    split_sentences,
)

__all__ = ["KNOWN_CUES", "parse_script", "split_sentences"]

# Bracketed cues Bark reacts to; a line holding only one of these is text, not a voice switch.
KNOWN_CUES = frozenset(
    ["laughs", "laughter", "sighs", "music", "gasps", "clears throat", "man", "woman"]
)
MAX_PAUSE_S = 60.0

_PAUSE_RE = re.compile(
    r"\[\s*pause(?:\s+(?P<secs>\d+(?:\.\d*)?|\.\d+)\s*(?:s|secs?|seconds?)?)?\s*\]", re.I
)
_BRACKET_LINE_RE = re.compile(r"\[([^\[\]]+)\]")
# Labels that read like a speaker but head a line of text instead.
NOT_SPEAKERS = frozenset({
    "act", "caution", "chapter", "example", "fig", "figure", "hint", "important", "note",
    "notes", "nb", "part", "ps", "p.s", "reminder", "scene", "section", "step", "summary",
    "tip", "title", "todo", "update", "warning",
})
_HEADING_RE = re.compile(r"(?P<marks>#{1,6})\s+(?P<title>\S.*)")
_TAG_RE = re.compile(r"(?P<key>title|author)\s*:\s*(?P<value>\S.*)", re.I)
_SPEAKER_RE = re.compile(r"(?P<name>[^\W_][\w .\-]{0,31}?)\s*(?::(?=\s|$)|：)\s*(?P<rest>.*)")


@dataclass
class _Paragraph:
    """Text of one speaker and voice with no pause inside; `starts` maps offsets to lines."""

    speaker: str | None
    voice: str | None
    paragraph_break: bool  # a blank line came before it
    explicit_pause: float | None  # sum of `[pause]` markers before it, if any
    chapter: int | None = None
    opens_chapter: bool = False  # the first paragraph after a `# heading`
    text: str = ""
    starts: list[tuple[int, int]] = field(default_factory=list)  # (offset, line_no)

    def add(self, line_no: int, text: str) -> None:
        """Append a line; lines join with a space, except between two CJK characters."""
        if self.text and not (is_cjk(self.text[-1]) and is_cjk(text[0])):
            self.text += " "
        self.starts.append((len(self.text), line_no))
        self.text += text

    def line_at(self, offset: int) -> int:
        line = self.starts[0][1]
        for start, line_no in self.starts:
            if start > offset:
                break
            line = line_no
        return line


class _Parser:
    """Line-by-line state machine; one instance per `parse_script` call."""

    def __init__(self, options: ScriptOptions) -> None:
        self.options = options
        self.speaker_map = {k.strip().casefold(): v for k, v in options.speakers.items()}
        self.first_voice: dict[str, str | None] = {}  # casefolded speaker -> voice
        self.speakers: dict[str, str] = {}  # casefolded -> name as first written
        self.speaker: str | None = None
        self.voice: str | None = options.default_voice  # voice of the text that follows
        self.switched: str | None = options.default_voice  # set by the last voice-switch line
        self.paragraphs: list[_Paragraph] = []
        self.current: _Paragraph | None = None
        self.pending_break = False
        self.pending_pause: float | None = None
        self.warnings: list[str] = []
        self.chapters: list[tuple[str, int]] = []  # (title, line_no)
        self.pending_chapter = False
        self.tags: dict[str, str] = {}

    def feed(self, line_no: int, raw: str) -> None:
        line = raw.strip()
        if not line:
            self._close()
            self.pending_break = True
            return
        if not self.paragraphs and self.current is None and not self.chapters:
            tag = _TAG_RE.fullmatch(line)
            if tag and tag.group("key").lower() not in self.tags:
                self.tags[tag.group("key").lower()] = normalize_space(tag.group("value"))
                return
        heading = _HEADING_RE.fullmatch(line)
        if heading:
            self._heading(line_no, normalize_space(heading.group("title")),
                          len(heading.group("marks")) == 1)
            return
        bracket = _BRACKET_LINE_RE.fullmatch(line)
        if bracket and not _PAUSE_RE.fullmatch(line) and self._bracket_line(line_no, bracket):
            return
        label = _SPEAKER_RE.fullmatch(line)
        if label and self._is_speaker(line_no, label.group("name").strip()):
            self._switch_speaker(label.group("name").strip())
            line = label.group("rest")
        self._text_with_pauses(line_no, line)

    def _is_speaker(self, line_no: int, name: str) -> bool:
        """Whether `Name:` starts a speaker's line: a name of the speaker map or one met
        before always does; otherwise a short, name-like label (1-3 words, each starting
        with a capital or a letter without case, no digits) that is not a heading or a
        note (`Chapter 1:`, `Note:`, `Warning:` are spoken)."""
        key = name.casefold()
        if key in self.speaker_map or key in self.speakers:
            return True
        words = name.split()
        if not 1 <= len(words) <= 3 or any(w[0].islower() for w in words):
            return False
        if any(ch.isdigit() for ch in name) or words[0].casefold() in NOT_SPEAKERS:
            self.warnings.append(f"line {line_no}: “{name}:” read as text, not a speaker "
                                 "(give it a voice in the speaker map to make it one)")
            return False
        return True

    def _bracket_line(self, line_no: int, m: re.Match[str]) -> bool:
        """Handle a `[...]`-only line as a voice switch; False if it is text after all."""
        content = normalize_space(m.group(1))
        key = content.casefold()
        if key in KNOWN_CUES:
            return False
        if key.startswith("pause"):
            self.warnings.append(
                f"line {line_no}: {m.group(0)!r} is not a pause marker "
                "(write [pause] or [pause 1.5s]); spoken as text"
            )
            return False
        if is_preset_name(content):
            voice = content.lower()
        elif valid_user_voice_name(content):
            voice = content
            known = self.options.known_voices
            if known is not None and content.casefold() not in {k.casefold() for k in known}:
                self.warnings.append(
                    f"line {line_no}: voice {content!r} is neither a preset nor one of My voices"
                )
        else:
            self.warnings.append(
                f"line {line_no}: {m.group(0)!r} is not a known cue or voice name; spoken as text"
            )
            return False
        self._close()
        self.voice = self.switched = voice
        self.speaker = None
        return True

    def _heading(self, line_no: int, title: str, chapter: bool) -> None:
        """`# Title` opens a chapter; any heading is a paragraph of its own."""
        self._close()
        if chapter:
            self.chapters.append((title, line_no))
            self.pending_chapter = True
            self.speaker = None
            if not self.options.speak_headings:
                return
        self._text(line_no, title)
        self._close()
        self.pending_break = True

    def _switch_speaker(self, name: str) -> None:
        key = name.casefold()
        if key not in self.speakers:
            self.speakers[key] = name
            self.first_voice[key] = self.speaker_map.get(key, self.switched)
        self.speaker = self.speakers[key]
        voice = self.speaker_map.get(key, self.first_voice[key])
        if self.current is not None and (self.current.speaker, self.current.voice) != (
            self.speaker,
            voice,
        ):
            self._close()
        self.voice = voice

    def _text_with_pauses(self, line_no: int, line: str) -> None:
        pos = 0
        for m in _PAUSE_RE.finditer(line):
            self._text(line_no, line[pos : m.start()])
            self._close()
            secs = float(m.group("secs")) if m.group("secs") else self.options.pause_s
            if secs > MAX_PAUSE_S:
                self.warnings.append(
                    f"line {line_no}: pause of {secs:g} s cut to {MAX_PAUSE_S:g} s"
                )
                secs = MAX_PAUSE_S
            self.pending_pause = (self.pending_pause or 0.0) + secs
            pos = m.end()
        self._text(line_no, line[pos:])

    def _text(self, line_no: int, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self.current is None:
            self.current = _Paragraph(
                self.speaker, self.voice, self.pending_break, self.pending_pause,
                len(self.chapters) - 1 if self.chapters else None, self.pending_chapter,
            )
            self.pending_break, self.pending_pause = False, None
            self.pending_chapter = False
        self.current.add(line_no, text)

    def _close(self) -> None:
        if self.current is not None:
            self.paragraphs.append(self.current)
            self.current = None

    def finish(self) -> None:
        self._close()
        if self.pending_pause is not None and self.paragraphs:
            self.warnings.append("a pause after the last line is ignored")
        if self.paragraphs and self.paragraphs[0].explicit_pause is not None:
            self.warnings.append("a pause before the first line is ignored")
        silent = [n for k, n in self.speakers.items() if self.first_voice[k] is None]
        if len(self.speakers) > 1 and silent:
            names = ", ".join(silent)
            self.warnings.append(f"no voice for {names}: the default voice speaks for them")


def parse_script(
    text: str,
    options: ScriptOptions | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Script:
    """Cut `text` into segments (see the module docstring for the syntax and rules).

    `count_tokens` is the real tokenizer's count when available (e.g.
    `Engine.count_tokens`); otherwise a conservative estimate is used.
    """
    options = options or ScriptOptions()
    count = count_tokens or estimate_tokens
    parser = _Parser(options)
    for line_no, line in enumerate(text.splitlines(), start=1):
        parser.feed(line_no, line)
    parser.finish()

    def fits(piece: str) -> bool:
        return estimate_seconds(piece) <= options.budget_s and count(piece) <= options.max_tokens

    segments: list[Segment] = []
    warnings = parser.warnings
    prev: _Paragraph | None = None
    rewritten = False
    for para in parser.paragraphs:
        if options.rewrite is not None:
            said = options.rewrite(para.text, para.voice)
            rewritten = rewritten or said != para.text
            para.text = said
            if not para.text.strip():
                continue
        packed = pack(para.text, fits)
        for a, b in packed.oversized:
            words = normalize_space(para.text[a:b])
            short = words if len(words) <= 40 else words[:39] + "…"
            warnings.append(
                f"line {para.line_at(a)}: {short!r} is over the segment budget and has no "
                "place to cut without splitting a word"
            )
        if "♪" in para.text and para.text.count("♪") % 2:
            warnings.append(f"line {para.starts[0][1]}: unmatched ♪ (sung lines go between two)")
        for i, (a, b) in enumerate(packed.spans):
            if not segments:
                pause = 0.0
            elif i > 0:
                pause = options.sentence_pause_s
            else:
                pause = _gap(prev, para, options)
            segments.append(
                Segment(
                    index=len(segments),
                    text=normalize_space(para.text[a:b]),
                    voice=para.voice,
                    speaker=para.speaker,
                    pause_before_s=pause,
                    line_no=para.line_at(a),
                    chapter=para.chapter,
                )
            )
        prev = para
    firsts: dict[int, int] = {}
    for seg in segments:
        if seg.chapter is not None:
            firsts.setdefault(seg.chapter, seg.index)
    return Script(
        segments=tuple(segments),
        speakers_found=tuple(parser.speakers.values()),
        warnings=tuple(warnings),
        chapters=tuple(Chapter(title, line_no, firsts.get(i))
                       for i, (title, line_no) in enumerate(parser.chapters)),
        title=parser.tags.get("title"),
        author=parser.tags.get("author"),
        rewritten=rewritten,
    )


def _gap(prev: _Paragraph | None, para: _Paragraph, options: ScriptOptions) -> float:
    """Silence between the last segment of `prev` and the first of `para`."""
    if para.explicit_pause is not None:
        return para.explicit_pause
    gap = options.sentence_pause_s
    if prev is not None and (prev.speaker, prev.voice) != (para.speaker, para.voice):
        gap = max(gap, options.speaker_pause_s)
    if para.paragraph_break:
        gap = max(gap, options.paragraph_pause_s)
    if para.opens_chapter:
        gap = max(gap, options.chapter_pause_s)
    return gap
