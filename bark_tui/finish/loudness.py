"""Loudness: measuring it (ITU-R BS.1770-4 through pyloudnorm, true peak by 4x
oversampling) and mastering a take or a script to a delivery standard.

Mastering runs in two steps. `level_segments` brings every segment of a
script to the same integrated loudness before they are joined, so a quiet
sentence does not follow a loud one; `master` then sets the whole file's level
(integrated loudness, or RMS for ACX) and holds its true peak under the cap
with a look-ahead limiter. Both only scale samples: timing never changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bark_engine.errors import BadInputError

OVERSAMPLE = 4  # BS.1770-4 true peak: 4x oversampling at 48 kHz (more at lower rates is moot)
BLOCK_S = 0.4  # BS.1770 gating block; shorter audio has no integrated loudness
MAX_SEGMENT_GAIN_DB = 20.0  # levelling never moves a segment further than this
LOOKAHEAD_S = 0.005  # the limiter's gain reaches its floor this long before a peak
SILENT_DB = -70.0  # BS.1770's absolute gate: below it there is nothing to measure
_CHUNK = 1 << 20  # samples per oversampling pass (bounded memory on a whole book)
_EDGE = 64  # context samples around a chunk for the resampling filter


@dataclass(frozen=True)
class Mastering:
    """A delivery standard: what the whole file must measure."""

    name: str
    lufs: float | None = None  # integrated loudness target (LUFS)
    rms_db: float | None = None  # or an RMS target (dBFS), as ACX specifies
    peak_db: float = -1.0  # the true-peak cap (dBTP)
    head_s: float = 0.0  # room tone (silence) before the speech
    tail_s: float = 0.0  # and after it
    level_segments: bool = True

    @property
    def summary(self) -> str:
        target = (f"{self.lufs:g} LUFS" if self.lufs is not None else
                  f"RMS {self.rms_db:g} dB" if self.rms_db is not None else "level kept")
        room = (f", room tone {self.head_s:g} s / {self.tail_s:g} s"
                if self.head_s or self.tail_s else "")
        return f"{self.name}: {target}, peaks ≤ {self.peak_db:g} dBTP{room}"


# ACX: RMS between -23 and -18 dB, peaks at most -3 dB, 0.5-1 s of room tone at the
# head and 1-5 s at the tail. The middle of each range is aimed at.
MASTERINGS = {
    "podcast": Mastering("podcast", lufs=-16.0, peak_db=-1.0),
    "audiobook": Mastering("audiobook", rms_db=-20.0, peak_db=-3.0, head_s=0.75, tail_s=2.0),
    "broadcast": Mastering("broadcast", lufs=-23.0, peak_db=-1.0),  # EBU R128
}
ACX_RMS_RANGE = (-23.0, -18.0)
MASTER_CHOICES = (*MASTERINGS, "none")


def custom_mastering(base: str | None, lufs: float | None, peak_db: float | None
                     ) -> Mastering | None:
    """The mastering a command line asks for: a preset, with --lufs/--true-peak
    overriding its figures (either alone starts from podcast's)."""
    if base == "none" or (base is None and lufs is None and peak_db is None):
        if lufs is not None or peak_db is not None:
            raise BadInputError("--lufs and --true-peak cannot go with --master none")
        return None
    m = MASTERINGS[base or "podcast"]
    if lufs is not None:
        m = Mastering("custom", lufs=lufs, peak_db=m.peak_db, head_s=m.head_s,
                      tail_s=m.tail_s)
    if peak_db is not None:
        m = Mastering(m.name if lufs is not None else "custom", lufs=m.lufs, rms_db=m.rms_db,
                      peak_db=peak_db, head_s=m.head_s, tail_s=m.tail_s)
    return m


@dataclass(frozen=True)
class Measured:
    """What a file measures."""

    lufs: float  # integrated (-inf: too short or silent)
    true_peak_db: float  # dBTP (4x oversampled)
    rms_db: float  # unweighted RMS of the whole file, dBFS

    def line(self) -> str:
        def db(v: float) -> str:
            return f"{v:.1f}" if math.isfinite(v) else "-inf"
        return (f"{db(self.lufs)} LUFS integrated · true peak {db(self.true_peak_db)} dBTP · "
                f"RMS {db(self.rms_db)} dB")


def _db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def integrated_lufs(audio: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness; -inf for audio shorter than one block or silent.

    pyloudnorm's K-weighting filters and gating, computed in chunks (the filters
    carry their state across them) with block energies summed from 100 ms hops:
    the same figure as `pyloudnorm.Meter.integrated_loudness`, in bounded memory and
    without a Python loop per block, so an hour-long book is measured in a moment."""
    n = len(audio)
    if n < BLOCK_S * rate:
        return -math.inf
    import pyloudnorm
    from scipy.signal import lfilter

    stages = list(pyloudnorm.Meter(rate, block_size=BLOCK_S)._filters.values())
    states = [np.zeros(max(len(f.a), len(f.b)) - 1) for f in stages]
    hop = round(BLOCK_S * 0.25 * rate)  # blocks of 400 ms every 100 ms (75 % overlap)
    chunk = hop * 256
    x = np.asarray(audio)
    hops = np.zeros(-(-n // hop))
    for start in range(0, n, chunk):
        y = x[start:start + chunk].astype(np.float64)
        for k, f in enumerate(stages):
            y, states[k] = lfilter(f.b, f.a, y, zi=states[k])
            y *= f.passband_gain
        sq = y * y
        full = len(sq) - len(sq) % hop
        first = start // hop
        hops[first:first + full // hop] = sq[:full].reshape(-1, hop).sum(axis=1)
        if full < len(sq):
            hops[first + full // hop] = sq[full:].sum()
    n_blocks = int(np.round((n / rate - BLOCK_S) / (BLOCK_S * 0.25))) + 1
    padded = np.concatenate([hops, np.zeros(4)])
    sums = np.convolve(padded, np.ones(4), mode="valid")[:n_blocks]
    z = sums / (BLOCK_S * rate)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10.0 * np.log10(z)
    gated = z[loud >= SILENT_DB]
    if len(gated) == 0:
        return -math.inf
    relative = -0.691 + 10.0 * math.log10(float(np.mean(gated))) - 10.0
    kept = z[(loud > relative) & (loud > SILENT_DB)]
    if len(kept) == 0:
        return -math.inf
    value = -0.691 + 10.0 * math.log10(float(np.mean(kept)))
    return value if value > SILENT_DB else -math.inf


def oversampled_peaks(audio: np.ndarray) -> np.ndarray:
    """Per input sample, the largest |value| among its OVERSAMPLE interpolated points
    (the inter-sample peaks a DAC will make)."""
    from scipy.signal import resample_poly

    x = np.asarray(audio, dtype=np.float32)
    out = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), _CHUNK):
        lo, hi = max(0, start - _EDGE), min(len(x), start + _CHUNK + _EDGE)
        up = np.abs(resample_poly(x[lo:hi], OVERSAMPLE, 1)).reshape(-1, OVERSAMPLE).max(axis=1)
        n = min(_CHUNK, len(x) - start)
        out[start:start + n] = np.maximum(up[start - lo:start - lo + n],
                                          np.abs(x[start:start + n]))
    return out


def true_peak_db(audio: np.ndarray) -> float:
    """The largest oversampled peak, in dBTP (chunk by chunk: no copy of the file)."""
    x = np.asarray(audio, dtype=np.float32)
    peak = 0.0
    for start in range(0, len(x), _CHUNK):
        lo = max(0, start - _EDGE)
        piece = x[lo:min(len(x), start + _CHUNK + _EDGE)]
        inner = oversampled_peaks(piece)[start - lo:start - lo + _CHUNK]  # edges: context only
        peak = max(peak, float(inner.max()))
    return _db(peak) if len(x) else -math.inf


def rms_db(audio: np.ndarray) -> float:
    x = np.asarray(audio, dtype=np.float64)
    return _db(math.sqrt(float(np.mean(x * x)))) if len(x) else -math.inf


def measure(audio: np.ndarray, rate: int) -> Measured:
    return Measured(integrated_lufs(audio, rate), true_peak_db(audio), rms_db(audio))


def _gain(audio: np.ndarray, db: float) -> np.ndarray:
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (db / 20.0)))


def level_segments(segments: Sequence[np.ndarray], rate: int, target_lufs: float
                   ) -> list[np.ndarray]:
    """Each segment scaled to `target_lufs` (at most MAX_SEGMENT_GAIN_DB either way);
    one too short or too quiet to measure gets the median gain of the others."""
    levels = [integrated_lufs(s, rate) for s in segments]
    gains = [min(MAX_SEGMENT_GAIN_DB, max(-MAX_SEGMENT_GAIN_DB, target_lufs - lv))
             for lv in levels if math.isfinite(lv)]
    fallback = float(np.median(gains)) if gains else 0.0
    return [_gain(s, min(MAX_SEGMENT_GAIN_DB, max(-MAX_SEGMENT_GAIN_DB, target_lufs - lv)))
            if math.isfinite(lv) else _gain(s, fallback) for s, lv in zip(segments, levels,
                                                                          strict=True)]


def limit(audio: np.ndarray, rate: int, ceiling_db: float) -> np.ndarray:
    """A look-ahead peak limiter: the gain each sample needs to keep its oversampled
    peak under the ceiling, held over ±LOOKAHEAD_S (a running minimum) and then
    smoothed by a moving average of the same width. Every value of that average
    comes from a minimum that covers the sample itself, so the gain never exceeds
    what the sample needs, and it moves gradually (no clicks). Runs in chunks with
    enough context that the result is the same as in one pass."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    x = np.asarray(audio, dtype=np.float32)
    ceiling = 10.0 ** (ceiling_db / 20.0)
    width = 2 * max(1, round(LOOKAHEAD_S * rate)) + 1
    margin = 2 * width + _EDGE
    out = np.empty_like(x)
    for start in range(0, len(x), _CHUNK):
        lo, hi = max(0, start - margin), min(len(x), start + _CHUNK + margin)
        piece = x[lo:hi]
        need = np.minimum(1.0, ceiling / np.maximum(oversampled_peaks(piece), 1e-12)
                          ).astype(np.float32)
        stop = min(_CHUNK, len(x) - start)
        if need.min() >= 1.0:
            out[start:start + stop] = x[start:start + stop]
            continue
        gain = uniform_filter1d(minimum_filter1d(need, width, mode="nearest"), width,
                                mode="nearest")
        gain = np.minimum(gain, need)[start - lo:start - lo + stop]
        out[start:start + stop] = x[start:start + stop] * gain
    return out


def master(audio: np.ndarray, rate: int, spec: Mastering, *, margin_db: float = 0.2
           ) -> np.ndarray:
    """The whole file at the spec's level with its true peak at most `peak_db -
    margin_db`. Limiting lowers the level a little, so level and limit repeat until
    the level is within 0.05 dB (three rounds at most)."""
    if spec.lufs is None and spec.rms_db is None:
        return limit(audio, rate, spec.peak_db - margin_db)
    if not np.any(np.abs(audio) > 10.0 ** (SILENT_DB / 20.0)):
        raise BadInputError("cannot master audio that is all silence")

    def level(x: np.ndarray) -> float:
        return integrated_lufs(x, rate) if spec.lufs is not None else rms_db(x)

    target = spec.lufs if spec.lufs is not None else spec.rms_db
    now = level(audio)
    if not math.isfinite(now):  # too short for a gated measure: fall back on RMS
        now, target = rms_db(audio), target
    out = np.asarray(audio, dtype=np.float32)
    gain_db = target - now
    for _ in range(3):
        out = limit(_gain(audio, gain_db), rate, spec.peak_db - margin_db)
        miss = target - level(out)
        if not math.isfinite(miss) or abs(miss) < 0.05:
            break
        gain_db += miss
    return out
