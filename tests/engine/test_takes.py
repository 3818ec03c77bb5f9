"""Several takes of one text (`Engine.generate_takes`, `say --takes`): one batch, and
take i is exactly the single run with seed i, token for token and sample for sample."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from bark_engine import (
    BadInputError,
    Cancelled,
    EngineConfig,
    GenerationOptions,
    StageFinished,
    StageProgress,
    StageStarted,
)
from bark_engine.bench.takes import format_takes_table, measure_takes_per_minute
from bark_engine.engine import Engine
from bark_tui.cli.main import main
from tests.engine.cancel_check import canceller

# --- Engine.generate_takes ---------------------------------------------------------------------

LINE = "Several takes of one line."
# min_eos_p near the tiny folder's EOS probability: these seeds stop at different lengths,
# one at the 1.3 s cap (65 tokens → several coarse windows).
TAKE_CASES = {
    "no voice": (None, [1, 2, 4]),
    "voice": ("v2/en_speaker_6", [1, 5, 7]),
}
TAKE_OPTIONS = GenerationOptions(text_temp=0.7, min_eos_p=1.4e-4, max_duration_s=1.3)


@pytest.fixture(scope="module")
def engine(tiny_models: Path) -> Engine:
    eng = Engine(EngineConfig(models=str(tiny_models), device="cpu"))
    eng.load()
    return eng


@pytest.mark.parametrize("case", TAKE_CASES)
def test_takes_equal_separate_generations(engine: Engine, case: str) -> None:
    voice, seeds = TAKE_CASES[case]
    events = []
    takes = engine.generate_takes(LINE, voice, TAKE_OPTIONS, seeds=seeds, on_event=events.append)
    singles = [
        engine.generate(LINE, voice, GenerationOptions(**{**TAKE_OPTIONS.__dict__, "seed": s}))
        for s in seeds
    ]
    assert [t.seed for t in takes] == seeds
    lengths = [len(t.semantic) for t in singles]
    assert len(set(lengths)) == len(seeds), f"takes should stop apart: {lengths}"
    for take, single in zip(takes, singles, strict=True):
        np.testing.assert_array_equal(take.semantic, single.semantic)
        np.testing.assert_array_equal(take.coarse, single.coarse)
        np.testing.assert_array_equal(take.fine, single.fine)
        np.testing.assert_array_equal(take.audio, single.audio)
        assert take.options == single.options and take.voice == single.voice
        assert take.timings["semantic"].tokens == len(take.semantic)
        assert take.timings["decode"].tokens == len(take.audio)
    stage_events = [e for e in events if isinstance(e, (StageStarted, StageProgress, StageFinished))]
    started = [e.stage for e in stage_events if isinstance(e, StageStarted)]
    assert started == ["semantic", "coarse", "fine", "decode"]  # once per stage, whole batch
    finished = {e.stage: e.tokens for e in stage_events if isinstance(e, StageFinished)}
    assert finished["semantic"] == sum(lengths)
    assert finished["coarse"] == sum(t.coarse.shape[1] for t in takes)
    assert finished["decode"] == sum(len(t.audio) for t in takes)
    for stage in started:
        progress = [e.step for e in stage_events if isinstance(e, StageProgress) and e.stage == stage]
        assert progress and progress == sorted(progress), stage


def test_takes_fine_greedy_two_takes(engine: Engine) -> None:
    opts = GenerationOptions(max_duration_s=0.3, fine_temp=0)
    takes = engine.generate_takes(LINE, None, opts, seeds=[21, 22])
    for take in takes:
        single = engine.generate(LINE, None, GenerationOptions(max_duration_s=0.3, fine_temp=0,
                                                               seed=take.seed))
        np.testing.assert_array_equal(take.fine, single.fine)


def test_takes_cancel_mid_batch_then_engine_still_works(engine: Engine) -> None:
    cancel, on_event, _ = canceller("coarse", 4)
    with pytest.raises(Cancelled):
        engine.generate_takes(LINE, None, GenerationOptions(max_duration_s=0.4), seeds=[1, 2],
                              on_event=on_event, cancel=cancel)
    again = engine.generate_takes(LINE, None, GenerationOptions(max_duration_s=0.2), seeds=[3])
    assert len(again) == 1 and len(again[0].audio) > 0


def test_takes_bad_seeds(engine: Engine) -> None:
    with pytest.raises(BadInputError):
        engine.generate_takes(LINE, seeds=[])
    with pytest.raises(BadInputError):
        engine.generate_takes(LINE, seeds=7)  # type: ignore[arg-type]
    with pytest.raises(BadInputError):
        engine.generate_takes(LINE, seeds=list(range(17)))


def test_measure_takes_per_minute(engine: Engine) -> None:
    rows = measure_takes_per_minute(engine, LINE, batches=(1, 2),
                                    options=GenerationOptions(max_duration_s=0.2))
    assert [r.batch for r in rows] == [1, 2]
    assert all(r.exact and r.takes_per_minute > 0 and r.speedup for r in rows)
    assert "takes/min" in format_takes_table(rows)
    # a semantic step is the stepper's one-token calls alone: less than the stage
    # (prefill and draws included) over its steps
    for r in rows:
        whole = 1e3 * r.stage_seconds["semantic"] / r.semantic_steps
        assert 0 < r.semantic_step_ms < whole
    stepper = engine.stage_models().semantic
    assert "advance" not in vars(stepper)  # the timing patch is gone


def test_timed_calls_sort_prefills_from_steps_and_restore_the_stepper(engine: Engine) -> None:
    import torch

    from bark_engine.bench.timed import timed_calls
    from bark_engine.model.steps import Feed

    stepper = engine.stage_models().coarse
    cache = stepper.new_cache(1)
    with timed_calls(stepper, engine.device) as outer:
        with timed_calls(stepper, engine.device) as inner:
            stepper.advance(cache, [Feed(0, torch.arange(10_000, 10_009), fresh=True)], None)
            stepper.advance(cache, [Feed(0, torch.tensor([10_001]))], None)
        stepper.advance(cache, [Feed(0, torch.tensor([10_002]))], None)
    assert inner["prefills"] > 0 and inner["steps"] > 0 and inner["steps_n"] == 1
    # the inner patch wraps the outer one, so the outer block saw every call too
    assert outer["steps_n"] == 2 and 0 < outer["prefills"] <= inner["prefills"]
    assert "advance" not in vars(stepper)


# --- CLI --------------------------------------------------------------------------------------


def test_say_takes_writes_numbered_wavs_and_json(tiny_models: Path, tmp_path: Path,
                                                 capsys) -> None:
    out = tmp_path / "take.wav"
    common = ["--models", str(tiny_models), "say", LINE, "--max-duration", "0.3"]
    rc = main([*common, "--takes", "3", "--seed", "40", "--out", str(out), "--json",
               "--save-voice", str(tmp_path / "v.npz")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["seed"] for t in report["takes"]] == [40, 41, 42]
    assert [Path(t["out"]).name for t in report["takes"]] == ["take-1.wav", "take-2.wav",
                                                              "take-3.wav"]
    assert not out.exists() and (tmp_path / "v-3.npz").exists()
    assert report["random_weights"] is True
    # take 2 is exactly `say --seed 41`
    single = tmp_path / "single.wav"
    assert main([*common, "--seed", "41", "--out", str(single)]) == 0
    assert (tmp_path / "take-2.wav").read_bytes() == single.read_bytes()
    with wave.open(str(tmp_path / "take-1.wav")) as w:
        assert w.getframerate() == 24_000
        assert w.getnframes() / 24_000 == pytest.approx(report["takes"][0]["audio_seconds"],
                                                         abs=1e-3)


@pytest.mark.parametrize("bad", ["0", "17", "x"])
def test_say_takes_rejects_bad_counts(bad: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["say", "hi", "--takes", bad, "--out", str(tmp_path / "a.wav")])
    assert exc.value.code == 2
    assert not list(tmp_path.iterdir())


def test_say_takes_with_file_is_refused(tiny_models: Path, tmp_path: Path, capsys) -> None:
    script = tmp_path / "s.txt"
    script.write_text("One line.", encoding="utf-8")
    rc = main(["--models", str(tiny_models), "say", "--file", str(script), "--takes", "2",
               "--out", str(tmp_path / "a.wav")])
    assert rc == 2 and "--takes" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.wav"))
