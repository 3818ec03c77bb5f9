"""The editor's text as a script, read with the studio's settings: speakers, voices,
the lexicon and numbers, and whether it needs a script render at all.

Plain functions used while typing (the segment preview), on ctrl+g and by the
script jobs; nothing here renders, draws or imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.script import Script, ScriptOptions, Segment
from bark_engine.voices.catalog import UserVoices, is_preset_name, valid_user_voice_name

from .settings import Settings


def ray_label(address: str | None) -> str | None:
    """Where a script job runs when Settings names a Ray cluster (None: here)."""
    return None if not address else "Ray " + address


def user_voice_names(user_voices: UserVoices) -> frozenset[str]:
    return frozenset(v.name for v in user_voices.list())


def build_script(text: str, settings: Settings, default_voice: str | None,
                 user_voices: UserVoices | None = None, count_tokens=None) -> Script:
    """The script as the renderer will see it, with the user's speaker map."""
    from ..text.studio import studio_rewriter

    known = None if user_voices is None else user_voice_names(user_voices)
    rewriter, notes = studio_rewriter(settings)
    options = ScriptOptions(speakers=dict(settings.speakers), default_voice=default_voice,
                            known_voices=known, rewrite=rewriter)
    script = parse_script(text, options, count_tokens)
    notes = [*notes, *rewriter.notes()]
    return dataclasses.replace(script, warnings=(*script.warnings, *notes)) if notes else script


def written_structure(script: Script, default_voice: str | None) -> bool:
    """The user wrote a script, not a paragraph: speakers, voice switches, blank lines, pauses."""
    segs = script.segments
    if any(s.speaker is not None or s.voice != default_voice for s in segs):
        return True
    sentence = ScriptOptions().sentence_pause_s
    return any(s.pause_before_s != sentence for s in segs[1:])


def needs_script(script: Script, default_voice: str | None, split_long: bool = True) -> bool:
    """True when one plain take would not do.

    A script the user structured (see :func:`written_structure`) always renders
    segment by segment; one long paragraph only when ``split_long`` (the
    "long scripts" setting) is on — otherwise it stays one take, and one over
    Bark's limit is refused as before.
    """
    if written_structure(script, default_voice):
        return True
    return split_long and len(script.segments) > 1


def resolve_app_voice(voice: str | None, user_voices: UserVoices) -> str | None:
    """A preset name or a voice file path the engine can load; ValueError when unknown."""
    if voice is None or is_preset_name(voice) or Path(voice).is_file():
        return voice
    if valid_user_voice_name(voice) and user_voices.exists(voice):
        return str(user_voices.path_for(voice))
    raise ValueError(voice)


def resolve_segments(script: Script, user_voices: UserVoices) -> tuple[Script, list[str]]:
    """My-voices names become their files; returns the script and the unknown voice names."""
    unknown: list[str] = []
    segments = []
    for seg in script.segments:
        try:
            voice = resolve_app_voice(seg.voice, user_voices)
        except ValueError:
            if seg.voice not in unknown:
                unknown.append(str(seg.voice))
            voice = seg.voice
        segments.append(replace(seg, voice=voice))
    return replace(script, segments=tuple(segments)), unknown


def voice_name(voice: str | None) -> str:
    if voice is None:
        return "no voice"
    return Path(voice).stem if voice.endswith(".npz") else voice


def describe_segment(seg: Segment, tokens: int) -> str:
    """``#2 L3 +0.5s Ann · v2/en_speaker_6 · ≈4 s · 17 tok`` (short: the editor is narrow)."""
    from bark_engine.scripts.sentences import estimate_seconds

    who = f" {seg.speaker} ·" if seg.speaker else ""
    pause = f" +{seg.pause_before_s:g}s" if seg.pause_before_s else ""
    return (f"#{seg.index + 1} L{seg.line_no}{pause}{who} {voice_name(seg.voice)} · "
            f"≈{estimate_seconds(seg.text):.0f} s · {tokens} tok")
