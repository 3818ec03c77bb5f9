"""Mono float32 audio: WAV files, silence, fades, joining segments, waveform peaks.

WAV output is 16-bit PCM through the stdlib `wave` module, the format every
player and editor opens. Writes are atomic (temp file in the same folder,
then `os.replace`) so a crash or a full disk never leaves a truncated take.

numpy + stdlib only: the app imports this at start-up without torch.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import SAMPLE_RATE
from .errors import BadInputError
from .files import atomic_write

_PCM16_SCALE = 32767.0


def _as_mono(audio: np.ndarray, what: str = "audio") -> np.ndarray:
    arr = np.asarray(audio)
    if arr.ndim != 1:
        raise BadInputError(f"{what} must be a 1-D array of samples; got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def write_wav(
    path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE
) -> Path:
    """Write mono 16-bit PCM; samples are clipped to [-1, 1] and NaN becomes silence."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise BadInputError(f"cannot write {path.name}: folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"cannot write {path.name}: folder is not writable: {folder}")
    if path.is_dir():
        raise BadInputError(f"cannot write {path}: it is a folder")
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise BadInputError(f"sample rate must be a positive integer; got {sample_rate!r}")
    with atomic_write(path) as f, wave.open(f, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm16_bytes(audio))
    return path


def pcm16_bytes(audio: np.ndarray) -> bytes:
    """Mono 16-bit little-endian PCM, as `write_wav` stores it (clipped to [-1, 1],
    NaN as silence): the bytes of a WAV's data chunk and of a raw `pcm` stream."""
    samples = np.nan_to_num(_as_mono(audio), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.round(np.clip(samples, -1.0, 1.0) * _PCM16_SCALE).astype("<i2").tobytes()


def as_stored(audio: np.ndarray) -> np.ndarray:
    """The float32 samples `read_wav` gives back for the file `write_wav` makes of
    ``audio``, computed without the file: a caller that keeps audio it just stored
    plays exactly what a later read of the file plays."""
    return np.frombuffer(pcm16_bytes(audio), "<i2").astype(np.float32) / 32768.0


def wav_header(sample_rate: int = SAMPLE_RATE, data_bytes: int | None = None) -> bytes:
    """The 44-byte header of a mono 16-bit WAV. `data_bytes` None: a stream of unknown
    length (sizes 0xFFFFFFFF, which players read as "until the end")."""
    size = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + riff.to_bytes(4, "little") + b"WAVEfmt "
            + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
            + int(sample_rate).to_bytes(4, "little") + (int(sample_rate) * 2).to_bytes(4, "little")
            + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
            + b"data" + size.to_bytes(4, "little"))


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read an integer-PCM WAV as mono float32 in [-1, 1] (channels are averaged)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"WAV file not found: {path}")
    with path.open("rb") as f:
        return _read_wav(f, path.name)


def read_wav_bytes(data: bytes, label: str = "WAV") -> tuple[np.ndarray, int]:
    """`read_wav` for a WAV held in memory (one fetched from the service)."""
    return _read_wav(io.BytesIO(data), label)


def _read_wav(f, label: str) -> tuple[np.ndarray, int]:
    try:
        with wave.open(f, "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadInputError(f"{label}: not a PCM WAV file: {exc}") from exc
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = (np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)).astype(np.float32)
    else:
        raise BadInputError(f"{label}: unsupported sample width of {width} bytes")
    data = data[: len(data) - len(data) % channels].reshape(-1, channels)
    mono = data[:, 0] if channels == 1 else data.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def silence(seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """`round(seconds * sr)` zero samples (none for a negative length)."""
    return np.zeros(max(0, round(seconds * sr)), dtype=np.float32)


def duration_s(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    return len(audio) / sr


def apply_fades(
    audio: np.ndarray, fade_in_s: float, fade_out_s: float, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """A copy with linear fades; each fade is at most half the audio, so they never overlap."""
    out = np.array(_as_mono(audio), dtype=np.float32, copy=True)
    half = len(out) // 2
    n_in = min(max(0, round(fade_in_s * sr)), half)
    n_out = min(max(0, round(fade_out_s * sr)), half)
    if n_in:  # first sample silent, rising to just under full
        out[:n_in] *= np.arange(n_in, dtype=np.float32) / n_in
    if n_out:  # mirror image: the last sample is silent
        out[len(out) - n_out :] *= np.arange(n_out, dtype=np.float32)[::-1] / n_out
    return out


def join_segments(
    segments: Sequence[np.ndarray],
    gaps_s: Sequence[float],
    sr: int = SAMPLE_RATE,
    fade_s: float = 0.01,
) -> np.ndarray:
    """Concatenate segments with silences between them, fading each edge to avoid clicks.

    `gaps_s` holds either one gap per join (len(segments) - 1) or one pause
    before each segment (len(segments), as `Segment.pause_before_s`; the
    first then leads the result). The length is exactly
    sum(len(segment)) + sum(round(gap * sr)): fades stay inside segments.
    """
    if len(gaps_s) not in (len(segments), max(0, len(segments) - 1)):
        raise BadInputError(
            f"join_segments: {len(segments)} segments need {len(segments) - 1} gaps "
            f"(or one per segment); got {len(gaps_s)}"
        )
    if any(g < 0 for g in gaps_s):
        raise BadInputError("join_segments: gaps must not be negative")
    before = list(gaps_s) if len(gaps_s) == len(segments) else [0.0, *gaps_s]
    parts = [segment_piece(seg, before[i], sr, fade_s, f"segment {i}")
             for i, seg in enumerate(segments)]
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def segment_spans(lengths: Sequence[int], pauses_before_s: Sequence[float],
                  sr: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """(first, end) sample of each segment's audio in `join_segments`' result (one
    pause before each segment): where subtitles and chapters start."""
    spans, pos = [], 0
    for n, pause in zip(lengths, pauses_before_s, strict=True):
        pos += len(silence(pause, sr)) if pause else 0
        spans.append((pos, pos + int(n)))
        pos += int(n)
    return spans


def segment_piece(segment: np.ndarray, pause_before_s: float, sr: int = SAMPLE_RATE,
                  fade_s: float = 0.01, label: str = "segment") -> np.ndarray:
    """One segment as it sits in `join_segments`' result: its pause, then its faded
    audio. A stream that sends these pieces in order sends exactly the joined audio."""
    faded = apply_fades(_as_mono(segment, label), fade_s, fade_s, sr)
    if not pause_before_s:
        return faded.astype(np.float32, copy=False)
    return np.concatenate([silence(pause_before_s, sr), faded]).astype(np.float32, copy=False)


def peak_envelope(audio: np.ndarray, n_bins: int) -> np.ndarray:
    """Absolute peak of each of `n_bins` equal slices, in [0, 1], for a waveform strip.

    With more bins than samples, neighbouring bins repeat a sample instead of
    coming out empty.
    """
    if n_bins <= 0:
        return np.zeros(0, dtype=np.float32)
    mags = np.abs(np.nan_to_num(_as_mono(audio)))
    n = len(mags)
    if n == 0:
        return np.zeros(n_bins, dtype=np.float32)
    starts = (np.arange(n_bins, dtype=np.int64) * n) // n_bins
    peaks = np.maximum.reduceat(mags, starts)  # start >= next start -> that one sample
    return np.clip(peaks, 0.0, 1.0).astype(np.float32)
