"""The plumbing a single take and a batch share: stage running, histories, option mapping.

`Engine.generate` and `takes.generate_takes` both go through these, so they
are pinned here on their own (no models needed) besides the end-to-end tests.
"""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest

from bark_engine import Cancelled, GenerationOptions, StageFinished, StageProgress, StageStarted
from bark_engine.stages import generate_coarse, generate_fine, generate_semantic
from bark_engine.stages.batch import (
    generate_coarse_batch,
    generate_fine_batch,
    generate_semantic_batch,
)
from bark_engine.stages.runner import StageRunner, StageTiming, history_arrays, produced
from bark_engine.voices.catalog import VoicePrompt

ODD = GenerationOptions(
    text_temp=0.3, waveform_temp=0.4, fine_temp=None, top_k=5, top_p=0.9, min_eos_p=0.1,
    max_duration_s=2.5, max_semantic_steps=99, seed=7, allow_early_stop=False,
)


def test_stage_sampling_maps_every_option_to_its_stage_argument() -> None:
    assert ODD.semantic_sampling() == {
        "temperature": 0.3, "top_k": 5, "top_p": 0.9, "min_eos_p": 0.1,
        "max_duration_s": 2.5, "max_steps": 99, "allow_early_stop": False,
    }
    assert ODD.coarse_sampling() == {"temperature": 0.4, "top_k": 5, "top_p": 0.9}
    assert ODD.fine_sampling() == {"temperature": None}


@pytest.mark.parametrize(
    ("sampling", "functions"),
    [
        ("semantic_sampling", (generate_semantic, generate_semantic_batch)),
        ("coarse_sampling", (generate_coarse, generate_coarse_batch)),
        ("fine_sampling", (generate_fine, generate_fine_batch)),
    ],
)
def test_stage_sampling_fits_the_single_and_the_batched_stage(sampling: str, functions) -> None:
    keys = set(getattr(GenerationOptions(), sampling)())
    for fn in functions:
        params = inspect.signature(fn).parameters
        assert keys <= set(params), fn.__name__
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in keys), fn.__name__


def test_from_mapping_takes_fields_skips_the_rest_and_keeps_defaults() -> None:
    opts = GenerationOptions.from_mapping({"text_temp": 0.2, "seed": 3, "voice": "x", "out": None})
    assert opts == GenerationOptions(text_temp=0.2, seed=3)
    assert GenerationOptions.from_mapping({}) == GenerationOptions()


def test_produced_counts_time_steps_or_samples_summed_over_a_batch() -> None:
    assert produced("semantic", np.zeros(12, np.int64)) == 12
    assert produced("coarse", np.zeros((2, 30), np.int64)) == 30
    assert produced("fine", [np.zeros((8, 30)), np.zeros((8, 5))]) == 35
    assert produced("decode", np.zeros(640, np.float32)) == 640
    assert produced("decode", [np.zeros(320), np.zeros(960)]) == 1280


def test_history_arrays() -> None:
    assert history_arrays(None) == (None, None, None)
    fine = np.arange(8 * 15).reshape(8, 15) % 1024
    prompt = VoicePrompt(semantic=np.arange(10), coarse=fine[:2], fine=fine, name="v")
    sem, coarse, fine_h = history_arrays(prompt)
    assert sem is prompt.semantic and coarse is prompt.coarse and fine_h is prompt.fine


def test_runner_events_timings_and_results() -> None:
    events: list = []
    runner = StageRunner(events.append, None, segment=4)

    def semantic(on_step) -> np.ndarray:
        on_step(1, 3)
        on_step(3, 3)
        return np.zeros(3, np.int64)

    out = runner.run("semantic", 3, semantic)
    batch = runner.run("decode", 2, lambda on_step: [np.zeros(5), np.zeros(7)])
    assert len(out) == 3 and [len(b) for b in batch] == [5, 7]
    assert [type(e) for e in events] == [
        StageStarted, StageProgress, StageProgress, StageFinished, StageStarted, StageFinished,
    ]
    assert all(e.segment == 4 for e in events)
    assert (events[0].stage, events[0].total) == ("semantic", 3)
    assert [(e.step, e.total) for e in events[1:3]] == [(1, 3), (3, 3)]
    assert (events[3].tokens, events[5].tokens) == (3, 12)
    assert list(runner.timings) == ["semantic", "decode"]
    assert runner.timings["decode"].tokens == 12
    assert isinstance(runner.timings["semantic"], StageTiming)
    assert runner.timings["semantic"].seconds == events[3].seconds >= 0


def test_runner_cancels_before_a_stage_and_runs_nothing() -> None:
    events: list = []
    cancel = threading.Event()
    runner = StageRunner(events.append, cancel, segment=0)
    runner.run("semantic", None, lambda on_step: np.zeros(2, np.int64))
    cancel.set()
    ran = []
    with pytest.raises(Cancelled, match="cancelled before the coarse stage"):
        runner.run("coarse", None, lambda on_step: ran.append(1) or np.zeros((2, 3)))
    assert not ran and [type(e) for e in events] == [StageStarted, StageFinished]
    assert list(runner.timings) == ["semantic"]
