"""M4B/M4A: AAC in an MP4 container with chapter markers and tags, through PyAV.

PyAV (FFmpeg's libraries) is the optional extra `bark-tui[m4b]`; without it
the write is refused in one line that says what to install, before any work.
"""

from __future__ import annotations

import fractions
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bark_engine.errors import BadInputError
from bark_engine.files import atomic_write

INSTALL_HINT = "M4B/M4A needs PyAV: pip install 'bark-tui[m4b]'"
_FRAME = 1024  # AAC frame size


def check_m4b_available() -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        raise BadInputError(INSTALL_HINT) from None


def write_m4b(path: Path, audio: np.ndarray, encoding, *, title: str | None = None,
              author: str | None = None, chapters: Sequence[tuple[float, str]] = ()) -> Path:
    """Mono AAC at `encoding.rate` and `encoding.kbps`; `chapters` are (start s, title),
    each ending where the next starts (the last at the end of the audio)."""
    check_m4b_available()
    import av

    duration_ms = round(len(audio) * 1000 / encoding.rate)
    marks = []
    for i, (start, name) in enumerate(chapters):
        end = chapters[i + 1][0] if i + 1 < len(chapters) else len(audio) / encoding.rate
        marks.append({"id": i + 1, "start": round(start * 1000),
                      "end": min(duration_ms, round(end * 1000)),
                      "time_base": fractions.Fraction(1, 1000), "metadata": {"title": name}})
    with atomic_write(path, "w+b") as fh:
        container = av.open(fh, "w", format="ipod")
        try:
            stream = container.add_stream("aac", rate=encoding.rate, layout="mono")
            stream.bit_rate = (encoding.kbps or 128) * 1000
            tags = {"title": title, "album": title, "artist": author, "album_artist": author}
            for key, value in tags.items():
                if value:
                    container.metadata[key] = value
            if path.suffix.lower() == ".m4b":
                container.metadata["genre"] = "Audiobook"
            if marks:
                container.set_chapters(marks)
            samples = np.ascontiguousarray(audio, dtype=np.float32)
            for start in range(0, len(samples), _FRAME):
                frame = av.AudioFrame.from_ndarray(samples[None, start:start + _FRAME],
                                                   format="flt", layout="mono")
                frame.sample_rate = encoding.rate
                frame.pts = start
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
    return path


def read_m4b(path: Path) -> tuple[np.ndarray, int, list[tuple[float, str]], dict[str, str]]:
    """Decoded mono audio, its rate, the chapters (start s, title) and the tags:
    how the summary checks what was written."""
    check_m4b_available()
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        chapters = [(float(c["start"] * c["time_base"]), c["metadata"].get("title", ""))
                    for c in container.chapters()]
        tags = dict(container.metadata)
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return audio, rate, chapters, tags
