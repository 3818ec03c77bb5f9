"""A `bark-tui serve` child process on 127.0.0.1 and a free port (tests, the benchmark).

Started by whoever needs it and stopped by it (terminate, then kill): never
another address, and every wait is bounded. The port is read from the line
the server prints once it listens.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

START_TIMEOUT_S = 90.0
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class ServerProcess:
    def __init__(self, models: Path, home: Path, *extra: str, env: dict | None = None) -> None:
        self.models, self.home, self.extra = models, home, extra
        self.env = {**os.environ, "BARK_TUI_HOME": str(home), "HF_HUB_OFFLINE": "1",
                    **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log: list[str] = []

    def start(self) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "bark_tui", "serve", "--host", "127.0.0.1", "--port", "0",
               "--models", str(self.models), "--device", "cpu",
               "--voices-dir", str(self.home / "voices"), *self.extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=self.env)
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:
                self.log.append(line.rstrip())
                m = _LISTENING.search(line)
                if m and not self.url:
                    self.url = m.group(1)
                    found.set()
        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("bark-tui serve did not start:\n" + "\n".join(self.log))
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """Gone at once, as a crashed or unplugged server is."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
