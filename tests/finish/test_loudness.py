"""Mastering reaches its standard on audio of known level, and the limiter keeps its cap."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest

from bark_engine.errors import BadInputError
from bark_tui.finish.loudness import (
    MASTERINGS,
    custom_mastering,
    integrated_lufs,
    level_segments,
    limit,
    master,
    measure,
    oversampled_peaks,
    true_peak_db,
)

from .signals import silence, speechlike, tone

RATE = 44100


def test_integrated_loudness_is_pyloudnorms_bs1770():
    x = speechlike(5, RATE)
    want = pyloudnorm.Meter(RATE).integrated_loudness(x.astype(np.float64))
    assert integrated_lufs(x, RATE) == pytest.approx(want, abs=1e-6)
    assert integrated_lufs(x[: RATE // 10], RATE) == -math.inf  # under one 400 ms block
    assert integrated_lufs(np.zeros(RATE * 2, np.float32), RATE) == -math.inf


def test_chunked_loudness_equals_pyloudnorm_on_a_long_file():
    x = np.concatenate([speechlike(30, RATE, 0.05), silence(5, RATE), speechlike(30, RATE, 0.6)])
    want = pyloudnorm.Meter(RATE).integrated_loudness(x.astype(np.float64))
    assert integrated_lufs(x, RATE) == pytest.approx(want, abs=1e-6)
    # the chunked true peak is the whole file's
    assert true_peak_db(x) == pytest.approx(20 * np.log10(oversampled_peaks(x).max()), abs=1e-6)


def test_true_peak_sees_between_samples():
    # A sine at a quarter of the rate sampled at 45° phase: every sample is 0.707 of the
    # crest, the true peak is the crest itself (+3 dB over the sample peak).
    n = np.arange(4000)
    x = np.sin(2 * np.pi * n / 4 + np.pi / 4).astype(np.float32)
    assert np.max(np.abs(x)) == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert true_peak_db(x) == pytest.approx(0.0, abs=0.3)
    assert len(oversampled_peaks(x)) == len(x)


@pytest.mark.parametrize("name", ["podcast", "broadcast"])
def test_lufs_presets_reach_loudness_and_peak_cap(name):
    spec = MASTERINGS[name]
    x = np.concatenate([speechlike(4, RATE, 0.05), silence(1, RATE), speechlike(4, RATE, 0.8, 2)])
    out = master(x, RATE, spec)
    m = measure(out, RATE)
    assert abs(m.lufs - spec.lufs) <= 0.5
    assert m.true_peak_db <= spec.peak_db
    assert len(out) == len(x)  # mastering only scales samples


def test_loud_target_needs_the_limiter_and_keeps_its_cap():
    x = speechlike(6, RATE, 0.9)
    spec = custom_mastering(None, -9.0, -1.0)
    out = master(x, RATE, spec)
    m = measure(out, RATE)
    assert m.true_peak_db <= -1.0
    assert abs(m.lufs - -9.0) <= 0.5


def test_audiobook_meets_acx():
    spec = MASTERINGS["audiobook"]
    x = speechlike(8, RATE, 0.1)
    out = master(x, RATE, spec)
    m = measure(out, RATE)
    assert -23.0 <= m.rms_db <= -18.0
    assert m.true_peak_db <= -3.0


def test_silence_cannot_be_mastered():
    with pytest.raises(BadInputError, match="silence"):
        master(np.zeros(RATE * 3, np.float32), RATE, MASTERINGS["podcast"])


def test_limiter_never_raises_gain_and_holds_the_ceiling():
    x = np.concatenate([tone(1, RATE, amp=0.2), tone(0.01, RATE, amp=1.0), tone(1, RATE, amp=0.2)])
    y = limit(x, RATE, -6.0)
    assert np.all(np.abs(y) <= np.abs(x) + 1e-7)
    assert true_peak_db(y) <= -6.0 + 0.05
    # far from the burst the quiet tone is untouched
    assert np.allclose(y[: RATE // 2], x[: RATE // 2])


def test_limiter_in_chunks_equals_one_pass(monkeypatch):
    # hot bursts either side of a chunk boundary: the chunked limiter must give the
    # same samples as one pass over the whole file
    import bark_tui.finish.loudness as loudness

    x = speechlike(50, RATE, 0.3)
    edge = loudness._CHUNK
    x[edge - 300:edge + 300] *= 4.0
    chunked = limit(x, RATE, -3.0)
    monkeypatch.setattr(loudness, "_CHUNK", len(x) + 1)
    whole = limit(x, RATE, -3.0)
    assert np.array_equal(chunked, whole)
    assert true_peak_db(chunked) <= -3.0 + 0.05


def test_segments_are_levelled_to_one_loudness():
    quiet, loud = speechlike(3, RATE, 0.08), speechlike(3, RATE, 0.7, 3)
    a, b, short = level_segments([quiet, loud, speechlike(0.2, RATE, 0.3)], RATE, -20.0)
    assert integrated_lufs(a, RATE) == pytest.approx(-20.0, abs=0.1)
    assert integrated_lufs(b, RATE) == pytest.approx(-20.0, abs=0.1)
    assert len(short) == round(0.2 * RATE)  # too short to measure: the median gain


def test_levelling_moves_a_segment_at_most_twenty_db():
    whisper = speechlike(3, RATE, 0.003)
    (y,) = level_segments([whisper], RATE, -16.0)
    assert integrated_lufs(y, RATE) - integrated_lufs(whisper, RATE) == pytest.approx(20.0,
                                                                                      abs=0.01)


def test_command_line_overrides():
    assert custom_mastering(None, None, None) is None
    assert custom_mastering("none", None, None) is None
    m = custom_mastering("audiobook", None, -4.0)
    assert (m.rms_db, m.peak_db, m.head_s) == (-20.0, -4.0, 0.75)
    assert custom_mastering(None, -14.0, None).lufs == -14.0
    with pytest.raises(BadInputError):
        custom_mastering("none", -14.0, None)
