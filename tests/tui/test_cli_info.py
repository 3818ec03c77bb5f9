"""`bark-tui info`, run as a user runs it: a fresh process with its own environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bark_engine.model import kernels
from bark_tui.core.player import NO_DEVICE_REASON
from bark_tui.core.settings import Settings, save_settings
from tests.engine.take_checks import auto_precision

from .audio_capture import install_alsa_config, require_portaudio

REPO = Path(__file__).resolve().parents[2]


def run_info(tmp_path: Path, *args: str, xdg: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m bark_tui info ARGS` with an empty HF cache, its own studio home and
    (without ``xdg``) no ALSA config, so no output device."""
    env = {k: v for k, v in os.environ.items() if k != "AUDIO_CAPTURE_FILE"}
    empty_xdg = tmp_path / "empty-xdg"
    empty_xdg.mkdir(exist_ok=True)
    env.update(HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(REPO),
               BARK_TUI_HOME=str(tmp_path / "studio"), XDG_CONFIG_HOME=str(xdg or empty_xdg))
    env.pop("HF_HUB_OFFLINE", None)
    return subprocess.run([sys.executable, "-m", "bark_tui", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_info_json_with_a_local_folder_and_no_sound(tiny_models: Path, tmp_path: Path) -> None:
    require_portaudio()
    proc = run_info(tmp_path, "--models", str(tiny_models), "info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["versions"]["torch"] and info["versions"]["python"]
    models = info["models"]
    assert models["ready"] and models["random_weights"] and models["local_folder"]
    assert set(models["files"]) == {"text.pt", "coarse.pt", "fine.pt", "vocab.txt", "encodec"}
    assert (info["compute"]["device"], info["compute"]["dtype"]) == ("cpu", auto_precision())
    assert info["compute"]["advice"] is None
    assert info["audio"] == {"playback": False, "problem": NO_DEVICE_REASON}
    assert info["paths"]["settings"].startswith(str(tmp_path / "studio"))
    assert not list(tmp_path.glob("hf/**/*.pt"))  # info downloads nothing
    # the weights' memory per precision, for the real small models
    gb = models["weights_gb"]
    assert set(gb) == {"float32", "bfloat16", "float16", "int8"}
    assert gb["int8"] < gb["bfloat16"] == gb["float16"] < gb["float32"] < 2


def test_info_says_what_is_missing_and_how_to_get_it(tmp_path: Path) -> None:
    """Nothing downloaded, hub repo by default: every file is missing, nothing is
    fetched, and the table names the way out."""
    proc = run_info(tmp_path, "info")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "suno/bark small · missing: text.pt, coarse.pt, fine.pt, vocab.txt, encodec" in out
    assert "bark-tui download" in out
    assert "weights float32 1.58 GB · bfloat16 1.03 GB" in out
    assert "int8 0.75 GB (small models in memory on the CPU)" in out
    assert not list(tmp_path.glob("hf/**/*.pt"))


def test_info_follows_settings_and_the_command_line_and_finds_the_sound(
    tiny_models: Path, tmp_path: Path
) -> None:
    require_portaudio()
    home = tmp_path / "studio"
    (home / "config").mkdir(parents=True)
    save_settings(Settings(dtype="float16", models=str(tiny_models)),
                  home / "config" / "settings.json")
    xdg = tmp_path / "xdg"
    install_alsa_config(xdg, "raw")
    info = json.loads(run_info(tmp_path, "info", "--json", xdg=xdg).stdout)
    assert info["compute"]["dtype"] == "float16"  # from the saved settings
    # float16 is slow only on the pure-torch path (no kernels built, or --no-kernels)
    assert (info["compute"]["advice"] is None) == kernels.available()
    info = json.loads(run_info(tmp_path, "--no-kernels", "info", "--json", xdg=xdg).stdout)
    assert "float16 on the CPU without the compiled kernels" in info["compute"]["advice"]
    assert info["compute"]["steps"] == "pure-torch fallback (--no-kernels)"
    assert info["models"]["ready"] and info["settings_warnings"] == []
    assert info["audio"] == {"playback": True, "problem": None}  # the ALSA file sink
    info = json.loads(run_info(tmp_path, "--dtype", "float32", "info", "--json", xdg=xdg).stdout)
    assert (info["compute"]["dtype"], info["compute"]["advice"]) == ("float32", None)
    assert info["compute"]["cpu_kernels"]["available"] == kernels.available()
    assert info["compute"]["steps"].startswith(
        "compiled kernels" if kernels.available() else "pure-torch fallback")
