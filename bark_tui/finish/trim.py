"""Trimming a segment: Bark's silence and breaths at its ends, and pauses inside it
that run too long.

The gate is relative to the segment's own level (its loud frames, the 95th
percentile of 10 ms frame energies, less `GATE_DB`), so a quiet take is
trimmed like a loud one. Sound must stay above the gate for `MIN_SOUND_S` to
count, so a click does not hold the edge open. Applied to each segment before
stitching: the pauses the script asks for between segments are not touched.
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.01
GATE_DB = 30.0  # frames this far under the segment's loud level are silence or breath
FLOOR_DB = -60.0  # and anything under this is silence whatever the level
MIN_SOUND_S = 0.05
PAD_S = 0.08  # kept on each side of the speech
XFADE_S = 0.01  # where a long pause is shortened


def _frames_on(audio: np.ndarray, rate: int) -> np.ndarray:
    """Per 10 ms frame, whether it holds sound (above the relative gate)."""
    n = max(1, round(FRAME_S * rate))
    usable = len(audio) - len(audio) % n
    if usable == 0:
        return np.zeros(0, dtype=bool)
    frames = np.asarray(audio[:usable], dtype=np.float64).reshape(-1, n)
    energy_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)
    loud = energy_db[energy_db > FLOOR_DB]
    if len(loud) == 0:
        return np.zeros(len(energy_db), dtype=bool)
    gate = max(FLOOR_DB, float(np.percentile(loud, 95)) - GATE_DB)
    on = energy_db > gate
    # Runs of sound shorter than MIN_SOUND_S are clicks, not speech.
    need = max(1, round(MIN_SOUND_S / FRAME_S))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < need:
            on[start:stop] = False
    return on


def trim_ends(audio: np.ndarray, rate: int, pad_s: float = PAD_S) -> np.ndarray:
    """The segment from its first to its last sound, with `pad_s` kept on each side;
    empty when it holds no sound at all."""
    on = _frames_on(audio, rate)
    if not on.any():
        return np.zeros(0, dtype=np.float32)
    n = max(1, round(FRAME_S * rate))
    first, last = int(np.argmax(on)), len(on) - int(np.argmax(on[::-1]))
    pad = round(pad_s * rate)
    return np.asarray(audio[max(0, first * n - pad):min(len(audio), last * n + pad)],
                      dtype=np.float32)


def shorten_pauses(audio: np.ndarray, rate: int, max_pause_s: float) -> np.ndarray:
    """Silences inside the segment longer than `max_pause_s` cut down to it (the
    middle goes, with a short cross-fade); the speech around them is kept whole."""
    on = _frames_on(audio, rate)
    n = max(1, round(FRAME_S * rate))
    keep = round(max_pause_s * rate)
    if not on.any():
        return np.asarray(audio, dtype=np.float32)
    first, last = int(np.argmax(on)), len(on) - int(np.argmax(on[::-1]))
    edges = np.flatnonzero(np.diff(np.concatenate([[1], on[first:last].astype(np.int8), [1]])))
    pieces, pos = [], 0
    fade = max(1, round(XFADE_S * rate))
    x = np.asarray(audio, dtype=np.float32)
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        a, b = (first + start) * n, (first + stop) * n  # a silent run, in samples
        if b - a <= keep + 2 * fade:
            continue
        cut_from, cut_to = a + keep // 2, b - (keep - keep // 2)
        head, tail = x[pos:cut_from + fade].copy(), x[cut_to:]
        ramp = np.linspace(1.0, 0.0, fade, dtype=np.float32)
        head[-fade:] = head[-fade:] * ramp + tail[:fade] * ramp[::-1]
        pieces.append(head)
        pos = cut_to + fade
    pieces.append(x[pos:])
    return np.concatenate(pieces).astype(np.float32, copy=False)
