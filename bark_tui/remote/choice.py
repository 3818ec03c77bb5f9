"""Which engine server to use, if any, and its key: one rule for the CLI and the studio.

The command line wins (`--server URL`, `--api-key-file F`), then the
environment (`BARK_TUI_SERVER`, `BARK_TUI_API_KEY` holding the key itself, or
`BARK_TUI_API_KEY_FILE`), then the studio's saved settings. No URL anywhere:
the engine runs in this process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bark_engine.options import EngineConfig

from ..service.config import read_key_file
from .http import check_url

SERVER_ENV = "BARK_TUI_SERVER"
KEY_ENV = "BARK_TUI_API_KEY"
KEY_FILE_ENV = "BARK_TUI_API_KEY_FILE"


@dataclass(frozen=True)
class ServerChoice:
    url: str
    key: str | None = None

    @property
    def label(self) -> str:
        """host:port, for the header and notices."""
        return self.url.split("://", 1)[1]


def choose_server(url: str | None = None, key_file: Path | str | None = None, *,
                  saved_url: str | None = None, saved_key_file: str | None = None,
                  env: Mapping[str, str] | None = None) -> ServerChoice | None:
    """The server to use, or None for the local engine. RemoteError for a bad URL,
    BadInputError for an unreadable or too-open key file."""
    env = os.environ if env is None else env
    chosen = url or env.get(SERVER_ENV) or saved_url
    if not chosen or not chosen.strip():
        return None
    if key_file:
        key = read_key_file(Path(key_file))
    elif env.get(KEY_ENV, "").strip():
        key = env[KEY_ENV].strip()
    elif env.get(KEY_FILE_ENV):
        key = read_key_file(Path(env[KEY_FILE_ENV]))
    elif saved_key_file:
        key = read_key_file(Path(saved_key_file))
    else:
        key = None
    return ServerChoice(check_url(chosen), key)


def build_engine(config: EngineConfig, server: ServerChoice | None = None,
                 user_voices_dir: Path | None = None) -> Any:
    """An engine that loads nothing yet (torch is imported here for a local one)."""
    if server is not None:
        from .engine import RemoteEngine

        return RemoteEngine(server.url, server.key, user_voices_dir=user_voices_dir)
    from bark_engine.engine import Engine

    return Engine(config, user_voices_dir=user_voices_dir)
