"""The one place that decides which engine a command or the studio talks to:
the local `Engine` in this process, or a `RemoteEngine` for a `bark-tui serve`.

Both answer the same calls (load, generate, takes, batches, audition, tokens),
so nothing above this module asks which one it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bark_engine.options import EngineConfig

from ..remote.choice import ServerChoice


def build_engine(config: EngineConfig, server: ServerChoice | None = None,
                 user_voices_dir: Path | None = None) -> Any:
    """An engine that loads nothing yet (torch is imported here for a local one)."""
    if server is not None:
        from ..remote.engine import RemoteEngine

        return RemoteEngine(server.url, server.key, user_voices_dir=user_voices_dir)
    from bark_engine.engine import Engine

    return Engine(config, user_voices_dir=user_voices_dir)
