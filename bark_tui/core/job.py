"""A requested take as the studio's queue holds it.

Plain data below every layer that shows or runs one: the panel, the messages, the
queue and the session name a job without importing Textual or the engine side.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bark_engine.options import GenerationOptions


@dataclass
class Job:
    """One requested take: what to say, in which voice, with which options."""

    text: str
    voice: str | None  # preset name, path of a user voice .npz, or None
    options: GenerationOptions
    voice_label: str = "no voice"
    size: str = "small"
    device: str = "auto"
    regenerates: int | None = None  # id of the take this one repeats, if any
    id: int = 0  # numbered by the app, 1, 2, … per session ("job 3"; takes have their own ids)
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def snippet(self) -> str:
        """The first words, for the queue line and notices."""
        flat = " ".join(self.text.split())
        return flat if len(flat) <= 24 else flat[:23] + "…"

    @property
    def doing(self) -> str:
        """What the panel's title says while the job runs."""
        return f"Generating job {self.id} “{self.snippet}”"
