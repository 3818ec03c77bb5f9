"""The script editor and its status line (tokens, seconds of audio, limits).

Bark reads at most 256 text tokens per take and cuts the rest silently, so the
status line warns *before* the limit and says plainly when a script is over
it. Until the engine's tokenizer is loaded the count is an estimate, marked
with "~" so nobody mistakes it for the real number.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, TextArea

from bark_engine.config import MAX_SEMANTIC_STEPS, MAX_TEXT_TOKENS, SEMANTIC_RATE_HZ
from bark_engine.scripts.sentences import estimate_seconds as speech_seconds
from bark_engine.scripts.sentences import estimate_tokens

from ..core.guard import GuardedHandlers
from .segment_list import SegmentPreview

WARN_TOKENS = 200  # start warning this close to the limit
MAX_TAKE_SECONDS = MAX_SEMANTIC_STEPS / SEMANTIC_RATE_HZ  # ≈ 15 s: the semantic cap


def estimate_seconds(text: str) -> float:
    """Roughly how long Bark takes to say ``text``, capped at what one take holds."""
    return min(speech_seconds(text), MAX_TAKE_SECONDS) if text.strip() else 0.0


def describe_script(text: str, tokens: int, exact: bool) -> tuple[str, str]:
    """The status line's text and its level ("ok", "warning", "error")."""
    if not text.strip():
        return "Empty script — type what the voice should say", "ok"
    mark = "" if exact else "~"
    seconds = estimate_seconds(text)
    parts = [f"{mark}{tokens} tokens", f"≈ {seconds:.0f} s"]
    level = "ok"
    if tokens > MAX_TEXT_TOKENS:
        parts.append(f"OVER the {MAX_TEXT_TOKENS}-token limit by {tokens - MAX_TEXT_TOKENS}")
        level = "error"
    elif tokens >= WARN_TOKENS:
        parts.append(f"near the {MAX_TEXT_TOKENS}-token limit")
        level = "warning"
    return " · ".join(parts), level


class ScriptStatus(Label):
    """One line under the editor; the level is a CSS class *and* words in the text."""

    def show(self, text: str, tokens: int, exact: bool) -> None:
        line, level = describe_script(text, tokens, exact)
        self.update(line)
        for name in ("ok", "warning", "error"):
            self.set_class(level == name, f"-{name}")


class ScriptEditor(GuardedHandlers, Vertical):
    """A soft-wrapping TextArea with the status line under it."""

    def __init__(self, text: str = "", cursor_blink: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self._initial = text
        self._blink = cursor_blink
        self.tokens = estimate_tokens(text)
        self.exact = False

    def compose(self) -> ComposeResult:
        area = TextArea(
            self._initial,
            id="script",
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
        )
        area.cursor_blink = self._blink
        yield area
        yield ScriptStatus(id="script-status")
        yield SegmentPreview(id="segment-preview")

    def on_mount(self) -> None:
        self.show_count(self.text, self.tokens, self.exact)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Where the segments fall, as you type (the event goes on to the screen)."""
        self.query_one(SegmentPreview).show_text(event.text_area.text)

    @property
    def area(self) -> TextArea:
        return self.query_one("#script", TextArea)

    @property
    def text(self) -> str:
        return self.area.text

    def set_text(self, text: str) -> None:
        """Replace the script (e.g. a take's text copied back), undoable in the editor."""
        area = self.area
        area.replace(text, area.document.start, area.document.end)
        area.focus()

    def show_count(self, text: str, tokens: int, exact: bool) -> None:
        """Show a count, ignoring it if the text changed since it was taken."""
        if text != self.text:
            return
        self.tokens, self.exact = tokens, exact
        self.query_one(ScriptStatus).show(text, tokens, exact)
