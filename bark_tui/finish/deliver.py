"""The finishing chain, in the order it must run, and the files it writes.

Per segment: trim its ends and long pauses (`trim`), then level it
(`loudness.level_segments`). Then the segments are joined exactly as a render
joins them (the script's own pauses and fades), resampled, given room tone,
mastered as a whole, written (`formats`), read back and measured. Subtitles
and chapter marks take the segments' positions in that final file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bark_engine.audio import join_segments, segment_spans, silence
from bark_engine.errors import BadInputError
from bark_engine.files import atomic_write
from bark_engine.scripts.render import FADE_S

from .formats import Encoding
from .loudness import Mastering, Measured, level_segments, master, measure
from .resample import resample
from .subtitles import Timed, render_subtitles
from .trim import shorten_pauses, trim_ends

LOSSY_MARGIN_DB = 0.7  # lossy encoders add peaks: the limiter aims this far under the cap
LOSSLESS_MARGIN_DB = 0.2


@dataclass(frozen=True)
class Finishing:
    """What the deliverable should be (the command line's or the Save dialog's choice)."""

    encoding: Encoding
    mastering: Mastering | None = None
    trim: bool = False
    max_pause_s: float | None = None
    subtitles: str | None = None  # "srt" or "vtt"
    keep_cues: bool = False  # subtitles show `[laughs]` and the like


@dataclass(frozen=True)
class Piece:
    """One segment as finishing sees it."""

    audio: np.ndarray  # float32 at the engine's rate
    pause_before_s: float
    text: str = ""
    speaker: str | None = None
    chapter: int | None = None


@dataclass(frozen=True)
class Finished:
    audio: np.ndarray  # at encoding.rate
    rate: int
    timed: tuple[Timed, ...]  # each segment's place in `audio`
    chapter_starts: tuple[float, ...] = ()  # seconds, one per chapter that has a segment


@dataclass(frozen=True)
class Written:
    """A file written and what it measured when read back."""

    path: Path
    duration_s: float
    measured: Measured | None  # None when no mastering was asked for
    subtitles: Path | None = None
    chapters: tuple[tuple[float, str], ...] = field(default_factory=tuple)
    timed: tuple[Timed, ...] = ()  # where each segment sits in the file


def finish(pieces: Sequence[Piece], rate: int, finishing: Finishing) -> Finished:
    """The finished audio and the segments' positions in it."""
    if not pieces:
        raise BadInputError("nothing to finish")
    audios = [np.asarray(p.audio, dtype=np.float32) for p in pieces]
    if finishing.trim:
        audios = [trim_ends(a, rate) for a in audios]
    if finishing.max_pause_s is not None:
        audios = [shorten_pauses(a, rate, finishing.max_pause_s) for a in audios]
    spec = finishing.mastering
    if spec is not None and spec.level_segments and len(audios) > 1:
        reference = spec.lufs if spec.lufs is not None else (spec.rms_db or -20.0)
        audios = level_segments(audios, rate, reference)
    pauses = [p.pause_before_s if i else 0.0 for i, p in enumerate(pieces)]
    joined = join_segments(audios, pauses, rate, FADE_S)
    spans = segment_spans([len(a) for a in audios], pauses, rate)
    out_rate = finishing.encoding.rate
    audio = resample(joined, rate, out_rate)
    head = spec.head_s if spec is not None else 0.0
    if spec is not None and (spec.head_s or spec.tail_s):
        audio = np.concatenate([silence(spec.head_s, out_rate), audio,
                                silence(spec.tail_s, out_rate)])
    if spec is not None:
        margin = LOSSY_MARGIN_DB if finishing.encoding.format.lossy else LOSSLESS_MARGIN_DB
        audio = master(audio, out_rate, spec, margin_db=margin)
    timed = tuple(Timed(head + a / rate, head + b / rate, p.text, p.speaker)
                  for (a, b), p in zip(spans, pieces, strict=True))
    starts: dict[int, float] = {}
    for t, p in zip(timed, pieces, strict=True):
        if p.chapter is not None:
            starts.setdefault(p.chapter, t.start_s)
    first = min(starts) if starts else None
    if first is not None:  # the first chapter starts the file, room tone and all
        starts[first] = 0.0
    return Finished(audio.astype(np.float32, copy=False), out_rate, timed,
                    tuple(starts[k] for k in sorted(starts)))


def subtitle_path(out: Path, kind: str) -> Path:
    return out.with_suffix(f".{kind}")


def read_back(path: Path, encoding: Encoding) -> tuple[np.ndarray, int]:
    if encoding.format.sf_format is None:
        from .m4b import read_m4b

        audio, rate, _, _ = read_m4b(path)
        return audio, rate
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32")  # mono: what write_audio wrote
    return (audio if audio.ndim == 1 else audio.mean(axis=1)), rate


def write_finished(out: Path, finished: Finished, finishing: Finishing, *,
                   title: str | None = None, author: str | None = None,
                   chapter_titles: Sequence[str] = ()) -> Written:
    """Write the audio (and subtitles), then read it back and measure it. A lossy
    file whose decoded true peak still breaks the cap is mastered again with the
    overshoot added to the margin and rewritten (once)."""
    from .formats import write_audio

    chapters = tuple(zip(finished.chapter_starts, chapter_titles, strict=False))
    audio = finished.audio
    measured = None
    for attempt in range(2):
        write_audio(out, audio, finishing.encoding, title=title, author=author,
                    chapters=chapters)
        if finishing.mastering is None:
            break
        decoded, rate = read_back(out, finishing.encoding)
        measured = measure(decoded, rate)
        over = measured.true_peak_db - finishing.mastering.peak_db
        if attempt or over <= 0.0 or not math.isfinite(over):
            break
        margin = (LOSSY_MARGIN_DB if finishing.encoding.format.lossy else
                  LOSSLESS_MARGIN_DB) + over + 0.2
        audio = master(audio, finished.rate, finishing.mastering, margin_db=margin)
    subs = None
    if finishing.subtitles:
        subs = subtitle_path(out, finishing.subtitles)
        with atomic_write(subs, "w") as f:
            f.write(render_subtitles(finishing.subtitles, finished.timed, finishing.keep_cues))
    return Written(out, len(audio) / finished.rate, measured, subs, chapters, finished.timed)


def chapter_path(out: Path, number: int) -> Path:
    """`book.mp3` -> `book-01.mp3`: one file per chapter, beside the whole book's name."""
    return out.with_name(f"{out.stem}-{number:02d}{out.suffix}")


def chapters_json_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.chapters.json")


def split_by_chapter(pieces: Sequence[Piece]) -> list[tuple[int, list[Piece]]]:
    """(chapter index, its pieces) in order; pieces before the first heading join the
    first chapter. Each chapter's first pause is dropped: it starts its own file."""
    groups: list[tuple[int, list[Piece]]] = []
    for p in pieces:
        key = p.chapter or 0
        if not groups or groups[-1][0] != key:
            groups.append((key, []))
        groups[-1][1].append(p)
    return [(key, [replace(g[0], pause_before_s=0.0), *g[1:]]) for key, g in groups]


def write_chapters(out: Path, pieces: Sequence[Piece], rate: int, finishing: Finishing, *,
                   titles: Sequence[str], title: str | None = None,
                   author: str | None = None) -> tuple[list[Written], Path]:
    """One finished file per chapter (`book-01.mp3` …, each with its own room tone and
    mastering, as ACX wants) and `book.chapters.json`: each chapter's title, file
    and start in the book the files make played in order."""
    written, listing, start = [], [], 0.0
    for key, group in split_by_chapter(pieces):
        number = key + 1  # the book's own chapter number, also when a range is rendered
        path = chapter_path(out, number)
        name = titles[key] if key < len(titles) else f"Chapter {number}"
        done = write_finished(path, finish(group, rate, finishing), finishing,
                              title=name, author=author, chapter_titles=(name,))
        written.append(done)
        listing.append({"chapter": number, "title": name, "file": path.name,
                        "start_s": round(start, 3), "duration_s": round(done.duration_s, 3)})
        start += done.duration_s
    index = chapters_json_path(out)
    with atomic_write(index, "w") as f:
        json.dump({"title": title, "author": author, "chapters": listing}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")
    return written, index
