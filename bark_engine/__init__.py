"""bark_engine: compact, fast Bark inference (semantic → coarse → fine → EnCodec).

Importing this package is cheap: torch and transformers load only when an
`Engine` is built. It never imports a UI library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import BadInputError, BarkError, Cancelled, CheckpointError, VoiceError
from .events import LoadProgress, StageFinished, StageProgress, StageStarted
from .options import EngineConfig, GenerationOptions, Request

if TYPE_CHECKING:
    from .engine import Engine, Generation

__all__ = [
    "BadInputError",
    "BarkError",
    "Cancelled",
    "CheckpointError",
    "Engine",
    "EngineConfig",
    "Generation",
    "GenerationOptions",
    "LoadProgress",
    "Request",
    "StageFinished",
    "StageProgress",
    "StageStarted",
    "VoiceError",
]


def __getattr__(name: str):
    if name in ("Engine", "Generation"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)
