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


SERVER_LIBRARIES = ("fastapi", "uvicorn", "starlette", "pydantic", "openai")


def test_studio_and_remote_client_start_without_the_serve_extra() -> None:
    """The studio (even with a server chosen) and the CLI import no web framework:
    the remote client is stdlib HTTP, and `serve` loads FastAPI only when it runs."""
    mods = _modules_after("import bark_tui.app, bark_tui.cli, bark_tui.engines, "
                          "bark_tui.remote.engine, bark_tui.service.run")
    for lib in SERVER_LIBRARIES:
        assert lib not in mods, lib
    assert "torch" not in mods  # the studio's first screen still draws without torch


def test_the_service_app_really_imports_fastapi() -> None:
    import pytest

    pytest.importorskip("fastapi")
    mods = _modules_after("import bark_tui.service.app")
    assert "fastapi" in mods  # the check above is meaningful


FINISHING_LIBRARIES = ("soundfile", "soxr", "pyloudnorm", "scipy", "num2words", "ebooklib",
                       "av", "lxml")


def test_studio_and_cli_start_without_the_finishing_libraries() -> None:
    """Formats, loudness, resampling, number reading and books load when a file is
    finished or a book read, never at start-up (the CLI's finishing options included)."""
    mods = _modules_after("import bark_tui.app, bark_tui.cli, bark_tui.cli_finish, "
                          "bark_tui.finish.deliver, bark_tui.text.rewrite, bark_tui.books.extract")
    for lib in FINISHING_LIBRARIES:
        assert lib not in mods, lib
    used = _modules_after("from bark_tui.text.numbers import read_numbers; "
                          "read_numbers('3', 'en')")
    assert "num2words" in used  # the check above is meaningful


def test_studio_and_cli_start_without_ray() -> None:
    """`--ray` imports Ray when a render asks for it; nothing else does."""
    mods = _modules_after("import bark_tui.app, bark_tui.cli, bark_tui.cli_render, "
                          "bark_tui.cli_cluster, bark_tui.cluster.driver")
    assert "ray" not in mods
