"""The one engine of the studio, built on first use in a worker and loaded once.

It imports ``bark_engine.engine`` (and with it torch) only when a worker first asks
for the engine, so the first screen draws without torch; a lock makes concurrent
workers (a generation and an audition) load the models once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bark_engine.options import EngineConfig

from ...remote.choice import ServerChoice

if TYPE_CHECKING:
    from bark_engine.engine import Engine

RANDOM_WEIGHTS_MARKER = "RANDOM_WEIGHTS"  # file in a local model folder with test weights


def local_random_weights(models: str | None) -> bool | None:
    """Whether a local model folder carries the test-weights marker.

    Cheap enough for the first screen (one ``stat``); None when the source is a
    hub repo, which is only known after loading.
    """
    if not models:
        return None
    folder = Path(models).expanduser()
    if not folder.is_dir():
        return None
    return (folder / RANDOM_WEIGHTS_MARKER).exists()


class _Slot:
    """One engine and what of it is loaded; replaced whole when the config changes."""

    def __init__(self, config: EngineConfig, server: ServerChoice | None = None) -> None:
        self.config = config
        self.server = server
        self.engine: Engine | None = None
        self.loaded = False
        self.codec_loaded = False


def config_device_label(config: EngineConfig, server: ServerChoice | None = None) -> str:
    """Device (and precision, when one was asked for) as shown before the engine loads;
    once loaded, the engine's own device and dtype are shown instead."""
    if server is not None:
        return f"server {server.label}"
    return config.device if config.dtype is None else f"{config.device} · {config.dtype}"


class EngineHost:
    """Builds the engine on first use (in a worker) and loads it once."""

    def __init__(self, config: EngineConfig, server: ServerChoice | None = None) -> None:
        self._slot = _Slot(config, server)
        self._lock = threading.Lock()

    @property
    def config(self) -> EngineConfig:
        return self._slot.config

    @property
    def server(self) -> ServerChoice | None:
        """The `bark-tui serve` the engine runs on, or None: in this process."""
        return self._slot.server

    @property
    def engine(self) -> Engine | None:
        """The engine if a worker has built it already (never builds one)."""
        return self._slot.engine

    @property
    def loaded(self) -> bool:
        return self._slot.loaded

    def reconfigure(self, config: EngineConfig, server: ServerChoice | None = None) -> bool:
        """Use ``config`` (and ``server``) from the next job on; True when that means a
        reload (or a new connection).

        Never blocks: a running job keeps the engine it already holds.
        """
        if config == self._slot.config and server == self._slot.server:
            return False
        self._slot = _Slot(config, server)
        return True

    def _build(self, slot: _Slot) -> Engine:
        if slot.engine is None:
            from ...remote.choice import build_engine  # torch loads here, in a worker

            slot.engine = build_engine(slot.config, slot.server)
        return slot.engine

    def ensure_loaded(self, on_event: Callable[[Any], None]) -> tuple[Engine, bool]:
        """All models loaded; returns the engine and whether this call loaded them."""
        slot = self._slot
        with self._lock:
            engine = self._build(slot)
            if slot.loaded:
                return engine, False
            engine.load(on_event=on_event)
            slot.loaded = slot.codec_loaded = True
            return engine, True

    def ensure_codec(self, on_event: Callable[[Any], None]) -> Engine:
        """The codec loaded (enough for auditions)."""
        slot = self._slot
        with self._lock:
            engine = self._build(slot)
            if not slot.codec_loaded:
                engine.load_codec(on_event=on_event)
                slot.codec_loaded = True
            return engine

    def ensure_built(self) -> Engine:
        """The engine object, built but not loaded (for the tokenizer)."""
        slot = self._slot
        with self._lock:
            return self._build(slot)
