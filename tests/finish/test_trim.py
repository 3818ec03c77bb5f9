"""Trimming cuts the ends to the speech (with padding) and shortens long inner pauses."""

from __future__ import annotations

import numpy as np
import pytest

from bark_tui.finish.trim import PAD_S, shorten_pauses, trim_ends

from .signals import silence, speechlike

RATE = 24000


def test_trim_ends_keeps_speech_and_padding():
    speech = speechlike(2.0, RATE, 0.4)
    breath = silence(0.3, RATE, noise_db=-45)  # a breath well under the speech's level
    x = np.concatenate([silence(1.0, RATE, -70), breath, silence(0.4, RATE), speech,
                        silence(1.5, RATE, -70)])
    y = trim_ends(x, RATE)
    assert len(y) / RATE == pytest.approx(2.0 + 2 * PAD_S, abs=0.03)
    start = np.flatnonzero(np.all(np.isclose(x[: len(x) - len(y) + 1, None],
                                             y[None, :1]), axis=1))
    assert len(start)  # the kept audio is a slice of the original


def test_quiet_take_is_trimmed_like_a_loud_one():
    for amp in (0.02, 0.8):
        x = np.concatenate([silence(0.5, RATE), speechlike(1.0, RATE, amp), silence(0.5, RATE)])
        assert len(trim_ends(x, RATE)) / RATE == pytest.approx(1.0 + 2 * PAD_S, abs=0.03)


def test_all_silence_trims_to_nothing():
    assert len(trim_ends(silence(1.0, RATE, -80), RATE)) == 0


def test_long_inner_pause_is_shortened_exactly():
    a, b = speechlike(1.0, RATE, 0.4), speechlike(1.0, RATE, 0.4, 5)
    x = np.concatenate([silence(0.2, RATE), a, silence(3.0, RATE), b, silence(0.2, RATE)])
    y = shorten_pauses(x, RATE, 0.5)
    assert (len(x) - len(y)) / RATE == pytest.approx(2.5, abs=0.02)
    short = np.concatenate([a, silence(0.3, RATE), b])
    assert np.array_equal(shorten_pauses(short, RATE, 0.5), short)  # nothing to shorten
