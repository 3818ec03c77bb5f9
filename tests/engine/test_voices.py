"""Voice prompts (.npz files in the original format): round trips, validation messages, refusals."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from bark_engine.errors import BadInputError, VoiceError
from bark_engine.voices.catalog import (
    find_presets,
)
from bark_engine.voices.prompts import VoicePrompt

from .voice_arrays import make_arrays, write_npz


def npz_error(tmp_path: Path, **overrides) -> str:
    """The one-line message for a file built from valid arrays plus `overrides` (None = drop)."""
    arrays = make_arrays()
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = write_npz(tmp_path / "voice.npz", **arrays)
    with pytest.raises(VoiceError) as info:
        VoicePrompt.from_npz(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- VoicePrompt -------------------------------------------------------------------


def test_npz_round_trip_is_original_format(tmp_path: Path) -> None:
    arrays = make_arrays()
    prompt = VoicePrompt.from_arrays(
        arrays["semantic_prompt"], arrays["coarse_prompt"], arrays["fine_prompt"], name="n"
    )
    out = prompt.save_npz(tmp_path / "saved.npz")
    # What the original Bark does with a history prompt file:
    with np.load(out) as raw:
        assert sorted(raw.files) == ["coarse_prompt", "fine_prompt", "semantic_prompt"]
        for key, value in arrays.items():
            assert raw[key].dtype == np.int64
            np.testing.assert_array_equal(raw[key], value)
    again = VoicePrompt.from_npz(out)
    assert again.name == "saved"
    assert again.duration_s == pytest.approx(arrays["fine_prompt"].shape[1] / 75)
    assert not again.semantic.flags.writeable
    assert [p.name for p in tmp_path.iterdir()] == ["saved.npz"]  # no temp files left


def test_save_overwrites_atomically_and_checks_folder(tmp_path: Path) -> None:
    a = make_arrays(seed=1)
    prompt = VoicePrompt.from_arrays(*a.values())
    target = tmp_path / "v.npz"
    target.write_bytes(b"old")
    prompt.save_npz(target)
    np.testing.assert_array_equal(VoicePrompt.from_npz(target).fine, a["fine_prompt"])
    with pytest.raises(BadInputError, match="folder does not exist"):
        prompt.save_npz(tmp_path / "missing" / "v.npz")


def test_integral_floats_accepted_fractional_refused(tmp_path: Path) -> None:
    arrays = make_arrays()
    as_float = {k: v.astype(np.float64) for k, v in arrays.items()}
    prompt = VoicePrompt.from_npz(write_npz(tmp_path / "f.npz", **as_float))
    assert prompt.coarse.dtype == np.int64
    np.testing.assert_array_equal(prompt.semantic, arrays["semantic_prompt"])
    frac = arrays["coarse_prompt"].astype(np.float32)
    frac[1, 5] = 3.5
    msg = npz_error(tmp_path, coarse_prompt=frac)
    assert "coarse_prompt is a float array with non-integer values (e.g. 3.5)" in msg


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"coarse_prompt": np.zeros((3, 120), np.int64)},
            "voice.npz: coarse_prompt has shape (3, 120); expected (2, T)",
        ),
        (
            {"fine_prompt": np.zeros((512, 8), np.int64)},
            "fine_prompt has shape (512, 8); expected (8, T) (transposed?",
        ),
        (
            {"semantic_prompt": np.zeros((341, 1), np.int64)},
            "semantic_prompt has shape (341, 1); expected a 1-D array (T,)",
        ),
        ({"semantic_prompt": np.zeros(0, np.int64)}, "semantic_prompt is empty"),
        ({"fine_prompt": None}, "missing fine_prompt; keys found: semantic_prompt, coarse_prompt"),
        (
            {"semantic_prompt": np.full(341, 10_000, np.int64)},
            "semantic_prompt values out of range: min 10000, max 10000; expected 0..9999",
        ),
        (
            {"fine_prompt": np.full((8, 512), -1, np.int32)},
            "fine_prompt values out of range: min -1, max -1; expected 0..1023",
        ),
        ({"coarse_prompt": np.zeros((2, 512), np.bool_)}, "coarse_prompt has dtype bool"),
        ({"semantic_prompt": np.array(["a"] * 341)}, "semantic_prompt has dtype <U1"),
    ],
)
def test_each_problem_gets_a_precise_message(tmp_path: Path, overrides, expected) -> None:
    assert expected in npz_error(tmp_path, **overrides)


def test_frame_mismatch_and_ratio(tmp_path: Path) -> None:
    arrays = make_arrays()
    msg = npz_error(tmp_path, coarse_prompt=arrays["coarse_prompt"][:, :500])
    assert "coarse_prompt has 500 frames but fine_prompt has 512" in msg
    msg = npz_error(tmp_path, semantic_prompt=arrays["semantic_prompt"][:200])
    assert "coarse/semantic length ratio is 2.560 (512 frames for 200 semantic tokens)" in msg
    assert "expected about 1.503" in msg


def test_ratio_tolerance_accepts_real_preset_lengths() -> None:
    # Every catalog preset's semantic length, with the coarse length the original makes.
    for info in find_presets():
        if info.semantic_tokens is None:
            continue
        n = info.semantic_tokens
        for frames in (int(n * 75 / 49.9), round(n * 75 / 49.9), round(info.prompt_seconds * 75)):
            sem = np.zeros(n, np.int64)
            VoicePrompt.from_arrays(sem, np.zeros((2, frames)), np.zeros((8, frames)))


def test_pickled_and_malformed_files_refused(tmp_path: Path) -> None:
    arrays = make_arrays()
    obj = np.empty(3, dtype=object)
    obj[:] = [1, 2, 3]
    path = tmp_path / "evil.npz"
    np.savez(
        path,
        semantic_prompt=obj,
        coarse_prompt=arrays["coarse_prompt"],
        fine_prompt=arrays["fine_prompt"],
    )
    with pytest.raises(VoiceError, match="semantic_prompt is a pickled object array; refused"):
        VoicePrompt.from_npz(path)

    cases = {
        "missing.npz": None,
        "empty.npz": b"",
        "text.npz": b"hello, not a zip at all",
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    with pytest.raises(VoiceError, match="voice file not found"):
        VoicePrompt.from_npz(tmp_path / "missing.npz")
    with pytest.raises(VoiceError, match="empty.npz: file is empty"):
        VoicePrompt.from_npz(tmp_path / "empty.npz")
    with pytest.raises(VoiceError, match="text.npz: not an .npz file"):
        VoicePrompt.from_npz(tmp_path / "text.npz")

    np.save(tmp_path / "single.npy", arrays["semantic_prompt"])
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(VoiceError, match="single .npy array, not an .npz"):
        VoicePrompt.from_npz(tmp_path / "single.npz")

    good = write_npz(tmp_path / "good.npz", **arrays).read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(VoiceError, match=r"cut.npz: not a readable .npz file \(truncated\?\)"):
        VoicePrompt.from_npz(tmp_path / "cut.npz")

    with zipfile.ZipFile(tmp_path / "other.npz", "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(VoiceError, match="keys found: readme.txt"):
        VoicePrompt.from_npz(tmp_path / "other.npz")
