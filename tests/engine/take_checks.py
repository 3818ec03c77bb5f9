"""Checks shared by the engine tests that run on other devices or precisions."""

from __future__ import annotations

import numpy as np

from bark_engine import GenerationOptions
from bark_engine.engine import Engine
from bark_engine.model import kernels
from bark_engine.model.precision import native_bf16


def assert_takes_equal_single_runs(
    engine: Engine, text: str, seeds: list[int], exact: tuple[str, ...] = ("semantic",)
) -> None:
    """A batch of takes gives each seed the tokens a single run with it gives: the
    ``exact`` stages token for token, the fine stage at least in shape."""
    options = GenerationOptions(max_duration_s=0.3)
    takes = engine.generate_takes(text, options=options, seeds=seeds)
    assert [t.seed for t in takes] == seeds
    for take in takes:
        single = engine.generate(text, options=GenerationOptions(seed=take.seed,
                                                                 max_duration_s=0.3))
        for name in exact:
            np.testing.assert_array_equal(getattr(take, name), getattr(single, name))
        assert take.fine.shape == single.fine.shape


def auto_precision() -> str:
    """What `auto` runs on this machine's CPU: bfloat16 on the compiled kernels or
    with native bf16, else float32 (`precision.auto_dtype`, restated as the rule)."""
    return "bfloat16" if kernels.available() or native_bf16() else "float32"


def assert_whole_and_deterministic(engine: Engine, text: str):
    """Two generations with one seed: every stage made something, the audio is
    finite float32, and the second run equals the first. Returns the first."""
    options = GenerationOptions(seed=4, max_duration_s=0.5)
    a = engine.generate(text, voice="v2/en_speaker_6", options=options)
    b = engine.generate(text, voice="v2/en_speaker_6", options=options)
    assert len(a.semantic) > 0 and a.coarse.shape[1] == a.fine.shape[1] > 0
    assert a.audio.dtype == np.float32 and np.isfinite(a.audio).all()
    for name in ("semantic", "coarse", "fine", "audio"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    return a
