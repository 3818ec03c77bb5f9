"""Output formats by file extension, and writing audio in any of them.

WAV, FLAC, MP3 and Ogg (Vorbis or Opus) go through python-soundfile
(libsndfile), in blocks (libsndfile's Ogg encoder fails on very long single
writes) to a temporary file renamed into place. M4B/M4A (AAC with chapters
and tags) go through PyAV, an optional extra (`finish.m4b`). Our own
`bark_engine.audio.write_wav` stays the writer of history takes.

Each format knows which sample rates it takes and its default one: Bark makes
24 kHz, which WAV, FLAC, Vorbis and Opus keep; MP3 and AAC default to 44.1 kHz
because their usual bit rates (192k) need MPEG-1 rates.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bark_engine.config import SAMPLE_RATE
from bark_engine.errors import BadInputError
from bark_engine.files import atomic_write

SAMPLE_RATES = (SAMPLE_RATE, 44100, 48000)  # what --sample-rate offers
DEFAULT_MP3_KBPS = 192
BLOCK_FRAMES = 1 << 16  # samples per libsndfile write

# Constant bit rates an MP3 frame can hold, in kbit/s: MPEG-1 (32, 44.1, 48 kHz) and
# MPEG-2 (16, 22.05, 24 kHz).
MP3_KBPS_MPEG1 = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MP3_KBPS_MPEG2 = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
AAC_KBPS = (32, 48, 64, 96, 128, 160, 192, 256, 320)


@dataclass(frozen=True)
class Format:
    """One kind of output file."""

    name: str  # what the user reads: "MP3", "Opus"
    extensions: tuple[str, ...]
    rates: tuple[int, ...]  # sample rates it accepts
    default_rate: int
    lossy: bool
    sf_format: str | None = None  # libsndfile's major format; None: written by PyAV
    sf_subtype: str | None = None
    chapters: bool = False  # can carry chapter markers and tags

    def bitrates(self, rate: int) -> tuple[int, ...]:
        """The constant bit rates (kbit/s) it takes at `rate`; () where none is chosen."""
        if self.name == "MP3":
            return MP3_KBPS_MPEG1 if rate >= 32000 else MP3_KBPS_MPEG2
        if self.name == "AAC":
            return AAC_KBPS
        return ()

    @property
    def default_kbps(self) -> int | None:
        return DEFAULT_MP3_KBPS if self.name in ("MP3", "AAC") else None


FORMATS = (
    Format("WAV", (".wav",), SAMPLE_RATES, SAMPLE_RATE, False, "WAV", "PCM_16"),
    Format("FLAC", (".flac",), SAMPLE_RATES, SAMPLE_RATE, False, "FLAC", "PCM_16"),
    Format("MP3", (".mp3",), SAMPLE_RATES, 44100, True, "MP3", "MPEG_LAYER_III"),
    Format("Ogg Vorbis", (".ogg", ".oga"), SAMPLE_RATES, SAMPLE_RATE, True, "OGG", "VORBIS"),
    # Opus codes at 8/12/16/24/48 kHz only.
    Format("Opus", (".opus",), (SAMPLE_RATE, 48000), 48000, True, "OGG", "OPUS"),
    Format("AAC", (".m4b", ".m4a"), SAMPLE_RATES, 44100, True, chapters=True),
)
EXTENSIONS = tuple(ext for f in FORMATS for ext in f.extensions)


def format_for(path: str | os.PathLike[str]) -> Format:
    """The format an output name asks for, by its extension (any case)."""
    ext = Path(path).suffix.lower()
    for fmt in FORMATS:
        if ext in fmt.extensions:
            return fmt
    raise BadInputError(f"cannot write {Path(path).name}: unknown extension "
                        f"'{Path(path).suffix or '(none)'}'; use one of {', '.join(EXTENSIONS)}")


def parse_kbps(text: str) -> int:
    """`192k`, `192`, `192000` -> 192 (kbit/s)."""
    t = text.strip().lower().removesuffix("bps").removesuffix("b").removesuffix("k")
    try:
        value = int(t)
    except ValueError:
        raise BadInputError(f"--bitrate wants a number of kbit/s such as 192k; got '{text}'") \
            from None
    return value // 1000 if value >= 8000 else value


@dataclass(frozen=True)
class Encoding:
    """A format with its sample rate and bit rate settled and checked."""

    format: Format
    rate: int
    kbps: int | None  # None: the format's own quality setting (lossless, Vorbis, Opus)

    @property
    def label(self) -> str:
        rate = f"{self.rate / 1000:g} kHz"
        return f"{self.format.name} {rate}" + (f" {self.kbps}k" if self.kbps else "")


def choose_encoding(path: str | os.PathLike[str], rate: int | None = None,
                    kbps: int | None = None) -> Encoding:
    """The encoding for `path`, or a one-line `BadInputError` for a rate or bit rate
    the format cannot take (checked before any work, so nothing is written)."""
    fmt = format_for(path)
    rate = fmt.default_rate if rate is None else rate
    if rate not in fmt.rates:
        raise BadInputError(f"{fmt.name} cannot be written at {rate} Hz; it takes "
                            + ", ".join(f"{r}" for r in fmt.rates))
    allowed = fmt.bitrates(rate)
    if kbps is not None and not allowed:
        raise BadInputError(f"--bitrate does not apply to {fmt.name}"
                            + (" (lossless)" if not fmt.lossy else
                               " (libsndfile sets its quality)")
                            + "; it is for .mp3, .m4b and .m4a")
    if kbps is None:
        kbps = fmt.default_kbps if fmt.default_kbps in allowed else (max(allowed) if allowed
                                                                       else None)
    elif kbps not in allowed:
        raise BadInputError(f"{fmt.name} at {rate} Hz cannot take {kbps}k; it takes "
                            + ", ".join(f"{k}k" for k in allowed))
    return Encoding(fmt, rate, kbps)


def _mp3_compression(kbps: int, rate: int) -> float:
    """libsndfile's compression level for a constant bit rate: it maps the level
    linearly onto the bit rate range of the MPEG version (0 -> the highest) and
    the encoder takes the nearest valid rate."""
    top, bottom = (320, 32) if rate >= 32000 else (160, 8)
    return min(0.999, max(0.0, (top - kbps) / (top - bottom)))


def write_audio(path: str | os.PathLike[str], audio: np.ndarray, encoding: Encoding, *,
                title: str | None = None, author: str | None = None,
                chapters: Sequence[tuple[float, str]] = ()) -> Path:
    """Write mono float32 `audio` (already at `encoding.rate`) atomically.

    `chapters` (start seconds, title) and the tags reach formats that hold
    them (M4B/M4A); other formats take the title and author as tags where
    libsndfile can."""
    path = Path(path)
    samples = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    if samples.ndim != 1:
        raise BadInputError(f"audio must be mono; got shape {samples.shape}")
    fmt = encoding.format
    if fmt.sf_format is None:
        from .m4b import write_m4b

        return write_m4b(path, samples, encoding, title=title, author=author,
                         chapters=chapters)
    import soundfile as sf

    extra = {}
    if fmt.name == "MP3":
        extra = {"compression_level": _mp3_compression(encoding.kbps or DEFAULT_MP3_KBPS,
                                                       encoding.rate),
                 "bitrate_mode": "CONSTANT"}
    with atomic_write(path, "w+b") as fh, sf.SoundFile(
            fh, "w", encoding.rate, 1, subtype=fmt.sf_subtype, format=fmt.sf_format,
            **extra) as out:
        for key, value in (("title", title), ("artist", author)):
            if value:
                with contextlib.suppress(RuntimeError, sf.LibsndfileError):  # not all hold tags
                    setattr(out, key, value)
        for start in range(0, len(samples), BLOCK_FRAMES):
            out.write(samples[start:start + BLOCK_FRAMES])
    return path
