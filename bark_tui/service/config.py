"""How `bark-tui serve` is set up: its address, its key, its queue and what it keeps.

Stdlib only. The rules that keep a service safe live here, so the command
line and the tests check the same ones: loopback unless there is a key, and
a key file nobody else can read.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from bark_engine.errors import BadInputError

from .wire import DEFAULT_PORT

DEFAULT_HOST = "127.0.0.1"
DEFAULT_QUEUE_SIZE = 8  # jobs that may wait behind the running one; then 503
DEFAULT_KEEP_MINUTES = 30.0  # finished jobs (their audio and tokens) are kept this long
MAX_KEPT_JOBS = 64  # and at most this many: the oldest finished ones go first
MAX_KEPT_BYTES = 2 * 1024**3  # and their audio and tokens together at most this (~6 h at 24 kHz)
MAX_BODY_BYTES = 8 * 1024 * 1024  # any request body (inline voices make the largest)
MAX_INPUT_CHARS = 100_000  # text or script of one request (~2 hours of speech)
RETRY_AFTER_S = 5  # what a full queue asks a client to wait
MIN_KEY_CHARS = 16
KEY_HINT = ("make one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\" "
            "> ~/.bark-key && chmod 600 ~/.bark-key")


@dataclass(frozen=True)
class ServeConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None  # None: no key (loopback only)
    queue_size: int = DEFAULT_QUEUE_SIZE
    keep_minutes: float = DEFAULT_KEEP_MINUTES
    max_body_bytes: int = MAX_BODY_BYTES
    batch_rows: int | None = None  # rows of waiting jobs per engine batch; None: the engine's
    voice_map: dict[str, str] = field(default_factory=dict)  # OpenAI voice → ours (overrides)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_key_file(path: Path) -> str:
    """The key in `path` (its first line), refused when others may read the file
    or when it is too short to be a secret."""
    path = Path(path).expanduser()
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadInputError(f"the key file {path} can be read by others: chmod 600 {path}")
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(key) < MIN_KEY_CHARS:
        raise BadInputError(f"the key in {path} is shorter than {MIN_KEY_CHARS} characters; "
                            + KEY_HINT)
    return key


def check_bind(host: str, api_key: str | None) -> None:
    """A non-loopback address needs a key: anyone on the network could use it otherwise."""
    if not is_loopback(host) and not api_key:
        raise BadInputError(f"refusing to listen on {host} without a key (--api-key-file F); "
                            + KEY_HINT)
