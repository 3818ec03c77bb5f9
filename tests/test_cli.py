"""The headless CLI: `say`, `voices`, errors (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from bark_engine.model import kernels
from bark_engine.voices.catalog import VoicePrompt
from bark_tui.cli.main import main
from tests.engine.take_checks import auto_precision


def test_say_writes_wav_voice_and_json(tiny_models: Path, tmp_path: Path, capsys) -> None:
    out, voice = tmp_path / "take.wav", tmp_path / "take.npz"
    rc = main([
        "--models", str(tiny_models), "say", "Hello there [laughs].", "--seed", "5",
        "--out", str(out), "--save-voice", str(voice), "--max-duration", "0.4", "--json",
        "--text-temp", "0", "--waveform-temp", "0", "--fine-temp", "0",
    ])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["random_weights"] is True and report["seed"] == 5
    assert (report["device"], report["dtype"]) == ("cpu", auto_precision())
    assert set(report["stages"]) == {"semantic", "coarse", "fine", "decode"}
    for stage in report["stages"].values():
        assert stage["tokens"] > 0 and stage["seconds"] >= 0
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24_000 and w.getnchannels() == 1
        frames = w.getnframes()
    assert frames == report["stages"]["decode"]["tokens"]
    assert report["audio_seconds"] == pytest.approx(frames / 24_000, abs=1e-3)
    prompt = VoicePrompt.from_npz(voice)
    assert prompt.fine.shape[1] * 320 == frames
    # greedy everywhere: a rerun with another seed gives the same take
    out2 = tmp_path / "again.wav"
    assert main(["--models", str(tiny_models), "say", "Hello there [laughs].", "--seed", "6",
                 "--out", str(out2), "--max-duration", "0.4", "--text-temp", "0",
                 "--waveform-temp", "0", "--fine-temp", "0"]) == 0
    assert out.read_bytes() == out2.read_bytes()


@pytest.mark.parametrize("flags", [[], ["--no-kernels"]])
def test_float16_on_the_cpu_is_slow_only_without_the_kernels(tiny_models: Path, tmp_path: Path,
                                                             capsys, flags) -> None:
    out = tmp_path / "h.wav"
    assert main(["--models", str(tiny_models), "--dtype", "float16", *flags, "say", "Half.",
                 "--out", str(out), "--max-duration", "0.2", "--json"]) == 0
    assert out.exists()
    captured = capsys.readouterr()
    fallback = bool(flags) or not kernels.available()
    assert ("note: float16 on the CPU without the compiled kernels is no faster" in
            captured.err) == fallback
    assert json.loads(captured.out)["model"].endswith(
        "float16 on cpu, torch fallback" if fallback else "float16 on cpu")


def test_model_options_after_the_command(tiny_models: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "a.wav"
    rc = main(["say", "Options after the command.", "--models", str(tiny_models),
               "--out", str(out), "--max-duration", "0.3", "--json", "--dtype", "bfloat16"])
    assert rc == 0 and out.exists()
    report = json.loads(capsys.readouterr().out)
    assert "small bfloat16 on cpu" in report["model"] and report["dtype"] == "bfloat16"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["say", ""], "empty"),
        (["say", "word " * 300], "at most 256"),
        (["say", "hi", "--voice", "v2/zz_speaker_1"], "unknown voice"),
        (["say", "hi", "--voice", "../../etc/passwd"], ".."),
        (["say", "hi", "--voice", "missing.npz"], "missing.npz"),
        (["say", "hi", "--device", "tpu"], "unknown device"),
        (["say", "hi", "--out", "/no/such/folder/x.wav"], "does not exist"),
        (["say"], "nothing to say"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    args, message, tiny_models: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BARK_TUI_HOME", str(tmp_path / "home"))
    rc = main(["--models", str(tiny_models), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("bark-tui: error:") and message in err[-1]
    assert not list(tmp_path.glob("*.wav"))


def test_truncated_npz_voice(tiny_models: Path, tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.npz"
    VoicePrompt(
        semantic=np.zeros(100, dtype=np.int64),
        coarse=np.zeros((2, 150), dtype=np.int64),
        fine=np.zeros((8, 150), dtype=np.int64),
    ).save_npz(good)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[:200])
    rc = main(["--models", str(tiny_models), "say", "hi", "--voice", str(bad),
               "--out", str(tmp_path / "x.wav")])
    assert rc == 2 and "bad.npz" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_missing_weights_offline(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = main(["say", "hello", "--out", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err
    assert rc == 2 and "bark-tui download" in err and "--models" in err


def test_voices_lists_and_filters(capsys) -> None:
    assert main(["voices", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"v2/en_speaker_6", "v2/de_speaker_3"} <= names
    assert len([n for n in names if n.startswith("v2/")]) == 130
    assert main(["voices", "--lang", "de", "--gender", "female", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["language"] == "German" and r["gender"] == "female" for r in rows)


def test_download_from_local_folder_checks_everything(tiny_models: Path, capsys) -> None:
    rc = main(["download", "--models", str(tiny_models), "--no-presets"])
    assert rc == 0
    assert "files ready" in capsys.readouterr().err


def test_generation_options_from_the_say_and_render_parsers() -> None:
    from bark_engine.options import GenerationOptions
    from bark_tui.cli.main import build_parser
    from bark_tui.cli.say import generation_options

    parser = build_parser()
    flags = ["--seed", "9", "--text-temp", "0.3", "--waveform-temp", "0.4", "--fine-temp", "0",
             "--top-k", "50", "--top-p", "0.9", "--min-eos-p", "0.1", "--max-duration", "2.5"]
    expected = GenerationOptions(text_temp=0.3, waveform_temp=0.4, fine_temp=0.0, top_k=50,
                                 top_p=0.9, min_eos_p=0.1, max_duration_s=2.5, seed=9)
    assert generation_options(parser.parse_args(["say", "hi", *flags])) == expected
    assert generation_options(parser.parse_args(["render", "s.txt", *flags])) == expected
    # the parser's defaults are the engine's
    assert generation_options(parser.parse_args(["say", "hi"])) == GenerationOptions()
    assert generation_options(parser.parse_args(["render", "s.txt"])) == GenerationOptions()


def test_engine_config_from_the_model_flags() -> None:
    from bark_tui.cli.main import _engine_config, build_parser

    parser = build_parser()
    config = _engine_config(parser.parse_args(
        ["say", "hi", "--device", "cpu", "--dtype", "bfloat16", "--large", "--no-cuda-graphs"]
    ))
    assert (config.device, config.dtype, config.size, config.cuda_graphs) == (
        "cpu", "bfloat16", "large", False
    )
    assert _engine_config(parser.parse_args(["say", "hi"])).cuda_graphs is True
    assert _engine_config(parser.parse_args(["--no-cuda-graphs"])).cuda_graphs is False
    assert _engine_config(parser.parse_args(["say", "hi"])).kernels is True
    assert _engine_config(parser.parse_args(["say", "hi", "--no-kernels"])).kernels is False


def test_checked_engine_refuses_bad_input_before_loading(tiny_models: Path) -> None:
    import argparse

    from bark_engine import BadInputError, EngineConfig, VoiceError
    from bark_tui.cli.say import checked_engine

    config = EngineConfig(models=str(tiny_models), device="cpu")
    engine = checked_engine(argparse.Namespace(voice="v2/en_speaker_6"), config, "Hello.")
    assert not engine.loaded
    with pytest.raises(BadInputError, match="the text is empty"):
        checked_engine(argparse.Namespace(voice=None), config, "   ")
    with pytest.raises(VoiceError):
        checked_engine(argparse.Namespace(voice="v2/xx_speaker_99"), config, "Hello.")


def test_with_stage_bars_returns_the_result_and_its_seconds() -> None:
    from rich.console import Console

    from bark_engine.events import StageFinished, StageStarted
    from bark_tui.cli.say import noise_note, with_stage_bars

    def work(on_event) -> str:
        on_event(StageStarted("semantic", 3))
        on_event(StageFinished("semantic", 3, 0.01))
        return "done"

    result, seconds = with_stage_bars(Console(stderr=True, quiet=True), work)
    assert result == "done" and seconds >= 0
    assert noise_note(True) == " (RANDOM TEST WEIGHTS: output is noise)" and noise_note(False) == ""


def test_render_in_batches_writes_the_same_wav_as_one_at_a_time(tiny_models: Path,
                                                                tmp_path: Path, capsys) -> None:
    script = tmp_path / "s.txt"
    script.write_text("First line here.\n\nA second line.\n\nAnd the third one.", "utf-8")
    outs = {}
    for batch in ("1", "3"):
        out = tmp_path / f"b{batch}.wav"
        assert main(["--models", str(tiny_models), "render", str(script), "--out", str(out),
                     "--seed", "4", "--max-duration", "0.2", "--batch", batch, "--json"]) == 0
        captured = capsys.readouterr()
        report = json.loads(captured.out)
        assert report["batch"] == int(batch) and report["segments"] == 3
        assert f"{batch} at a time" in captured.err
        assert report["steps"] == kernels.status().describe()  # what `info` says runs
        outs[batch] = out.read_bytes()
    assert outs["1"] == outs["3"]
    # say --file takes --batch too; a bad size is refused before anything runs
    with pytest.raises(SystemExit):
        main(["say", "--file", str(script), "--batch", "17", "--out", str(tmp_path / "x.wav")])
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1"], "--seed: must be 0.."),
        (["--seed", str(2**63)], "--seed: must be 0.."),
        (["--seed", str(2**63 - 2), "--takes", "3"], "runs past the largest seed"),
        (["--text-temp", "nan"], "--text-temp: must be a finite number"),
        (["--fine-temp", "inf"], "--fine-temp: must be a finite number"),
        (["--top-k", "0"], "--top-k: must be 1 or more"),
        (["--top-p", "nan"], "--top-p: must be a finite number"),
        (["--max-duration", "0"], "--max-duration: must be more than 0"),
        (["--max-duration", "nan"], "--max-duration: must be a finite number"),
    ],
)
def test_every_value_is_checked_before_work(args, message, tiny_models, tmp_path, capsys,
                                            monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:  # argparse's own refusals exit 2 too
        rc = main(["say", "hi", "--models", str(tiny_models), *args])
        raise SystemExit(rc)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]  # one line, not argparse's whole usage
    assert not list(tmp_path.glob("*.wav"))


def test_say_never_overwrites_silently_and_names_files_as_asked(tiny_models, tmp_path,
                                                                capsys) -> None:
    common = ["say", "Files.", "--models", str(tiny_models), "--max-duration", "0.2",
              "--seed", "3"]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    made = tmp_path / "plain.wav"  # no extension: .wav added
    assert made.exists()
    before = made.read_bytes()
    assert main([*common, "--seed", "4", "--out", str(made)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert made.read_bytes() == before
    assert main([*common, "--seed", "4", "--out", str(made), "--force"]) == 0
    assert made.read_bytes() != before
    assert main([*common, "--takes", "1", "--out", str(tmp_path / "one.wav")]) == 0
    assert (tmp_path / "one.wav").exists() and not (tmp_path / "one-1.wav").exists()


def test_render_without_a_seed_goes_on_after_an_interrupt(tiny_models, tmp_path, capsys,
                                                         monkeypatch) -> None:
    from bark_tui.cli import render as cli_render

    script = tmp_path / "s.txt"
    script.write_text("First line here.\n\nSecond line here.\n\nThird line here.\n")
    out = tmp_path / "s.wav"
    common = ["render", str(script), "--models", str(tiny_models), "--max-duration", "0.2",
              "--out", str(out), "--batch", "1"]
    real_done = cli_render.SegmentBars.segment_done

    def interrupt_after_one(self, take):
        real_done(self, take)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_render.SegmentBars, "segment_done", interrupt_after_one)
    assert main(common) == 130
    err = " ".join(capsys.readouterr().err.split())
    seed = json.loads((tmp_path / "s.wav.parts" / "render.json").read_text())["seed"]
    assert f"1 of 3 segments are kept in {tmp_path / 's.wav.parts'}" in err
    assert f"seed {seed})" in err and not out.exists()
    monkeypatch.setattr(cli_render.SegmentBars, "segment_done", real_done)
    assert main([*common, "--json"]) == 0
    captured = capsys.readouterr()
    assert f"going on with seed {seed}" in " ".join(captured.err.split())
    report = json.loads(captured.out)
    assert report["seed"] == seed and report["reused"] == 1


def test_a_very_long_script_is_rendered_only_when_confirmed(tiny_models, tmp_path, capsys,
                                                           monkeypatch) -> None:
    from bark_tui.cli import render as cli_render

    monkeypatch.setattr(cli_render, "LONG_SCRIPT_SEGMENTS", 2)
    script = tmp_path / "long.txt"
    script.write_text("One.\n\nTwo.\n\nThree.\n")
    rc = main(["render", str(script), "--models", str(tiny_models), "--out",
               str(tmp_path / "l.wav")])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "script: 3 segments, about 0 min" in err and "pass --yes" in err
    assert not (tmp_path / "l.wav").exists()
