"""The plumbing every take goes through: stage running, histories, option mapping.

`Engine.generate_batch` runs one take or many through these, so they are
pinned here on their own (no models needed) besides the end-to-end tests.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading

import numpy as np
import pytest

from bark_engine import Cancelled, GenerationOptions, StageFinished, StageProgress, StageStarted
from bark_engine.stages import generate_coarse, generate_fine, generate_semantic
from bark_engine.stages.coarse import CoarseRow
from bark_engine.stages.fine import FineRow
from bark_engine.stages.runner import StageRunner, StageTiming, history_arrays, produced
from bark_engine.stages.semantic import SemanticRow
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
    ("sampling", "function", "row"),
    [
        ("semantic_sampling", generate_semantic, SemanticRow),
        ("coarse_sampling", generate_coarse, CoarseRow),
        ("fine_sampling", generate_fine, FineRow),
    ],
)
def test_stage_sampling_fits_the_stage_row_and_the_one_row_function(sampling, function, row):
    keys = set(getattr(GenerationOptions(), sampling)())
    params = inspect.signature(function).parameters
    assert keys <= set(params), function.__name__
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in keys), function.__name__
    assert keys <= {f.name for f in dataclasses.fields(row)}, row.__name__


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
    runner = StageRunner(events.append, None, [4])

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
    assert all(e.segment == 4 and e.segments == () for e in events)
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
    runner = StageRunner(events.append, cancel, [0])
    runner.run("semantic", None, lambda on_step: np.zeros(2, np.int64))
    cancel.set()
    ran = []
    with pytest.raises(Cancelled, match="cancelled before the coarse stage"):
        runner.run("coarse", None, lambda on_step: ran.append(1) or np.zeros((2, 3)))
    assert not ran and [type(e) for e in events] == [StageStarted, StageFinished]
    assert list(runner.timings) == ["semantic"]


def test_runner_events_name_every_segment_of_a_batch() -> None:
    events: list = []
    runner = StageRunner(events.append, None, [3, 4, 7])

    def coarse(on_step) -> list[np.ndarray]:
        on_step(2, None)
        return [np.zeros((2, 1)), np.zeros((2, 1))]

    runner.run("coarse", None, coarse)
    assert [(e.segment, e.segments) for e in events] == [(3, (3, 4, 7))] * 3
