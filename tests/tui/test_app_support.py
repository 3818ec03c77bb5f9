"""Shared helpers for the app's Pilot tests (no tests here; imported by test_app_*.py).

Every app in these tests runs the real engine on the session's tiny
random-weight model folder, with its files under a fresh ``BARK_TUI_HOME``.
Takes are capped at a fraction of a second of audio so that a generation
costs a few seconds on two shared cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bark_engine.options import EngineConfig
from bark_tui.core import locations
from bark_tui.core.settings import Settings, save_settings
from bark_tui.studio.app import BarkApp

APPS: list[BarkApp] = []  # every app made by make_app in the running test (see conftest)
TAKE_S = 0.3  # audio per test take: a handful of semantic tokens
SIZE = (120, 40)


def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BARK_TUI_HOME, and a fixed seed so takes are reproducible.

    Each test module wraps this in its own ``home`` fixture.
    """
    folder = tmp_path / "home"
    monkeypatch.setenv(locations.HOME_ENV, str(folder))
    write_settings(seed_mode="fixed", fixed_seed=1234)
    return folder


def write_settings(**fields) -> Settings:
    """Write a settings file as a user (or an earlier session) would have."""
    settings = Settings(**fields)
    save_settings(settings, locations.settings_path())
    return settings


def make_app(models: Path | str | None, take_s: float | None = TAKE_S, **kwargs) -> BarkApp:
    config = EngineConfig(models=None if models is None else str(models), threads=1)
    app = BarkApp(config, cursor_blink=False, max_duration_s=take_s, **kwargs)
    APPS.append(app)
    return app


async def wait_until(pilot, condition: Callable[[], object], timeout: float = 90.0,
                     what: str = "the condition") -> None:
    """Let the app run until ``condition()`` holds (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def messages(app: BarkApp) -> list[str]:
    """Every notice the app has shown (and not yet expired)."""
    return [str(n.message) for n in app._notifications]


def has_message(app: BarkApp, fragment: str) -> bool:
    return any(fragment in m for m in messages(app))


async def wait_for_message(pilot, app: BarkApp, fragment: str, timeout: float = 10.0) -> None:
    """Notices travel as messages: wait for one containing ``fragment``."""
    await wait_until(pilot, lambda: has_message(app, fragment), timeout,
                     f"a notice with {fragment!r} (have {messages(app)})")


async def type_text(pilot, text: str) -> None:
    """Type ``text`` key by key into whatever has focus."""
    await pilot.press(*text)
    await pilot.pause()


async def generate_take(pilot, app: BarkApp, timeout: float = 120.0):
    """Press ctrl+g and wait for the new take to land in the history; return it."""
    store = app.store
    assert store is not None
    before = store.count()
    await pilot.press("ctrl+g")
    await wait_until(pilot, lambda: store.count() > before and not app.queue.busy, timeout,
                     "the take to be saved")
    await pilot.pause()
    take = store.list_takes()[0]
    return take


async def compare_takes(pilot, app: BarkApp, text: str, n: int):
    """Type ``text``, ask for ``n`` takes (ctrl+t), wait for the compare screen; return it."""
    from bark_tui.screens.prompt import PromptScreen
    from bark_tui.screens.takes_compare import TakesCompareScreen

    await type_text(pilot, text)
    await pilot.press("ctrl+t")
    await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "the prompt")
    await pilot.pause()
    app.screen.query_one("#prompt-input").value = str(n)
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, TakesCompareScreen), 90,
                     "the compare screen")
    await pilot.pause()
    return app.screen


def capture_each_play(app: BarkApp, audio_capture) -> list:
    """Route each clip the app plays into its own capture file; the files, in order."""
    files: list = []
    real_play = app._play_audio

    def play_into_own_file(*args, **kwargs):
        files.append(audio_capture.next_file(f"play-{len(files)}.raw"))
        return real_play(*args, **kwargs)

    app._play_audio = play_into_own_file
    return files
