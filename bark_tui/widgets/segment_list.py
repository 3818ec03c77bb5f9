"""Where a long script's segments fall: one line per segment under the editor.

Shown only when the script is more than one plain take (several segments,
speakers or voice switches) or the parser has something to say, so a short
script keeps the editor's full height. The parse is the same one ctrl+g uses
(the user's speaker map, the selected voice), torch-free and cheap enough for
every keystroke.
"""

from __future__ import annotations

from textual.widgets import Static

from bark_engine.scripts.script import Script
from bark_engine.scripts.sentences import estimate_tokens

from ..core.guard import GuardedHandlers
from ..core.script_text import describe_segment, needs_script, voice_name

MAX_LINES = 6  # segment lines shown; the rest are counted


def describe_script_segments(script: Script, default_voice: str | None,
                             split_long: bool = True) -> str:
    """The preview's text; empty when the script is one plain take with nothing to warn."""
    segs = script.segments
    if not needs_script(script, default_voice, split_long):
        if len(segs) > 1:
            return (f"One paragraph that would make {len(segs)} segments: turn on Long scripts "
                    "(ctrl+p → Settings) to render it segment by segment, or add blank lines.")
        if not script.warnings:
            return f"Bark reads: {segs[0].text}" if script.rewritten and segs else ""
    head = [f"{len(segs)} segment{'s' if len(segs) != 1 else ''}",
            f"≈ {script.estimated_seconds:.0f} s with pauses"]
    if script.chapters:
        head.append(f"{len(script.chapters)} chapters"
                    + (f" of “{script.title}”" if script.title else ""))
    if script.speakers_found:
        head.append("speakers " + ", ".join(
            f"{name} → {voice_name(_voice_of(script, name))}" for name in script.speakers_found))
    lines = [" · ".join(head)]
    if script.chapters:
        names = " · ".join(f"{i + 1} {c.title}" for i, c in enumerate(script.chapters[:8]))
        more = f" · … {len(script.chapters) - 8} more" if len(script.chapters) > 8 else ""
        lines.append(f"chapters: {names}{more}")
    for seg in segs[:MAX_LINES]:
        lines.append(describe_segment(seg, estimate_tokens(seg.text)))
    if len(segs) > MAX_LINES:
        lines.append(f"… {len(segs) - MAX_LINES} more")
    lines.extend(f"⚠ {w}" for w in script.warnings)
    shared = _sharing_one_voice(script)
    if shared:
        lines.append(f"⚠ {', '.join(shared)} share one voice: ctrl+p → Speakers")
    return "\n".join(lines)


def _sharing_one_voice(script: Script) -> list[str]:
    """Speakers who ended up with one and the same voice (none mapped, no voice lines)."""
    names = list(script.speakers_found)
    if len(names) < 2:
        return []
    voices = {_voice_of(script, n) for n in names}
    return names if len(voices) == 1 else []


def _voice_of(script: Script, speaker: str) -> str | None:
    for seg in script.segments:
        if seg.speaker == speaker:
            return seg.voice
    return None


class SegmentPreview(GuardedHandlers, Static):
    """A few muted lines; hidden while there is nothing to show."""

    DEFAULT_CSS = """
    SegmentPreview {
        height: auto;
        max-height: 9;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $text-muted;
        padding: 0 1;
    }
    SegmentPreview.-empty {
        display: none;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.add_class("-empty")
        self.script: Script | None = None

    def show_text(self, text: str) -> None:
        from ..core.script_text import build_script

        app = self.app
        settings = getattr(app, "settings", None)
        if settings is None:
            return
        try:
            default = app.main.voices.selected.key or None  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - the voice list is not mounted yet
            default = settings.default_voice
        self.script = build_script(text, settings, default, getattr(app, "user_voices", None))
        shown = describe_script_segments(self.script, default, settings.long_form)
        self.update(shown)
        self.set_class(not shown, "-empty")
