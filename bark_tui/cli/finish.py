"""The finished-file options of `say` and `render`: format, sample and bit rate,
mastering, trimming, subtitles, chapters, and the text rules (numbers read
aloud, a lexicon). Everything is checked before any generation, so a bad value
costs nothing and nothing is written.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from bark_engine.errors import BadInputError

from ..finish.formats import EXTENSIONS, SAMPLE_RATES
from ..finish.loudness import ACX_RMS_RANGE, MASTER_CHOICES


def _range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    try:
        a, b = int(first), int(last) if sep else int(first)
    except ValueError:
        raise argparse.ArgumentTypeError("wants chapter numbers such as 3-7 or 4") from None
    if a < 1 or b < a:
        raise argparse.ArgumentTypeError("wants FIRST-LAST with 1 ≤ FIRST ≤ LAST")
    return a, b


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def _pause(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def add_finish_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "finished file", f"--out's extension picks the format: {', '.join(EXTENSIONS)}")
    g.add_argument("--sample-rate", type=int, choices=SAMPLE_RATES, metavar="HZ",
                   help="resample to 44100 or 48000 Hz (default: 24000, Bark's own, for WAV, "
                   "FLAC and Ogg; 44100 for MP3 and M4B; 48000 for Opus)")
    g.add_argument("--bitrate", metavar="KBPS",
                   help="constant bit rate of .mp3/.m4b/.m4a, e.g. 192k (default 192k)")
    g.add_argument("--master", choices=MASTER_CHOICES,
                   help="loudness standard: podcast (-16 LUFS, true peak ≤ -1 dBTP), "
                   "audiobook (ACX: RMS -20 dB, peaks ≤ -3 dB, room tone at head and tail), "
                   "broadcast (EBU R128 -23 LUFS), none (default)")
    g.add_argument("--lufs", type=_finite, metavar="LUFS",
                   help="integrated loudness to reach (overrides the preset's)")
    g.add_argument("--true-peak", type=_finite, metavar="DBTP",
                   help="true-peak cap in dBTP (overrides the preset's)")
    g.add_argument("--trim", action="store_true",
                   help="cut Bark's silence and breaths at the ends of each segment")
    g.add_argument("--max-pause", type=_pause, metavar="S",
                   help="shorten silences inside a segment longer than S seconds to S")
    g.add_argument("--subtitles", choices=("srt", "vtt"),
                   help="also write OUT.srt or OUT.vtt, one cue per segment")
    g.add_argument("--subtitle-cues", action="store_true",
                   help="keep Bark's cues such as [laughs] in the subtitles")
    g.add_argument("--per-chapter", action="store_true",
                   help="one file per `# Chapter` (OUT-01.ext …) and OUT.chapters.json")
    g.add_argument("--chapters", type=_range, metavar="A-B",
                   help="render only chapters A to B (1-based) of a script with `# ` headings")
    t = p.add_argument_group("text")
    t.add_argument("--normalize", choices=("on", "off"), default="on",
                   help="read digits, currencies, times, percentages and units aloud as "
                   "words of the voice's language (default on)")
    t.add_argument("--lang", metavar="CODE",
                   help="language of the text for reading numbers (default: the voice's)")
    t.add_argument("--lexicon", type=Path, metavar="FILE.toml",
                   help="how to say names and jargon: a TOML of [lang] \"word\" = \"said\"")


def text_rewriter(args: argparse.Namespace):
    from ..text.lexicon import EMPTY, load_lexicon
    from ..text.rewrite import Rewriter, check_lang

    lang = check_lang(args.lang) if getattr(args, "lang", None) else None
    lexicon = load_lexicon(args.lexicon) if getattr(args, "lexicon", None) else EMPTY
    return Rewriter(normalize=getattr(args, "normalize", "on") == "on", lang=lang,
                    lexicon=lexicon)


def plan_finishing(args: argparse.Namespace, out: Path):
    """The `Finishing` the options ask for, or None for a plain 24 kHz WAV (written by
    our own WAV writer, as before). Refuses what cannot be done, before any work."""
    from ..finish.deliver import Finishing
    from ..finish.formats import choose_encoding, parse_kbps
    from ..finish.loudness import custom_mastering

    kbps = parse_kbps(args.bitrate) if getattr(args, "bitrate", None) else None
    encoding = choose_encoding(out, getattr(args, "sample_rate", None), kbps)
    if encoding.format.sf_format is None:
        from ..finish.m4b import check_m4b_available

        check_m4b_available()
    mastering = custom_mastering(getattr(args, "master", None), getattr(args, "lufs", None),
                                 getattr(args, "true_peak", None))
    finishing = Finishing(encoding, mastering, trim=getattr(args, "trim", False),
                          max_pause_s=getattr(args, "max_pause", None),
                          subtitles=getattr(args, "subtitles", None),
                          keep_cues=getattr(args, "subtitle_cues", False))
    plain = (encoding.format.name == "WAV" and encoding.rate == 24000 and mastering is None
             and not finishing.trim and finishing.max_pause_s is None
             and not finishing.subtitles)
    return None if plain and not getattr(args, "per_chapter", False) else finishing


def check_sidecars(out: Path, finishing, force: bool) -> None:
    """Subtitles beside the output obey the same no-overwrite rule as the output."""
    from ..finish.deliver import subtitle_path

    if finishing is not None and finishing.subtitles:
        path = subtitle_path(out, finishing.subtitles)
        if path.exists() and not force:
            raise BadInputError(f"{path} exists; pass --force to overwrite it")


def select_chapters(script, wanted: tuple[int, int] | None, per_chapter: bool):
    """The script's segments of chapters A..B (their seeds and parts unchanged); a
    range outside the book, or chapters asked of a script without headings, is refused."""
    if wanted is None and not per_chapter:
        return script
    n = len(script.chapters)
    if n == 0:
        raise BadInputError("the script has no chapters: --chapters and --per-chapter need "
                            "`# Chapter title` lines")
    if wanted is None:
        return script
    a, b = wanted
    if b > n:
        raise BadInputError(f"--chapters {a}-{b} is outside the book: it has {n} chapters")
    keep = [s for s in script.segments if s.chapter is not None and a - 1 <= s.chapter <= b - 1]
    if not keep:
        raise BadInputError(f"chapters {a}-{b} have nothing to say")
    keep[0] = replace(keep[0], pause_before_s=0.0)
    return replace(script, segments=tuple(keep))


def chapter_outputs(out: Path, script, force: bool) -> list[Path]:
    from ..finish.deliver import chapter_path, chapters_json_path

    numbers = sorted({(s.chapter or 0) + 1 for s in script.segments})
    paths = [chapter_path(out, k) for k in numbers] + [chapters_json_path(out)]
    for path in paths:
        if path.exists() and not force:
            raise BadInputError(f"{path} exists; pass --force to overwrite it")
    return paths


def deliver(err: Console, out: Path, pieces, rate: int, finishing, *, script=None,
            per_chapter: bool = False) -> dict:
    """Finish and write; print what was written and what it measures; the report for --json."""
    from ..finish.deliver import finish, write_chapters, write_finished

    title = getattr(script, "title", None)
    author = getattr(script, "author", None)
    chapters = getattr(script, "chapters", ())
    if per_chapter:
        titles = [c.title for c in chapters]
        written, index = write_chapters(out, pieces, rate, finishing, titles=titles,
                                        title=title, author=author)
        for w in written:
            _print_written(err, w, finishing)
        err.print(f"wrote {index} ({len(written)} chapters)", highlight=False)
        return {"chapters_json": str(index), "files": [_report(w, finishing) for w in written]}
    present = sorted({p.chapter for p in pieces if p.chapter is not None})
    titles = [chapters[k].title for k in present] if chapters else []
    done = write_finished(out, finish(pieces, rate, finishing), finishing, title=title,
                          author=author, chapter_titles=titles)
    _print_written(err, done, finishing)
    return _report(done, finishing)


def _print_written(err: Console, w, finishing) -> None:
    bits = [f"{finishing.encoding.label}", f"{w.duration_s:.1f} s"]
    if w.chapters:
        bits.append(f"{len(w.chapters)} chapter marks")
    if w.subtitles:
        bits.append(f"subtitles {w.subtitles.name}")
    err.print(f"finished {w.path} · " + " · ".join(bits), highlight=False)
    spec = finishing.mastering
    if w.measured is not None and spec is not None:
        verdict = _verdict(w.measured, spec)
        err.print(f"  measured: {w.measured.line()} ({spec.summary}){verdict}", highlight=False)


def _verdict(measured, spec) -> str:
    problems = []
    if measured.true_peak_db > spec.peak_db + 0.05:
        problems.append(f"true peak {measured.true_peak_db:.1f} over {spec.peak_db:g}")
    if spec.lufs is not None and abs(measured.lufs - spec.lufs) > 0.5:
        problems.append(f"loudness {measured.lufs:.1f} off {spec.lufs:g}")
    if spec.rms_db is not None and not ACX_RMS_RANGE[0] <= measured.rms_db <= ACX_RMS_RANGE[1]:
        problems.append(f"RMS {measured.rms_db:.1f} outside {ACX_RMS_RANGE}")
    return " · within spec" if not problems else " · NOT within spec: " + "; ".join(problems)


def _report(w, finishing) -> dict:
    m = w.measured
    return {
        "out": str(w.path), "format": finishing.encoding.format.name,
        "sample_rate": finishing.encoding.rate, "kbps": finishing.encoding.kbps,
        "duration_seconds": round(w.duration_s, 4),
        "mastering": finishing.mastering.name if finishing.mastering else None,
        "measured": None if m is None else {
            "lufs": round(m.lufs, 2) if math.isfinite(m.lufs) else None,
            "true_peak_db": round(m.true_peak_db, 2) if math.isfinite(m.true_peak_db) else None,
            "rms_db": round(m.rms_db, 2) if math.isfinite(m.rms_db) else None},
        "subtitles": str(w.subtitles) if w.subtitles else None,
        "chapters": [{"start_s": round(s, 3), "title": t} for s, t in w.chapters],
        "segments": [{"start_s": round(t.start_s, 4), "end_s": round(t.end_s, 4)}
                     for t in w.timed],
    }
