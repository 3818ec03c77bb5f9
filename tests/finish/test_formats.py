"""Every output format round-trips through a real decoder with its rate and length;
bad extensions, bit rates and sample rates are refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bark_engine.errors import BadInputError
from bark_tui.finish.formats import choose_encoding, format_for, parse_kbps, write_audio
from bark_tui.finish.resample import resample

from .signals import speechlike

MP3_SLACK = 2 * 1152 + 1105  # LAME's padding and encoder delay, in samples


@pytest.mark.parametrize("name,rate", [
    ("a.wav", 24000), ("a.flac", 24000), ("a.flac", 48000), ("a.mp3", 44100),
    ("a.mp3", 24000), ("a.ogg", 24000), ("a.opus", 48000), ("A.OGG", 44100),
])
def test_round_trip(tmp_path: Path, name: str, rate: int):
    enc = choose_encoding(tmp_path / name, rate)
    x = speechlike(3.0, rate, 0.5)
    write_audio(tmp_path / name, x, enc)
    y, got_rate = sf.read(str(tmp_path / name), dtype="float32")
    assert got_rate == rate
    if enc.format.name == "MP3":
        assert len(x) <= len(y) <= len(x) + MP3_SLACK
    else:
        assert len(y) == len(x)
    if not enc.format.lossy:
        assert np.max(np.abs(y - x)) < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left


def test_mp3_is_constant_bit_rate_at_the_asked_rate(tmp_path: Path):
    av = pytest.importorskip("av")
    for kbps in (128, 192, 320):
        path = tmp_path / f"b{kbps}.mp3"
        write_audio(path, speechlike(2.0, 44100), choose_encoding(path, 44100, kbps))
        with av.open(str(path)) as c:
            assert c.streams.audio[0].bit_rate == kbps * 1000
    assert choose_encoding(tmp_path / "x.mp3").kbps == 192  # the default


def test_long_ogg_is_written_in_blocks(tmp_path: Path):
    x = speechlike(200.0, 24000, 0.3)
    path = tmp_path / "long.ogg"
    write_audio(path, x, choose_encoding(path))
    assert sf.info(str(path)).frames == len(x)


def test_resampling_keeps_duration_and_pitch():
    x = speechlike(2.0, 24000)
    y = resample(x, 24000, 48000)
    assert len(y) == 2 * len(x)
    assert resample(x, 24000, 24000) is not None


@pytest.mark.parametrize("name,rate,kbps,message", [
    ("a.aiff", None, None, "unknown extension"),
    ("a", None, None, "unknown extension"),
    ("a.mp3", None, 100, "cannot take 100k"),
    ("a.mp3", 24000, 192, "at 24000 Hz cannot take 192k"),
    ("a.wav", None, 192, "does not apply to WAV"),
    ("a.opus", 44100, None, "cannot be written at 44100 Hz"),
])
def test_refused(tmp_path: Path, name, rate, kbps, message):
    with pytest.raises(BadInputError, match=message):
        choose_encoding(tmp_path / name, rate, kbps)


def test_bit_rate_spellings():
    assert parse_kbps("192k") == parse_kbps("192") == parse_kbps("192000") == 192
    assert parse_kbps("128kbps") == 128
    with pytest.raises(BadInputError):
        parse_kbps("fast")
    assert format_for("x.M4B").name == "AAC"


def test_m4b_carries_chapters_and_tags(tmp_path: Path):
    pytest.importorskip("av")
    from bark_tui.finish.m4b import read_m4b

    path = tmp_path / "book.m4b"
    enc = choose_encoding(path)
    x = speechlike(6.0, enc.rate)
    write_audio(path, x, enc, title="A Book", author="Jane Doe",
                chapters=[(0.0, "One"), (2.5, "Two"), (4.25, "Three")])
    audio, rate, chapters, tags = read_m4b(path)
    assert rate == 44100
    assert abs(len(audio) - len(x)) <= 2048 + 1024  # AAC priming and padding
    assert chapters == [(0.0, "One"), (2.5, "Two"), (4.25, "Three")]
    assert tags["title"] == "A Book" and tags["artist"] == "Jane Doe"
    assert tags["genre"] == "Audiobook"
