"""Fixtures for the app's tests (bark_tui)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .audio_capture import AudioCapture, capture_audio, install_alsa_config, require_portaudio

# --- PortAudio / ALSA capture ----------------------------------------------------------
# Owner: history/player. alsa-lib must find our capture config before PortAudio
# starts, so XDG_CONFIG_HOME moves here, at import, to a session folder holding
# the raw-float capture config. Unless a test asks for `audio_capture`, whatever
# the app plays goes to /dev/null through that device: no test needs (or reaches)
# a sound card. Side effect: platformdirs' config dir moves too, which is why the
# app's own folders are moved with BARK_TUI_HOME instead.

_SESSION_XDG = Path(tempfile.mkdtemp(prefix="bark-tui-xdg-"))
install_alsa_config(_SESSION_XDG, "raw")
os.environ["XDG_CONFIG_HOME"] = str(_SESSION_XDG)
os.environ.pop("AUDIO_CAPTURE_FILE", None)
atexit.register(shutil.rmtree, _SESSION_XDG, True)


@pytest.fixture
def audio_capture(tmp_path: Path) -> Iterator[AudioCapture]:
    """PortAudio output of this test, bit-exact float32, readable with `.samples()`."""
    require_portaudio()
    with capture_audio(tmp_path / "capture", "raw") as capture:
        yield capture


@pytest.fixture
def audio_capture_wav(tmp_path: Path) -> Iterator[AudioCapture]:
    """Like `audio_capture`, as 16-bit WAV files whose header tells rate and channels."""
    require_portaudio()
    with capture_audio(tmp_path / "capture", "wav", xdg_config_home=tmp_path / "xdg") as capture:
        yield capture


# --- end of PortAudio / ALSA capture -------------------------------------------------


# --- handler errors ----------------------------------------------------------------------
# The app turns an exception in a handler into the error modal and goes on (bark_tui.core.guard),
# so a bug no longer ends a Pilot test by itself. A test fails here instead, unless it is
# marked ``expect_handler_errors`` because it provokes them on purpose.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expect_handler_errors: the test makes app handlers fail on purpose")


@pytest.fixture(autouse=True)
def no_hidden_handler_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    from .test_app_support import APPS

    APPS.clear()
    yield
    errors = [error for app in APPS for error in app.handler_errors]
    APPS.clear()
    if not request.node.get_closest_marker("expect_handler_errors"):
        assert not errors, f"app handlers failed during the test: {errors!r}"
