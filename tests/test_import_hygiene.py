"""The engine never imports a UI library; the app starts without torch."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_engine_imports_no_ui_library() -> None:
    mods = _modules_after("import bark_engine, bark_engine.engine, bark_engine.testing")
    assert "torch" in mods  # the check is meaningful: the pipeline really loaded
    for ui in ("textual", "rich", "sounddevice"):
        assert ui not in mods, ui


def test_cli_and_catalog_start_without_torch() -> None:
    mods = _modules_after("import bark_tui.cli, bark_engine.voices.catalog, bark_engine.audio")
    assert "torch" not in mods
    assert "transformers" not in mods
