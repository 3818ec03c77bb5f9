"""The finished-file options end to end: `render`/`say` on tiny random-weight models,
a book built with ebooklib extracted and rendered to M4B and per-chapter files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt

from bark_engine.scripts.parse import parse_script
from bark_tui.cli.main import main

FAST = ["--max-duration", "0.6", "--seed", "11", "--batch", "4"]


def make_epub(path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("A Small Book")
    book.set_language("en")
    book.add_author("Jane Doe")
    bodies = [
        ("The Start", "<p>It was 1984.<sup><a href='#fn1' epub:type='noteref'>1</a></sup> "
         "A dark night.</p><aside epub:type='footnote' id='fn1'><p>Never read this note."
         "</p></aside>"),
        ("The Middle", "<p>Ann paid $5 <span epub:type='pagebreak' title='12'>12</span>"
         "for tea.</p>"),
        ("The End", "<p>Fin [laughs].</p>"),
    ]
    chapters = []
    for i, (title, body) in enumerate(bodies):
        c = epub.EpubHtml(title=title, file_name=f"c{i}.xhtml", lang="en")
        c.content = (f"<html xmlns:epub='http://www.idpf.org/2007/ops'><body><h1>{title}</h1>"
                     f"{body}</body></html>")
        book.add_item(c)
        chapters.append(c)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)


def positions(script_path: Path, parts: Path, head_s: float) -> list[float]:
    """Each segment's start in the file, from the kept parts and the script's pauses
    (24 kHz audio, no trimming): the stitched positions, computed independently."""
    script = parse_script(script_path.read_text(encoding="utf-8"))
    starts, pos = [], 0
    for seg in script.segments:
        (part,) = parts.glob(f"segment-{seg.index:04d}-*.npz")
        with np.load(part, allow_pickle=False) as data:
            n = len(data["audio"])
        pos += round(seg.pause_before_s * 24000) if seg.index else 0
        starts.append(head_s + pos / 24000)
        pos += n
    return starts


def test_book_extract_then_m4b_and_per_chapter_files(tiny_models, tmp_path, capsys):
    pytest.importorskip("av")
    from bark_tui.finish.m4b import read_m4b

    epub_path = tmp_path / "book.epub"
    make_epub(epub_path)
    script = tmp_path / "book.txt"
    assert main(["book", "extract", str(epub_path), "-o", str(script)]) == 0
    text = script.read_text(encoding="utf-8")
    assert text.startswith("Title: A Small Book\nAuthor: Jane Doe\n")
    assert [ln for ln in text.splitlines() if ln.startswith("# ")] == [
        "# The Start", "# The Middle", "# The End"]
    assert "Never read" not in text and "12" not in text and "1984. A dark" in text

    out = tmp_path / "book.m4b"
    capsys.readouterr()
    assert main(["--models", str(tiny_models), "render", str(script), "--out", str(out),
                 "--subtitles", "srt", "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    audio, rate, chapters, tags = read_m4b(out)
    assert rate == 44100 and tags["title"] == "A Small Book"
    starts = positions(script, Path(report["parts"]), 0.0)
    firsts = [seg.index for seg in parse_script(text).segments if seg.text in
              ("The Start", "The Middle", "The End")]
    want = [0.0] + [round(starts[i], 3) for i in firsts[1:]]
    assert [round(s, 3) for s, _ in chapters] == pytest.approx(want, abs=0.0011)
    assert [t for _, t in chapters] == ["The Start", "The Middle", "The End"]
    assert "nineteen eighty-four" in " ".join(report["segment_texts"])  # numbers read aloud
    subs = list(srt.parse((tmp_path / "book.srt").read_text(encoding="utf-8")))
    sub_starts = sorted({round(s.start.total_seconds(), 3) for s in subs})
    assert all(any(abs(s - round(x, 3)) <= 0.0011 for s in sub_starts) for x in starts)

    # One file per chapter, mastered for ACX, from the same parts (nothing re-made).
    mp3 = tmp_path / "book.mp3"
    assert main(["--models", str(tiny_models), "render", str(script), "--out", str(mp3),
                 "--per-chapter", "--master", "audiobook", "--parts", report["parts"],
                 "--json", *FAST]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["reused"] == again["segments"]
    listing = json.loads((tmp_path / "book.chapters.json").read_text(encoding="utf-8"))
    files = [tmp_path / c["file"] for c in listing["chapters"]]
    assert [f.name for f in files] == ["book-01.mp3", "book-02.mp3", "book-03.mp3"]
    t = 0.0
    for c, f, done in zip(listing["chapters"], files, again["finished"]["files"], strict=True):
        assert c["start_s"] == pytest.approx(t, abs=0.002)
        t += c["duration_s"]
        y, r = sf.read(str(f), dtype="float32")
        assert r == 44100
        assert done["measured"]["true_peak_db"] <= -3.0
        assert -23.0 <= done["measured"]["rms_db"] <= -18.0
        assert np.max(np.abs(y[: int(0.7 * r)])) < 1e-3  # room tone at the head
    assert not mp3.exists()


def test_render_a_chapter_range_and_wrong_ranges(tiny_models, tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("# One\nFirst.\n# Two\nSecond.\n# Three\nThird.\n", encoding="utf-8")
    out = tmp_path / "two.flac"
    assert main(["--models", str(tiny_models), "render", str(script), "--out", str(out),
                 "--chapters", "2-3", "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["segment_texts"] == ["Two", "Second.", "Three", "Third."]
    assert sf.info(str(out)).samplerate == 24000
    rc = main(["--models", str(tiny_models), "render", str(script), "--out",
               str(tmp_path / "x.wav"), "--chapters", "3-7", *FAST])
    assert rc == 2 and "outside the book: it has 3 chapters" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(script), "--chapters", "4-2"])
    assert exit_.value.code == 2 and "FIRST-LAST" in capsys.readouterr().err
    plain = tmp_path / "plain.txt"
    plain.write_text("No headings here.\n", encoding="utf-8")
    rc = main(["--models", str(tiny_models), "render", str(plain), "--out",
               str(tmp_path / "x.wav"), "--per-chapter", *FAST])
    assert rc == 2 and "no chapters" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("args,message", [
    (["--out", "x.aiff"], "unknown extension '.aiff'"),
    (["--out", "x.mp3", "--bitrate", "100k"], "cannot take 100k"),
    (["--out", "x.opus", "--sample-rate", "44100"], "cannot be written at 44100 Hz"),
    (["--out", "x.wav", "--bitrate", "192k"], "does not apply to WAV"),
    (["--out", "x.wav", "--master", "none", "--lufs", "-14"], "cannot go with --master none"),
    (["--out", "x.wav", "--lexicon", "LEX"], "not valid TOML"),
    (["--out", "x.wav", "--lang", "xx"], "not one of Bark's languages"),
    (["--out", "x.wav", "--per-chapter"], "need a script"),
])
def test_bad_finishing_is_one_line_exit_2_nothing_written(args, message, tiny_models, tmp_path,
                                                         capsys):
    lex = tmp_path / "lex.toml"
    lex.write_text('[en]\n"a" = \n', encoding="utf-8")
    args = [str(lex) if a == "LEX" else str(tmp_path / a) if a.startswith("x.") else a
            for a in args]
    rc = main(["--models", str(tiny_models), "say", "Hello.", *args, *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [lex]


def test_say_mastered_trimmed_mp3_with_subtitles(tiny_models, tmp_path, capsys):
    out = tmp_path / "hi.mp3"
    assert main(["--models", str(tiny_models), "say", "I have 3 cats [laughs].", "--out",
                 str(out), "--master", "podcast", "--trim", "--subtitles", "vtt", "--json",
                 *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["text"] == "I have three cats [laughs]."
    fin = report["finished"]
    assert fin["format"] == "MP3" and fin["sample_rate"] == 44100 and fin["kbps"] == 192
    assert fin["measured"]["true_peak_db"] <= -1.0
    vtt = (tmp_path / "hi.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "I have three cats." in vtt
    # the subtitles are refused, like the audio, when they exist
    rc = main(["--models", str(tiny_models), "say", "Again.", "--out", str(tmp_path / "b.mp3"),
               "--subtitles", "vtt", "--out", str(out), *FAST])
    assert rc == 2
