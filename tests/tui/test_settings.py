"""Settings (forgiving load, atomic save, validation) and folder locations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from bark_engine.options import GenerationOptions
from bark_tui.core import locations
from bark_tui.core.settings import (
    Settings,
    generation_options,
    load_settings,
    save_settings,
    validate_settings,
)
from bark_tui.history import HistoryStore

# --- settings ---------------------------------------------------------------------


def test_missing_file_gives_defaults_without_warnings(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "nope.json") == (Settings(), [])


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config" / "settings.json"
    original = Settings(
        models="/models/bark", size="large", device="cuda:1", text_temp=0.6, waveform_temp=0.0,
        fine_temp=0.0, min_eos_p=0.05, top_k=50, top_p=0.9, seed_mode="fixed", fixed_seed=42,
        output_dir="/tmp/out", theme="nord", default_voice="v2/de_speaker_3",
        speakers={"Ann": "v2/en_speaker_9", "Bob": "my-voice"}, long_form=True,
    )
    save_settings(original, path)
    assert json.loads(path.read_text())["speakers"] == {"Ann": "v2/en_speaker_9", "Bob": "my-voice"}
    assert load_settings(path) == (original, [])
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp file left


def test_save_replaces_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_settings(Settings(theme="one"), path)
    save_settings(Settings(theme="two"), path)
    assert load_settings(path)[0].theme == "two"
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("content", ["{not json", "", "\xff\xfe", "[1, 2]", "null", '"text"'])
def test_unusable_file_gives_defaults_and_a_warning(tmp_path: Path, content: str) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content.encode("latin-1"))
    loaded, warnings = load_settings(path)
    assert loaded == Settings()
    assert len(warnings) == 1 and "default settings" in warnings[0]


def test_a_folder_in_place_of_the_file_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "settings.json").mkdir()
    loaded, warnings = load_settings(tmp_path / "settings.json")
    assert loaded == Settings() and warnings


def test_bad_fields_fall_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    raw = {
        "text_temp": "hot",  # wrong type
        "waveform_temp": True,  # a bool is not a number here
        "top_k": 3.5,  # not an integer
        "long_form": "yes",
        "speakers": {"Ann": 3},
        "min_eos_p": 2.0,  # right type, impossible value
        "size": "huge",
        "dtype": "float8",  # not a precision the engine has
        "fine_temp": 1,  # an int is fine for a float field
        "theme": "nord",  # good
        "some_future_key": [1, 2, 3],  # unknown: ignored silently
    }
    path.write_text(json.dumps(raw))
    loaded, warnings = load_settings(path)
    defaults = Settings()
    assert loaded.theme == "nord" and loaded.fine_temp == 1
    for name in ("text_temp", "waveform_temp", "top_k", "long_form", "speakers", "min_eos_p", "size",
                 "dtype"):
        assert getattr(loaded, name) == getattr(defaults, name), name
        assert any(name in w for w in warnings), name
    assert len(warnings) == 8
    assert not any("some_future_key" in w for w in warnings)
    assert validate_settings(loaded) == []


def test_validate_names_each_problem() -> None:
    assert validate_settings(Settings()) == []
    bad = Settings(text_temp=-0.1, min_eos_p=1.5, size="medium", seed_mode="sometimes", top_k=0,
                   top_p=0.0, fixed_seed=-1, device=" ", default_voice="", dtype="fp32")
    problems = validate_settings(bad)
    for name in ("text_temp", "min_eos_p", "size", "seed_mode", "top_k", "top_p", "fixed_seed",
                 "device", "default_voice", "dtype"):
        assert any(p.startswith(name) for p in problems), name
    assert len(problems) == 10
    assert validate_settings(Settings(text_temp=float("nan")))  # NaN is not >= 0
    assert validate_settings(Settings(fine_temp=float("inf")))
    assert validate_settings(Settings(text_temp="0.7"))  # type: ignore[arg-type]


def test_generation_options() -> None:
    s = Settings(text_temp=0.6, waveform_temp=0.5, fine_temp=0.0, top_k=40, top_p=0.95,
                 min_eos_p=0.05)
    assert generation_options(s) == GenerationOptions(
        text_temp=0.6, waveform_temp=0.5, fine_temp=0.0, top_k=40, top_p=0.95, min_eos_p=0.05,
        seed=None,
    )
    fixed = dataclasses.replace(s, seed_mode="fixed", fixed_seed=9)
    assert generation_options(fixed).seed == 9
    assert generation_options(fixed, seed=3).seed == 3  # "regenerate with this seed" wins
    assert generation_options(s, seed=4).seed == 4


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_field_names = st.sampled_from([f.name for f in dataclasses.fields(Settings)] + ["other"])


@hyp_settings(max_examples=100, deadline=None)
@given(st.dictionaries(_field_names, _json_values, max_size=8))
def test_any_json_object_loads_to_valid_settings(tmp_path_factory, raw: dict) -> None:
    path = tmp_path_factory.getbasetemp() / "hypothesis-settings.json"  # rewritten each example
    path.write_text(json.dumps(raw, allow_nan=True))
    loaded, _ = load_settings(path)
    assert validate_settings(loaded) == []


# --- locations ---------------------------------------------------------------------


def test_home_override_moves_everything_and_is_read_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BARK_TUI_HOME", str(tmp_path / "home"))
    home = tmp_path / "home"
    assert locations.home_override() == home
    assert locations.config_dir() == home / "config"
    assert locations.data_dir() == home / "data"
    assert locations.cache_dir() == home / "cache"
    assert locations.default_output_dir() == home / "exports"
    assert locations.settings_path() == home / "config" / "settings.json"
    assert locations.history_db_path().parent == home / "data"
    assert locations.takes_dir() == home / "data" / "takes"
    assert locations.user_voices_dir() == home / "data" / "voices"
    assert not home.exists()  # asking for a path creates nothing

    monkeypatch.setenv("BARK_TUI_HOME", "~/elsewhere")
    assert locations.data_dir() == Path.home() / "elsewhere" / "data"


def test_without_override_folders_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BARK_TUI_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert locations.home_override() is None
    assert locations.config_dir() == tmp_path / "cfg" / "bark-tui"
    assert locations.data_dir() == tmp_path / "share" / "bark-tui"
    assert locations.cache_dir() == tmp_path / "cache" / "bark-tui"
    assert locations.default_output_dir().name == "bark-tui"
    monkeypatch.setenv("BARK_TUI_HOME", "  ")  # blank counts as unset
    assert locations.home_override() is None


def test_ensure_dir_and_default_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BARK_TUI_HOME", str(tmp_path))
    made = locations.ensure_dir(locations.user_voices_dir())
    assert made.is_dir() and made == tmp_path / "data" / "voices"
    assert locations.ensure_dir(made) == made  # idempotent
    with HistoryStore.open_default() as store:
        assert store.db_path == tmp_path / "data" / "history.sqlite3"
        assert store.db_path.exists()


# --- the model layer stays UI- and torch-free --------------------------------------


def test_model_layer_imports_neither_textual_nor_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import bark_tui.core.locations, bark_tui.core.settings, bark_tui.history, bark_tui.core.player\n"
        "bark_tui.core.player.Player().available\n"
        "print(sorted(m for m in ('textual', 'torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.strip() == "[]"
