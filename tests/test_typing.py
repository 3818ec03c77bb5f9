"""The studio (app, controllers, jobs) and the shared core type-check: the controllers
are typed against the app they serve, so a renamed attribute or a missed None is
found here, not by a user mid-take."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_studio_and_core_type_check(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues found" in done.stdout and "source files" in done.stdout
