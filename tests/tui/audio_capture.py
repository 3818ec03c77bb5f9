"""Capture what PortAudio plays, through ALSA's ``file`` plugin, for real playback tests.

alsa-lib reads ``$XDG_CONFIG_HOME/alsa/asoundrc`` after the system files, so a
test folder holding one of ``bark_tui/alsa/asoundrc-{raw,wav}`` becomes this
process's default output device: a device that writes every played sample to
``$AUDIO_CAPTURE_FILE`` and then discards it (no sound card, no daemon).

- ``raw``: little-endian float32 as played, bit-exact.
- ``wav``: 16-bit PCM with a real header (rate and channels checkable), 1 LSB.

PortAudio enumerates devices once, when it starts, so after moving
``XDG_CONFIG_HOME`` it must be rescanned (:func:`rescan_portaudio`).
``AUDIO_CAPTURE_FILE`` is read each time the device opens: change it between
plays to capture each play in its own file.

PortAudio adds about a thousand frames of silence before the signal: the
readers align on the first non-zero sample, so a test signal must start with
a non-zero sample.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import bark_tui

CAPTURE_ENV = "AUDIO_CAPTURE_FILE"
ALSA_CONFIG_DIR = Path(bark_tui.__file__).parent / "alsa"


def install_alsa_config(xdg_config_home: Path, variant: str = "raw") -> Path:
    """Write ``<xdg_config_home>/alsa/asoundrc`` from the shipped variant; return its path."""
    source = ALSA_CONFIG_DIR / f"asoundrc-{variant}"
    if not source.is_file():
        raise ValueError(f"no ALSA capture config {source.name!r} (variants: raw, wav)")
    target = Path(xdg_config_home) / "alsa" / "asoundrc"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source.read_text())
    return target


def require_portaudio() -> None:
    """Skip (not fail) where libportaudio2 is missing: these tests need the real library."""
    try:
        import sounddevice  # noqa: F401
    except OSError:
        import pytest

        pytest.skip("PortAudio library not found (apt-get install libportaudio2)")


def rescan_portaudio() -> None:
    """Make PortAudio start again, so ALSA re-reads its configuration and devices."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


def _first_nonzero(samples: np.ndarray) -> int:
    nz = np.flatnonzero(samples)
    return int(nz[0]) if len(nz) else len(samples)


@dataclass
class AudioCapture:
    """The capture files of one test, and readers for them."""

    folder: Path
    variant: str = "raw"
    files: list[Path] = field(default_factory=list)

    @property
    def path(self) -> Path:
        """The file the next opened stream writes to."""
        return self.files[-1]

    def next_file(self, name: str | None = None) -> Path:
        """Send the next stream to a fresh file (set before the play that should land there)."""
        suffix = ".raw" if self.variant == "raw" else ".wav"
        path = self.folder / (name or f"capture-{len(self.files)}{suffix}")
        path.unlink(missing_ok=True)
        self.files.append(path)
        os.environ[CAPTURE_ENV] = str(path)
        return path

    def raw(self, path: Path | None = None) -> np.ndarray:
        """Every captured sample (float32), leading silence included; empty if nothing came."""
        path = self.path if path is None else path
        if not path.exists():
            return np.zeros(0, dtype=np.float32)
        if self.variant == "raw":
            return np.fromfile(path, dtype="<f4").astype(np.float32)
        with wave.open(str(path), "rb") as wf:
            data = wf.readframes(wf.getnframes())
        return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)

    def samples(self, path: Path | None = None, trim_end: bool = False) -> np.ndarray:
        """Captured samples from the first non-zero one on (optionally without trailing zeros)."""
        data = self.raw(path)
        data = data[_first_nonzero(data) :]
        if trim_end and len(data):
            data = data[: len(data) - _first_nonzero(data[::-1])]
        return data

    def wav_format(self, path: Path | None = None) -> tuple[int, int, int]:
        """(sample rate, channels, bytes per sample) of a ``wav`` capture."""
        path = self.path if path is None else path
        with wave.open(str(path), "rb") as wf:
            return wf.getframerate(), wf.getnchannels(), wf.getsampwidth()


@contextmanager
def capture_audio(
    folder: Path, variant: str = "raw", xdg_config_home: Path | None = None
) -> Iterator[AudioCapture]:
    """Route this process's PortAudio output into files under ``folder``.

    With ``xdg_config_home`` the config is installed there and ``XDG_CONFIG_HOME``
    points at it for the duration; without it the caller has already done so
    (``tests/tui/conftest.py`` does at import, with the raw variant). The
    environment is restored and PortAudio rescanned on exit.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    saved = {key: os.environ.get(key) for key in (CAPTURE_ENV, "XDG_CONFIG_HOME")}
    if xdg_config_home is not None:
        install_alsa_config(xdg_config_home, variant)
        os.environ["XDG_CONFIG_HOME"] = str(xdg_config_home)
    capture = AudioCapture(folder=folder, variant=variant)
    capture.next_file()
    rescan_portaudio()
    try:
        yield capture
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if xdg_config_home is not None:
            rescan_portaudio()
