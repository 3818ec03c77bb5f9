"""WAV files on disk, silence, fades, joins and waveform peaks."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from bark_engine.audio import (
    apply_fades,
    duration_s,
    join_segments,
    peak_envelope,
    read_wav,
    silence,
    write_wav,
)
from bark_engine.errors import BadInputError


def tone(seconds: float = 0.5, sr: int = 24_000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_wav_round_trip_is_16_bit_mono(tmp_path: Path) -> None:
    audio = tone()
    out = write_wav(tmp_path / "a.wav", audio)
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
        assert w.getnframes() == len(audio)
    back, sr = read_wav(out)
    assert sr == 24_000 and back.dtype == np.float32 and back.shape == audio.shape
    assert np.max(np.abs(back - audio)) < 1 / 32767 + 1e-6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # temp file gone


def test_wav_clips_and_cleans_samples(tmp_path: Path) -> None:
    audio = np.array([2.0, -3.0, np.nan, 0.5, np.inf], dtype=np.float32)
    back, _ = read_wav(write_wav(tmp_path / "c.wav", audio, 16_000))
    np.testing.assert_allclose(
        back, [32767 / 32768, -32767 / 32768, 0, 0.5, 32767 / 32768], atol=1e-4
    )


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "take.wav"
    write_wav(target, tone(1.0))
    write_wav(target, tone(0.25))
    assert read_wav(target)[0].shape == (6000,)


def test_write_refuses_bad_destinations(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="folder does not exist"):
        write_wav(tmp_path / "nope" / "a.wav", tone())
    with pytest.raises(BadInputError, match="it is a folder"):
        write_wav(tmp_path, tone())
    with pytest.raises(BadInputError, match="1-D array"):
        write_wav(tmp_path / "s.wav", np.zeros((2, 10), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permission bits
            pytest.skip("running as root: a read-only folder is still writable")
        with pytest.raises(BadInputError, match="not writable"):
            write_wav(locked / "a.wav", tone())
    finally:
        locked.chmod(0o700)


def test_read_wav_formats_and_errors(tmp_path: Path) -> None:
    stereo = tmp_path / "st.wav"
    frames = np.array([[16384, -16384], [32767, 32767]], dtype="<i2")
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames.tobytes())
    data, sr = read_wav(stereo)
    assert sr == 8000
    np.testing.assert_allclose(data, [0.0, 32767 / 32768], atol=1e-6)

    pcm24 = tmp_path / "24.wav"
    value = -(1 << 22)  # -0.5 in 24-bit
    raw = (value & 0xFFFFFF).to_bytes(3, "little")
    with wave.open(str(pcm24), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(24_000)
        w.writeframes(raw * 2)
    np.testing.assert_allclose(read_wav(pcm24)[0], [-0.5, -0.5])

    with pytest.raises(BadInputError, match="WAV file not found"):
        read_wav(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not really")
    with pytest.raises(BadInputError, match="junk.wav: not a PCM WAV file"):
        read_wav(tmp_path / "junk.wav")


def test_silence_and_duration() -> None:
    assert silence(0.25, 24_000).shape == (6000,) and not silence(0.25).any()
    assert silence(-1).shape == (0,)
    assert duration_s(np.zeros(36_000), 24_000) == 1.5


def test_fades_shape_and_limits() -> None:
    ones = np.ones(1000, np.float32)
    faded = apply_fades(ones, 0.01, 0.02, sr=10_000)  # 100 in, 200 out
    assert faded[0] == 0 and faded[-1] == 0
    assert np.all(np.diff(faded[:100]) > 0) and np.all(np.diff(faded[-200:]) < 0)
    np.testing.assert_array_equal(faded[100:800], 1)
    assert ones.sum() == 1000  # input untouched
    short = apply_fades(np.ones(10, np.float32), 1.0, 1.0, sr=10_000)  # fades capped at half
    assert short.shape == (10,) and short[4] > 0 and short[5] > 0


def test_join_segments_exact_length_and_no_clicks() -> None:
    sr = 24_000
    segs = [np.ones(1000, np.float32), np.full(500, -1.0, np.float32), np.ones(700, np.float32)]
    gaps = [0.25, 0.5]
    out = join_segments(segs, gaps, sr)
    assert out.dtype == np.float32
    assert len(out) == 2200 + 6000 + 12000
    # silence sits where the gaps are, audio where the segments are
    assert not out[1000:7000].any() and not out[7500:19500].any()
    assert out[500] == 1.0 and out[7250] == -1.0
    # each segment starts and ends at zero: no step into or out of silence
    for start, n in ((0, 1000), (7000, 500), (19500, 700)):
        assert out[start] == 0 and out[start + n - 1] == 0
    assert np.max(np.abs(np.diff(out))) < 0.01  # 240-sample fades: steps of 1/240


def test_join_segments_pause_before_form_and_errors() -> None:
    segs = [np.ones(100, np.float32), np.ones(100, np.float32)]
    out = join_segments(segs, [0.0, 0.01], sr=1000, fade_s=0)
    assert len(out) == 210 and not out[100:110].any()
    lead = join_segments(segs, [0.02, 0.0], sr=1000, fade_s=0)
    assert len(lead) == 220 and not lead[:20].any()
    assert join_segments([], [], sr=1000).shape == (0,)
    with pytest.raises(BadInputError, match="need 1 gaps"):
        join_segments(segs, [0.1, 0.2, 0.3])
    with pytest.raises(BadInputError, match="negative"):
        join_segments(segs, [-0.1])


def test_peak_envelope() -> None:
    audio = np.zeros(1000, np.float32)
    audio[10] = -0.8
    audio[990] = 2.0
    env = peak_envelope(audio, 10)
    assert env.shape == (10,) and env.dtype == np.float32
    assert env[0] == pytest.approx(0.8) and env[9] == 1.0 and not env[1:9].any()
    many = peak_envelope(np.array([0.5, -1.0, 0.25], np.float32), 7)
    np.testing.assert_allclose(many, [0.5, 0.5, 0.5, 1.0, 1.0, 0.25, 0.25])
    assert peak_envelope(np.zeros(0, np.float32), 4).tolist() == [0, 0, 0, 0]
    assert peak_envelope(audio, 0).shape == (0,)


def test_as_stored_is_what_a_written_wav_reads_back(tmp_path):
    from bark_engine.audio import as_stored

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.6, 5000).astype(np.float32)  # some beyond [-1, 1]
    audio[:3] = [np.nan, np.inf, -np.inf]
    write_wav(tmp_path / "x.wav", audio, 24_000)
    back, _rate = read_wav(tmp_path / "x.wav")
    assert np.array_equal(as_stored(audio), back)
