"""Subtitles parse back with real SRT and WebVTT parsers, cue times on the segments."""

from __future__ import annotations

import io

import pytest
import srt
import webvtt

from bark_tui.finish.subtitles import MAX_LINE, MAX_LINES, Timed, make_cues, render_subtitles

SEGMENTS = [
    Timed(0.5, 3.0, "Hello there [laughs], my friend."),
    Timed(3.5, 12.0, "This is a much longer segment that certainly will not fit on two lines "
          "of forty-two characters, so it is cut into several cues sharing the time.",
          "Samantha"),
    Timed(12.25, 14.0, "Another line from Samantha.", "Samantha"),
    Timed(14.75, 16.0, "[sighs]"),  # nothing to read: no cue
    Timed(16.0, 18.0, "And Bob < Ann & co.", "Bob"),
]


def test_srt_parses_back_with_times_on_the_segments():
    subs = list(srt.parse(render_subtitles("srt", SEGMENTS)))
    starts = {round(s.start.total_seconds(), 3) for s in subs}
    ends = {round(s.end.total_seconds(), 3) for s in subs}
    for seg in (SEGMENTS[0], SEGMENTS[1], SEGMENTS[2], SEGMENTS[4]):
        assert seg.start_s in starts and seg.end_s in ends
    assert subs[0].content == "Hello there, my friend."
    assert subs[1].content.startswith("Samantha: This is")
    assert not any("Samantha:" in s.content for s in subs[2:4] if "Another" in s.content)
    for s in subs:
        lines = s.content.split("\n")
        assert len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE for line in lines)
    middle = [s for s in subs if 3.5 <= s.start.total_seconds() < 12.0]
    assert len(middle) >= 2  # the long segment became several cues ...
    for a, b in zip(middle, middle[1:], strict=False):
        assert a.end == b.start  # ... back to back


def test_vtt_parses_back_with_voice_tags():
    text = render_subtitles("vtt", SEGMENTS)
    cues = webvtt.from_buffer(io.StringIO(text)).captions
    assert cues[0].start == "00:00:00.500" and cues[0].end == "00:00:03.000"
    assert cues[0].text == "Hello there, my friend."
    assert cues[1].voice == "Samantha"
    assert "&lt;" in text and "&amp;" in text  # escaped, so the parser reads the text
    assert cues[-1].end == "00:00:18.000"


def test_cues_can_be_kept():
    (cue,) = make_cues([SEGMENTS[0]], keep_cues=True)
    assert "[laughs]" in " ".join(cue.lines)


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_no_segments_is_a_valid_empty_file(kind):
    text = render_subtitles(kind, [])
    assert text in ("", "WEBVTT\n")
