"""A one-line waveform of the selected take, with a playhead while it plays.

Drawn from ``peak_envelope`` at the strip's own width, so it stays sharp when
the terminal is resized. The played part is a different style *and* the
position is written out in seconds.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..core.guard import GuardedHandlers

BLOCKS = " ▁▂▃▄▅▆▇█"


def envelope_to_blocks(envelope: np.ndarray) -> str:
    """Peaks in 0..1 → block characters; any sound shows at least ▁.

    Absolute, not normalised (a quiet take looks quiet), on a square-root
    scale so that speech at -20 dB is still clearly visible.
    """
    peaks = np.clip(np.nan_to_num(np.asarray(envelope, dtype=np.float64)), 0.0, 1.0)
    levels = np.ceil(np.sqrt(peaks) * (len(BLOCKS) - 1)).astype(int)
    return "".join(BLOCKS[i] for i in levels)


def _peaks(audio: np.ndarray, bins: int) -> np.ndarray:
    from bark_engine.audio import peak_envelope

    return np.asarray(peak_envelope(audio, bins), dtype=np.float64)


class Waveform(GuardedHandlers, Widget):
    """``label │ ▁▂▅▇▆▃ │ 1.2 / 4.3 s``; empty text when there is nothing to draw."""

    DEFAULT_CSS = """
    Waveform { height: 1; }
    """
    COMPONENT_CLASSES = {"waveform--played", "waveform--label"}

    position: reactive[float | None] = reactive(None)
    label: reactive[str] = reactive("No take selected")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._audio: np.ndarray | None = None
        self._duration = 0.0
        self._cache: tuple[int, str] | None = None
        self.missing = False

    def show_audio(self, audio: np.ndarray | None, sample_rate: int, label: str) -> None:
        """Draw ``audio`` (None: no take, or its WAV is missing — said in ``label``)."""
        self._audio = audio
        self._duration = 0.0 if audio is None else len(audio) / sample_rate
        self._cache = None
        self.position = None
        self.label = label
        self.refresh()

    @property
    def blocks(self) -> str:
        """The drawn waveform at the current width (tests read it)."""
        return self._blocks(self._bar_width())

    def _bar_width(self) -> int:
        return max(8, self.size.width - len(self.label) - 22)

    def _blocks(self, width: int) -> str:
        if self._audio is None or len(self._audio) == 0:
            return ""
        if self._cache is None or self._cache[0] != width:
            self._cache = (width, envelope_to_blocks(_peaks(self._audio, width)))
        return self._cache[1]

    def render(self) -> Text:
        label_style = self.get_component_rich_style("waveform--label")
        text = Text()
        text.append(f" {self.label} ", style=label_style)
        blocks = self._blocks(self._bar_width())
        if not blocks:
            return text
        text.append("│ ")
        if self.position is None:
            text.append(blocks)
            text.append(f" │ {self._duration:.1f} s")
            return text
        cut = int(round(len(blocks) * min(self.position / max(self._duration, 1e-9), 1.0)))
        played = self.get_component_rich_style("waveform--played")
        text.append(blocks[:cut], style=played)
        if cut < len(blocks):
            text.append("┃", style=played)  # the playhead itself, visible without colour
            text.append(blocks[cut + 1 :])
        text.append(f" │ ▶ {self.position:.1f} / {self._duration:.1f} s")
        return text
