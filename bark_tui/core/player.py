"""Playback of takes through PortAudio (sounddevice), safe to drive from any thread.

Why it looks like this:

- ``sounddevice`` is imported at first use and guarded: without the PortAudio
  library the import itself raises ``OSError``, and a machine with no sound
  card has no output device at all. Either way the app must still open,
  generate and export; the player just reports a one-line reason and
  :meth:`Player.play` raises :class:`PlaybackUnavailable`.
- Nothing here may print: under Textual any byte on the terminal corrupts the
  screen. The PortAudio callback never lets an exception escape (cffi would
  print it), and errors are kept in :attr:`Player.last_error` instead.
- One callback-based ``OutputStream`` per clip. The callback copies frames
  from the clip under a small state lock; :attr:`Player.position_s` counts the
  frames actually handed to PortAudio, so a playhead never runs ahead of what
  was sent. Stream start/stop/close are serialised by a second lock that the
  callback never takes (stopping waits for the callback, so sharing one lock
  could deadlock).
- ``on_done`` runs on a short helper thread, never on PortAudio's: the callee
  may call :meth:`Player.play` again, which closes streams, and a stream
  cannot be closed from its own callback thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NO_DEVICE_REASON = (
    "No audio output device found — playback is off; generation and export still work."
)
NO_PORTAUDIO_REASON = (
    "PortAudio library not found (install libportaudio2) — playback is off; "
    "generation and export still work."
)
NO_SOUNDDEVICE_REASON = (
    "The sounddevice package is not installed — playback is off; "
    "generation and export still work."
)


class PlaybackUnavailable(RuntimeError):
    """Playback cannot happen here; ``reason`` is one line fit for a status bar."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _Session:
    """One clip being played on one stream."""

    audio: np.ndarray  # (N,) float32 at ``rate``
    rate: int
    pos: int  # frames handed to PortAudio so far (or the seek target)
    on_done: Callable[[], None] | None
    stream: Any = None
    stopped: bool = False  # stop() or a newer play() ended it
    active: bool = True  # the stream has not finished yet
    ended: threading.Event = field(default_factory=threading.Event)


def _as_mono_float32(audio: np.ndarray) -> np.ndarray:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"the player plays mono audio, got shape {arr.shape}")
    return np.array(arr, dtype=np.float32, copy=True)  # the caller may reuse its buffer


def _frame(seconds: float, rate: int, length: int) -> int:
    """A frame index inside the clip for a time in seconds (NaN counts as the start)."""
    if not math.isfinite(seconds):
        return length if seconds > 0 else 0
    return min(max(0, round(seconds * rate)), length)


def _resample_linear(audio: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Good enough for a device that refuses 24 kHz; exports never go through here."""
    n_out = max(1, round(len(audio) * dst / src))
    t_out = np.arange(n_out, dtype=np.float64) * (src / dst)
    return np.interp(t_out, np.arange(len(audio)), audio).astype(np.float32)


class Player:
    """Plays one clip at a time; all methods are non-blocking and thread-safe."""

    def __init__(self) -> None:
        self._ops = threading.RLock()  # stream lifecycle: play / stop / rescan / close
        self._state = threading.Lock()  # session fields read by the audio callback
        self._session: _Session | None = None
        self._sd: Any = None  # the sounddevice module once imported
        self._probed = False
        self._reason: str | None = None
        self.last_error: BaseException | None = None  # last failure in a callback or on_done

    # --- availability -----------------------------------------------------------

    @property
    def available(self) -> bool:
        """True when a default output device exists (checked once, again after rescan)."""
        return self.unavailable_reason is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why playback is off, in one line; None when it works."""
        with self._ops:
            if not self._probed:
                self._reason = self._probe()
                self._probed = True
            return self._reason

    def _probe(self) -> str | None:
        if self._sd is None:
            try:
                import sounddevice
            except OSError:
                return NO_PORTAUDIO_REASON
            except ImportError:
                return NO_SOUNDDEVICE_REASON
            self._sd = sounddevice
        try:
            device = self._sd.query_devices(kind="output")
        except (self._sd.PortAudioError, ValueError):
            return NO_DEVICE_REASON
        if not device or int(device.get("max_output_channels", 0)) < 1:
            return NO_DEVICE_REASON
        return None

    def rescan(self) -> str | None:
        """Stop, make PortAudio (and ALSA) enumerate devices again; return the new reason."""
        with self._ops:
            self.stop()
            if self._sd is not None:
                self._sd._terminate()
                self._sd._initialize()
            self._probed = False
            return self.unavailable_reason

    # --- state --------------------------------------------------------------------

    @property
    def is_playing(self) -> bool:
        with self._state:
            s = self._session
            return s is not None and s.active and not s.stopped

    @property
    def position_s(self) -> float:
        """Seconds of the current (or last) clip handed to PortAudio; 0 with no clip."""
        with self._state:
            s = self._session
            return 0.0 if s is None else s.pos / s.rate

    @property
    def duration_s(self) -> float:
        """Length of the current (or last) clip; 0 with no clip."""
        with self._state:
            s = self._session
            return 0.0 if s is None else len(s.audio) / s.rate

    # --- control ------------------------------------------------------------------

    def play(
        self,
        audio: np.ndarray,
        sample_rate: int,
        start_s: float = 0.0,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Start playing ``audio`` (mono) from ``start_s``; stops any clip already playing.

        Returns at once. ``on_done`` is called (on a helper thread) only when the
        clip plays to its end, not when it is stopped or replaced. Raises
        :class:`PlaybackUnavailable` when there is no output.
        """
        samples = _as_mono_float32(audio)
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        with self._ops:
            reason = self.unavailable_reason
            if reason is not None:
                raise PlaybackUnavailable(reason)
            self.stop()
            session, stream = self._open(samples, int(sample_rate), start_s, on_done)
            with self._state:
                self._session = session
            try:
                stream.start()
            except Exception as exc:
                with self._state:
                    session.active = False
                    session.stream = None
                stream.close(ignore_errors=True)
                session.ended.set()
                raise PlaybackUnavailable(f"Could not start audio output: {exc}") from exc

    def _open(
        self,
        samples: np.ndarray,
        rate: int,
        start_s: float,
        on_done: Callable[[], None] | None,
    ) -> tuple[_Session, Any]:
        """Open a stream at the clip's rate, else at the device's own rate (resampled)."""
        sd = self._sd
        try:
            return self._open_at(samples, rate, start_s, on_done)
        except sd.PortAudioError as first:
            try:
                device_rate = int(sd.query_devices(kind="output")["default_samplerate"])
            except (sd.PortAudioError, ValueError, KeyError, TypeError):
                device_rate = rate
            if device_rate == rate:
                raise PlaybackUnavailable(f"Could not open audio output: {first}") from first
            resampled = _resample_linear(samples, rate, device_rate)
            try:
                return self._open_at(resampled, device_rate, start_s, on_done)
            except sd.PortAudioError as exc:
                raise PlaybackUnavailable(f"Could not open audio output: {exc}") from exc

    def _open_at(
        self,
        samples: np.ndarray,
        rate: int,
        start_s: float,
        on_done: Callable[[], None] | None,
    ) -> tuple[_Session, Any]:
        start = _frame(start_s, rate, len(samples))
        session = _Session(audio=samples, rate=rate, pos=start, on_done=on_done)
        stream = self._sd.OutputStream(
            samplerate=rate,
            channels=1,
            dtype="float32",
            callback=lambda out, frames, t, status: self._fill(session, out, frames),
            finished_callback=lambda: self._finished(session),
        )
        session.stream = stream
        return session, stream

    def stop(self) -> None:
        """Stop at once (buffered audio is dropped). The position stays where it was."""
        with self._ops:
            with self._state:
                session = self._session
                if session is None or session.stream is None:
                    return
                session.stopped = True
                stream, session.stream = session.stream, None
            try:
                stream.abort(ignore_errors=True)
            finally:
                stream.close(ignore_errors=True)
                with self._state:
                    session.active = False
                session.ended.set()

    def seek(self, seconds: float) -> None:
        """Move the play position of the current clip (clamped to the clip)."""
        with self._state:
            s = self._session
            if s is not None:
                s.pos = _frame(seconds, s.rate, len(s.audio))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current clip ends or is stopped; True if it did. For scripts and tests."""
        with self._state:
            s = self._session
        return True if s is None else s.ended.wait(timeout)

    def close(self) -> None:
        """Stop playing; the player stays usable (a later play opens a new stream)."""
        self.stop()

    # --- PortAudio side -----------------------------------------------------------

    def _fill(self, session: _Session, out: np.ndarray, frames: int) -> None:
        """The audio callback (PortAudio's thread): copy the next frames, stop at the end."""
        try:
            with self._state:
                start = session.pos
                n = max(0, min(frames, len(session.audio) - start))
                out[:n, 0] = session.audio[start : start + n]
                session.pos = start + n
            out[n:] = 0
        except Exception as exc:  # never let cffi print a traceback on the terminal
            self.last_error = exc
            out.fill(0)
            raise self._sd.CallbackAbort from None
        if n < frames:
            raise self._sd.CallbackStop

    def _finished(self, session: _Session) -> None:
        """PortAudio says the stream is done: hand natural ends to a helper thread."""
        with self._state:
            natural = not session.stopped
            session.active = False
        if natural:
            threading.Thread(
                target=self._finish_natural, args=(session,), name="bark-tui-player-done",
                daemon=True,
            ).start()

    def _finish_natural(self, session: _Session) -> None:
        with self._ops:
            with self._state:
                stream, session.stream = session.stream, None
            if stream is not None:
                stream.close(ignore_errors=True)
        session.ended.set()
        if session.on_done is not None and session.pos >= len(session.audio):
            try:
                session.on_done()
            except Exception as exc:  # a bug in the caller must not kill the app's terminal
                self.last_error = exc
