"""The Engine end to end on tiny random-weight models in the real folder layout."""

from __future__ import annotations

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
    VoiceError,
)
from bark_engine.engine import Engine
from bark_engine.errors import WeightsUnavailableError
from bark_engine.voices.catalog import VoicePrompt
from tests.engine.cancel_check import assert_cancel_is_prompt, canceller

SHORT = GenerationOptions(seed=11, max_duration_s=0.4)  # ~20 semantic tokens: fast


@pytest.fixture(scope="module")
def engine(tiny_models: Path) -> Engine:
    eng = Engine(EngineConfig(models=str(tiny_models), device="cpu"))
    eng.load()
    return eng


def test_generate_shapes_events_and_labels(engine: Engine) -> None:
    events = []
    take = engine.generate("Hello, my name is Suno.", options=SHORT, on_event=events.append)
    assert take.semantic.ndim == 1 and 0 < len(take.semantic) <= 21
    assert take.semantic.max() < 10_000
    assert take.coarse.shape[0] == 2 and take.fine.shape[0] == 8
    assert take.coarse.shape[1] == take.fine.shape[1] > 0
    assert np.array_equal(take.fine[:2], take.coarse)
    assert take.audio.dtype == np.float32
    assert len(take.audio) == take.fine.shape[1] * 320
    assert take.sample_rate == 24_000
    assert take.random_weights is True
    assert take.seed == 11
    assert set(take.timings) == {"semantic", "coarse", "fine", "decode"}
    stage_events = [e for e in events if isinstance(e, (StageStarted, StageProgress, StageFinished))]
    order = [e.stage for e in stage_events if isinstance(e, StageStarted)]
    assert order == ["semantic", "coarse", "fine", "decode"]
    for stage in order:
        seq = [e for e in stage_events if e.stage == stage]
        assert isinstance(seq[0], StageStarted) and isinstance(seq[-1], StageFinished)
        progress = [e for e in seq if isinstance(e, StageProgress)]
        assert progress, stage
        assert [p.step for p in progress] == sorted(p.step for p in progress)
    finished = {e.stage: e.tokens for e in stage_events if isinstance(e, StageFinished)}
    assert finished["semantic"] == len(take.semantic)
    assert finished["decode"] == len(take.audio)


def test_same_seed_same_tokens_other_seed_differs(engine: Engine) -> None:
    a = engine.generate("Same seed, same take.", options=SHORT)
    b = engine.generate("Same seed, same take.", options=SHORT)
    c = engine.generate("Same seed, same take.", options=GenerationOptions(seed=12, max_duration_s=0.4))
    assert np.array_equal(a.semantic, b.semantic)
    assert np.array_equal(a.fine, b.fine)
    assert np.array_equal(a.audio, b.audio)
    assert not np.array_equal(a.semantic, c.semantic)


def test_random_seed_is_reported_and_reproduces(engine: Engine) -> None:
    first = engine.generate("Pick a seed for me.", options=GenerationOptions(max_duration_s=0.3))
    again = engine.generate(
        "Pick a seed for me.", options=GenerationOptions(max_duration_s=0.3, seed=first.seed)
    )
    assert np.array_equal(first.fine, again.fine)


def test_preset_voice_and_saved_take_as_voice(engine: Engine, tmp_path: Path) -> None:
    take = engine.generate("With a preset.", voice="v2/en_speaker_6", options=SHORT)
    assert take.voice == "v2/en_speaker_6"
    path = tmp_path / "mine.npz"
    take.voice_prompt().save_npz(path)
    again = engine.generate("With my own voice.", voice=str(path), options=SHORT)
    assert len(again.audio) > 0
    loaded = VoicePrompt.from_npz(path)
    assert np.array_equal(loaded.semantic, take.semantic)


def test_cancel_mid_semantic_is_prompt_and_engine_stays_usable(engine: Engine) -> None:
    assert_cancel_is_prompt(engine, then=SHORT)


def test_cancel_mid_coarse(engine: Engine) -> None:
    cancel, on_event, _ = canceller("coarse", 5)
    with pytest.raises(Cancelled):
        engine.generate("Cancel in coarse.", options=SHORT, on_event=on_event, cancel=cancel)


def test_audition_decodes_the_prompt_only(tiny_models: Path) -> None:
    eng = Engine(EngineConfig(models=str(tiny_models), device="cpu"))
    audio = eng.audition("v2/en_speaker_9")
    prompt = eng.resolve_voice("v2/en_speaker_9")
    assert len(audio) == prompt.fine.shape[1] * 320
    assert eng._semantic is None  # no GPT was loaded to audition


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("   \n\t ", "empty"), ("word " * 300, "256")],
)
def test_bad_text(engine: Engine, text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        engine.generate(text, options=SHORT)


def test_too_long_text_says_how_much_would_be_cut(engine: Engine) -> None:
    with pytest.raises(BadInputError, match=r"last \d+(\.\d)?% would be lost"):
        engine.check_text("hello " * 400)


@pytest.mark.parametrize("voice", ["v2/xx_speaker_0", "../secret", "v2/../../etc/passwd", "/abs"])
def test_bad_voice_names(engine: Engine, voice: str) -> None:
    with pytest.raises(VoiceError):
        engine.generate("Hello.", voice=voice, options=SHORT)


def test_corrupt_npz_voice(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(VoiceError, match="bad.npz"):
        engine.generate("Hello.", voice=str(bad), options=SHORT)


def test_unknown_device() -> None:
    with pytest.raises(BadInputError, match="unknown device"):
        Engine(EngineConfig(device="tpu"))


def test_missing_weights_offline_names_the_file(tmp_path: Path) -> None:
    eng = Engine(EngineConfig(models="suno/bark", offline=True, cache_dir=str(tmp_path)))
    with pytest.raises(WeightsUnavailableError, match=r"vocab.txt|text.pt") as info:
        eng.load()
    assert "bark-tui download" in str(info.value)


def test_incomplete_local_folder(tiny_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "vocab.txt").write_text((tiny_models / "vocab.txt").read_text())
    eng = Engine(EngineConfig(models=str(folder)))
    with pytest.raises(WeightsUnavailableError, match="text.pt"):
        eng.load()
