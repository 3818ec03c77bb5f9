"""The preset catalog, name safety, hub presets and the user's voice folder, on real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bark_engine.errors import VoiceError
from bark_engine.voices.catalog import (
    LANGUAGES,
    PRESETS,
    UserVoices,
    check_name_safe,
    find_presets,
    get_preset,
    is_preset_name,
    load_preset,
    preset_files,
    preset_relpaths,
    resolve_voice_arg,
    safe_voice_name,
)
from bark_engine.voices.prompts import VoicePrompt

from .npy_bytes import object_npy
from .voice_arrays import make_arrays, write_npz

# --- catalog --------------------------------------------------------------------------


def test_catalog_contents() -> None:
    v2 = [p for p in PRESETS if p.version == "v2"]
    v1 = [p for p in PRESETS if p.version == "v1"]
    assert len(v2) == 130 and len(v1) == 130
    assert sum(p.gender == "male" for p in v2) == 93
    assert sum(p.gender == "female" for p in v2) == 37
    assert {p.gender for p in v1} == {""}
    assert get_preset("announcer").version == ""
    assert len(PRESETS) == 261 and len({p.name for p in PRESETS}) == 261
    assert len(LANGUAGES) == 13 and LANGUAGES["ja"] == "Japanese"
    six = get_preset("v2/en_speaker_6")
    assert (six.lang_code, six.language, six.gender) == ("en", "English", "male")
    assert six.prompt_seconds > 1 and six.semantic_tokens > 50
    assert get_preset("fr_speaker_3").language == "French"


def test_find_presets_filters() -> None:
    german_women = find_presets(lang="German", gender="female")
    assert german_women and all(p.lang_code == "de" and p.gender == "female" for p in german_women)
    assert find_presets(lang="de", gender="female") == german_women
    assert find_presets(lang="DE", gender="FEMALE") == german_women
    males = find_presets(gender="male")
    assert len(males) == 93  # "male" must not match "female"
    everything = find_presets()
    assert [p.version for p in everything[:130]] == ["v2"] * 130
    assert everything[-1].name == "announcer"
    korean = find_presets(lang="ko")
    assert korean[0].name.startswith("v2/") and korean[-1].name == "ko_speaker_9"
    assert [p.name for p in find_presets(query="EN_SPEAKER_6")] == [
        "v2/en_speaker_6",
        "en_speaker_6",
    ]
    assert find_presets(query="german fem") == german_women
    assert find_presets(lang="klingon") == []


def test_get_preset_suggests_and_relpaths() -> None:
    with pytest.raises(
        VoiceError, match=r"unknown preset 'v2/en_speakr_6'; did you mean v2/en_speaker_6"
    ):
        get_preset("v2/en_speakr_6")
    assert is_preset_name("V2/EN_Speaker_6 ") and not is_preset_name("speaker")
    assert preset_relpaths("v2/en_speaker_6") == (
        "speaker_embeddings/v2/en_speaker_6_semantic_prompt.npy",
        "speaker_embeddings/v2/en_speaker_6_coarse_prompt.npy",
        "speaker_embeddings/v2/en_speaker_6_fine_prompt.npy",
    )
    assert preset_files("en_speaker_6")[0] == "speaker_embeddings/en_speaker_6_semantic_prompt.npy"
    assert preset_relpaths("announcer")[2] == "speaker_embeddings/announcer_fine_prompt.npy"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../etc/passwd", "'..'"),
        ("v2/../v2/en_speaker_6", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:\\voices\\x", "absolute"),
        ("~/x", "absolute"),
        ("v2/en/speaker", "path separator"),
        ("en\\speaker", "path separator"),
        ("en\x00speaker", "control character"),
        ("  ", "empty voice name"),
    ],
)
def test_unsafe_names_refused_before_any_file_access(name: str, why: str) -> None:
    def fetch(relpath: str) -> Path:
        raise AssertionError(f"fetch called for {relpath}")

    with pytest.raises(VoiceError, match=why.replace("\\", "\\\\")):
        check_name_safe(name)
    with pytest.raises(VoiceError, match=why.replace("\\", "\\\\")):
        load_preset(name, fetch)
    with pytest.raises(VoiceError):
        resolve_voice_arg(name, fetch)


def hub_folder(root: Path, name: str, seed: int = 0, **overrides: np.ndarray) -> Path:
    """Write one preset's three .npy files in the hub layout under `root`."""
    arrays = make_arrays(seed=seed)
    arrays.update(overrides)
    for relpath, key in zip(
        preset_relpaths(name), ("semantic_prompt", "coarse_prompt", "fine_prompt"), strict=True
    ):
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, arrays[key])
    return root


def test_load_preset_fetches_catalog_paths(tmp_path: Path) -> None:
    hub_folder(tmp_path, "v2/de_speaker_3", seed=4)
    asked: list[str] = []

    def fetch(relpath: str) -> Path:
        asked.append(relpath)
        return tmp_path / relpath

    prompt = load_preset("V2/DE_speaker_3", fetch)
    assert prompt.name == "v2/de_speaker_3"
    assert asked == list(preset_relpaths("v2/de_speaker_3"))
    np.testing.assert_array_equal(prompt.fine, make_arrays(seed=4)["fine_prompt"])


def test_load_preset_reports_bad_files(tmp_path: Path) -> None:
    hub_folder(tmp_path, "announcer", coarse_prompt=np.zeros((1, 512), np.int64))
    with pytest.raises(VoiceError, match=r"preset announcer: coarse_prompt has shape \(1, 512\)"):
        load_preset("announcer", lambda rel: tmp_path / rel)
    hostile = tmp_path / preset_relpaths("announcer")[0]
    hostile.write_bytes(object_npy([{"a": 1}, None]))
    with hostile.open("rb") as f:  # a well-formed object array, so the refusal is the pickle's
        assert np.lib.format.read_magic(f) == (1, 0)
        assert np.lib.format.read_array_header_1_0(f) == ((2,), False, np.dtype(object))
    with pytest.raises(VoiceError) as refused:
        load_preset("announcer", lambda rel: tmp_path / rel)
    assert str(refused.value) == (
        "announcer: announcer_semantic_prompt.npy: holds pickled Python objects; "
        "refused (loading them can run code)"
    )


def test_load_preset_from_random_model_folder(tiny_models: Path) -> None:
    """The presets our test-weight writer produces pass validation."""
    prompt = load_preset("v2/en_speaker_6", lambda rel: tiny_models / rel)
    assert prompt.semantic.ndim == 1 and prompt.fine.shape[0] == 8


# --- resolve_voice_arg and user voices --------------------------------------------------


def test_resolve_voice_arg_order(tmp_path: Path) -> None:
    hub = hub_folder(tmp_path / "hub", "v2/en_speaker_6", seed=1)
    mine = tmp_path / "mine"
    users = UserVoices(mine)
    users.add("Narrator take 12", VoicePrompt.from_arrays(*make_arrays(seed=2).values()))
    file_voice = write_npz(tmp_path / "any file.npz", **make_arrays(seed=3))

    def fetch(rel: str) -> Path:
        return hub / rel

    assert resolve_voice_arg("v2/en_speaker_6", fetch, mine).name == "v2/en_speaker_6"
    by_path = resolve_voice_arg(str(file_voice), fetch, mine)
    np.testing.assert_array_equal(by_path.semantic, make_arrays(seed=3)["semantic_prompt"])
    by_name = resolve_voice_arg("narrator take 12", fetch, mine)
    assert by_name.name == "Narrator take 12"
    with pytest.raises(VoiceError, match="voice file not found: nope.npz"):
        resolve_voice_arg("nope.npz", fetch, mine)
    with pytest.raises(VoiceError) as info:
        resolve_voice_arg("Narator take 12", fetch, mine)
    assert "unknown voice 'Narator take 12'" in str(info.value)
    assert "Narrator take 12" in str(info.value) and "`bark-tui voices`" in str(info.value)
    with pytest.raises(VoiceError, match="unknown voice"):
        resolve_voice_arg("narrator take 12", fetch, None)


def test_user_voices_lifecycle(tmp_path: Path) -> None:
    users = UserVoices(tmp_path / "voices")
    assert users.list() == []  # folder does not exist yet
    prompt = VoicePrompt.from_arrays(*make_arrays().values())
    path = users.add("  Deep voice ", prompt)
    assert path == tmp_path / "voices" / "Deep voice.npz"
    with pytest.raises(VoiceError, match="already exists"):
        users.add("deep VOICE", prompt)
    users.add("deep VOICE", prompt, overwrite=True)  # case-insensitive clash is replaced
    assert [v.name for v in users.list()] == ["deep VOICE"]
    [info] = users.list()
    assert info.duration_s == pytest.approx(prompt.duration_s)
    users.add("b-voice.2", prompt)
    users.rename("deep VOICE", "alpha")
    assert [v.name for v in users.list()] == ["alpha", "b-voice.2"]
    with pytest.raises(VoiceError, match="already exists"):
        users.rename("alpha", "B-VOICE.2")
    users.rename("alpha", "ALPHA")  # case-only rename is fine
    users.delete("b-voice.2")
    assert [v.name for v in users.list()] == ["ALPHA"]
    with pytest.raises(VoiceError, match="no voice named"):
        users.delete("b-voice.2")
    with pytest.raises(VoiceError, match="preset name"):
        users.add("announcer", prompt)
    np.testing.assert_array_equal(users.load("alpha").coarse, prompt.coarse)


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "", "x" * 65, "a\x00b", "-dash"])
def test_user_voice_names_cannot_escape(tmp_path: Path, bad: str) -> None:
    users = UserVoices(tmp_path / "voices")
    prompt = VoicePrompt.from_arrays(*make_arrays().values())
    with pytest.raises(VoiceError, match="invalid voice name"):
        users.add(bad, prompt)
    assert not (tmp_path / "x.npz").exists()


def test_list_skips_and_reports_unreadable_files(tmp_path: Path) -> None:
    folder = tmp_path / "voices"
    users = UserVoices(folder)
    users.add("good", VoicePrompt.from_arrays(*make_arrays().values()))
    (folder / "broken.npz").write_bytes(b"garbage")
    write_npz(folder / "float.npz", **{k: v + 0.5 for k, v in make_arrays().items()})
    scan = users.scan()
    assert [v.name for v in scan.voices] == ["good"]
    assert len(scan.problems) == 2
    assert any("broken.npz: not an .npz file" in p for p in scan.problems)
    assert any("float.npz" in p and "non-integer" in p for p in scan.problems)


def test_import_file_validates_then_copies(tmp_path: Path) -> None:
    users = UserVoices(tmp_path / "voices")
    src = write_npz(
        tmp_path / "Cool voice!.npz",
        extra=np.arange(3),
        **{k: v.astype(np.float64) for k, v in make_arrays().items()},
    )
    saved = users.import_file(src)
    assert saved.name == "Cool voice.npz"
    with np.load(saved) as raw:
        assert sorted(raw.files) == ["coarse_prompt", "fine_prompt", "semantic_prompt"]
        assert raw["fine_prompt"].dtype == np.int64
    bad = write_npz(tmp_path / "bad.npz", semantic_prompt=np.arange(5))
    with pytest.raises(VoiceError, match="missing coarse_prompt, fine_prompt"):
        users.import_file(bad)
    assert [v.name for v in users.list()] == ["Cool voice"]
    assert users.import_file(src, name="copy").name == "copy.npz"


def test_safe_voice_name() -> None:
    assert safe_voice_name("Hello, my name is Suno!") == "Hello my name is Suno"
    assert safe_voice_name("../../etc") == "etc"
    assert safe_voice_name("???") == "voice"
    assert safe_voice_name("announcer") == "announcer voice"
    assert len(safe_voice_name("x" * 200)) == 64


def test_voice_audio_script_modules_do_not_import_torch() -> None:
    """The app imports these at start-up; torch must load only with an Engine."""
    code = (
        "import sys, bark_engine.voices.catalog, bark_engine.audio, bark_engine.scripts.parse; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
