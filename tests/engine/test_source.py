"""ModelSource: local folders, the hub cache (through a local fake hub), errors, download."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from bark_engine.errors import BadInputError, CheckpointError, WeightsUnavailableError
from bark_engine.events import LoadProgress
from bark_engine.loading.checkpoints import load_checkpoint, load_tokenizer
from bark_engine.loading.source import ModelSource, download, download_relpaths, v2_preset_names
from bark_engine.testing.fake_hub import COMMIT, serve_hub
from bark_engine.voices.catalog import load_preset


@pytest.fixture(autouse=True)
def _no_real_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach for the real hub: only the fake one, by explicit endpoint."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def hub_folders(tiny_models: Path, tmp_path: Path) -> dict[str, Path]:
    """suno/bark and facebook/encodec_24khz as the fake hub serves them."""
    return {"suno/bark": tiny_models, "facebook/encodec_24khz": tiny_models / "encodec"}


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- local folders ----------------------------------------------------------------------------


def test_local_folder_fetch_and_labels(tiny_models: Path) -> None:
    src = ModelSource(str(tiny_models))
    assert src.is_local and src.random_weights
    assert src.fetch("text.pt") == tiny_models / "text.pt"
    assert src.fetch("speaker_embeddings/v2/en_speaker_6_fine_prompt.npy").is_file()
    assert src.codec_path() == tiny_models / "encodec"
    assert src.checkpoint_relpath("semantic") == "text.pt"
    assert src.vocab_relpath == "vocab.txt"
    assert str(tiny_models) in src.model_id and "small" in src.model_id
    large = ModelSource(tiny_models, size="large")
    assert [large.checkpoint_relpath(s) for s in ("semantic", "coarse", "fine")] == [
        "text_2.pt",
        "coarse_2.pt",
        "fine_2.pt",
    ]
    assert "large" in large.model_id


def test_local_folder_has_what_is_there(tiny_models: Path, tmp_path: Path) -> None:
    src = ModelSource(tiny_models)
    assert src.has("text.pt") and src.has("speaker_embeddings/v2/en_speaker_6_fine_prompt.npy")
    assert src.has_codec() and not src.has("text_2.pt")
    with pytest.raises(BadInputError):
        src.has("../outside.pt")
    partial = tmp_path / "partial"
    shutil.copytree(tiny_models, partial)
    shutil.rmtree(partial / "encodec")
    assert not ModelSource(partial).has_codec()


def test_local_folder_missing_file_is_named(tiny_models: Path) -> None:
    src = ModelSource(tiny_models, size="large")  # the tiny folder has only the small files
    with pytest.raises(WeightsUnavailableError, match=r"has no text_2\.pt") as err:
        src.fetch(src.checkpoint_relpath("semantic"))
    assert str(tiny_models) in str(err.value) and "\n" not in str(err.value)


def test_folder_without_marker_is_not_labelled_random(tiny_models: Path, tmp_path: Path) -> None:
    shutil.copy(tiny_models / "vocab.txt", tmp_path / "vocab.txt")
    src = ModelSource(tmp_path)
    assert src.is_local and not src.random_weights
    with pytest.raises(WeightsUnavailableError, match="encodec"):
        src.codec_path()


@pytest.mark.parametrize(
    "relpath", ["../secret", "/etc/passwd", "a/../../b", "a\\..\\b", "", "./x", "C:/x", "a//b"]
)
def test_paths_cannot_escape_the_folder(tiny_models: Path, relpath: str) -> None:
    with pytest.raises(BadInputError, match="unsafe"):
        ModelSource(tiny_models).fetch(relpath)
    with pytest.raises(BadInputError, match="unsafe"):
        ModelSource("suno/bark", offline=True).fetch(relpath)


def test_models_argument_is_checked(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist"):
        ModelSource(str(tmp_path / "nope"))
    with pytest.raises(BadInputError, match="does not exist"):
        ModelSource("./relative-nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError, match="not a folder"):
        ModelSource(str(tmp_path / "file"))
    with pytest.raises(BadInputError, match="size"):
        ModelSource(tmp_path, size="medium")
    with pytest.raises(BadInputError, match="stage"):
        ModelSource(tmp_path).checkpoint_relpath("decode")
    hub = ModelSource("someone/bark-mirror", offline=True)
    assert not hub.is_local and not hub.random_weights
    assert hub.model_id == "someone/bark-mirror small"
    assert ModelSource(None, offline=True).model_id == "suno/bark small"


# --- the hub, offline -------------------------------------------------------------------------


def test_offline_hub_miss_says_what_to_do(tmp_path: Path) -> None:
    src = ModelSource(None, offline=True, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(WeightsUnavailableError) as err:
        src.fetch("text.pt")
    msg = str(err.value)
    assert "text.pt" in msg and "bark-tui download" in msg and "--models DIR" in msg
    assert "\n" not in msg
    with pytest.raises(WeightsUnavailableError, match="config.json"):
        src.codec_path()


def test_offline_follows_hf_hub_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert ModelSource(None, cache_dir=str(tmp_path)).offline  # HF_HUB_OFFLINE=1 (fixture)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not ModelSource(None, cache_dir=str(tmp_path)).offline
    assert ModelSource(None, cache_dir=str(tmp_path), offline=True).offline


def test_unreachable_hub_fails_fast_and_clearly(tmp_path: Path) -> None:
    src = ModelSource(
        None, offline=False, cache_dir=str(tmp_path), endpoint=f"http://127.0.0.1:{_closed_port()}"
    )
    with pytest.raises(WeightsUnavailableError, match=r"text\.pt.*cannot be reached.*download"):
        src.fetch("text.pt")


# --- the hub, through a local fake hub ---------------------------------------------------------


def test_hub_download_reports_progress_and_caches(hub_folders, tmp_path: Path) -> None:
    events: list[LoadProgress] = []
    cache = str(tmp_path / "cache")
    with serve_hub(hub_folders) as (endpoint, log):
        src = ModelSource(
            None, offline=False, cache_dir=cache, endpoint=endpoint, on_event=events.append
        )
        path = src.fetch("text.pt")
        assert path.read_bytes() == (hub_folders["suno/bark"] / "text.pt").read_bytes()
        assert COMMIT in path.parts  # huggingface_hub's snapshot layout
        size = path.stat().st_size
        text_events = [e for e in events if e.what == "text.pt"]
        assert text_events[0].done == 0 and text_events[0].total == size
        assert text_events[-1].done == size
        assert [e.done for e in text_events] == sorted(e.done for e in text_events)
        assert ("GET", "/suno/bark/resolve/main/text.pt") in log
    # The server is gone: the cached file is found offline, with no download events.
    events.clear()
    offline = ModelSource(None, offline=True, cache_dir=cache)
    assert offline.fetch("text.pt") == path
    assert events == []
    model = load_checkpoint(path, "causal")
    assert model.config.input_vocab_size == 129_600


def test_hub_missing_file_is_a_checkpoint_error(hub_folders, tmp_path: Path) -> None:
    with serve_hub(hub_folders) as (endpoint, _):
        src = ModelSource(None, offline=False, cache_dir=str(tmp_path), endpoint=endpoint)
        with pytest.raises(CheckpointError, match=r"suno/bark has no file nothing\.pt"):
            src.fetch("nothing.pt")
        with pytest.raises(CheckpointError, match="nobody/nothing"):
            ModelSource(
                "nobody/nothing", offline=False, cache_dir=str(tmp_path), endpoint=endpoint
            ).fetch("text.pt")


def test_vocab_falls_back_to_multilingual_bert(tiny_models: Path, tmp_path: Path) -> None:
    bark_without_vocab = tmp_path / "bark"
    bark_without_vocab.mkdir()
    shutil.copy(tiny_models / "coarse.pt", bark_without_vocab / "coarse.pt")
    repos = {
        "suno/bark": bark_without_vocab,
        "google-bert/bert-base-multilingual-cased": tiny_models,
    }
    with serve_hub(repos) as (endpoint, log):
        src = ModelSource(None, offline=False, cache_dir=str(tmp_path / "c"), endpoint=endpoint)
        vocab = src.fetch(src.vocab_relpath)
        assert "bert-base-multilingual-cased" in str(vocab)
        assert load_tokenizer(vocab).encode("hello", add_special_tokens=False)
        assert ("HEAD", "/suno/bark/resolve/main/vocab.txt") in log


def test_codec_snapshot_from_the_hub(hub_folders, tmp_path: Path) -> None:
    with serve_hub(hub_folders) as (endpoint, _):
        src = ModelSource(None, offline=False, cache_dir=str(tmp_path), endpoint=endpoint)
        folder = src.codec_path()
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert ModelSource(None, offline=True, cache_dir=str(tmp_path)).codec_path() == folder


def test_download_then_everything_works_offline(hub_folders, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    events: list[LoadProgress] = []
    presets = ["v2/en_speaker_6", "announcer", "en_speaker_1"]
    before = ModelSource(None, offline=True, cache_dir=cache)
    assert not before.has("text.pt") and not before.has("vocab.txt") and not before.has_codec()
    with serve_hub(hub_folders) as (endpoint, _):
        src = ModelSource(
            None, offline=False, cache_dir=cache, endpoint=endpoint, on_event=events.append
        )
        paths = download(src, presets=presets)
    assert len(paths) == 3 + 1 + 3 * len(presets) + 1
    steps = [e for e in events if e.what == "download"]
    assert steps[0].done == 0 and steps[-1].done == steps[-1].total == len(paths)
    assert steps[-1].message == "done"

    offline = ModelSource(None, offline=True, cache_dir=cache)
    assert all(offline.has(f) for f in ("text.pt", "coarse.pt", "fine.pt", "vocab.txt"))
    assert offline.has_codec() and not offline.has("text_2.pt")  # large was not fetched
    load_checkpoint(offline.fetch("fine.pt"), "fine")
    load_tokenizer(offline.fetch("vocab.txt"))
    for name in presets:
        prompt = load_preset(name, offline.fetch)
        assert prompt.fine.shape[0] == 8
    assert (offline.codec_path() / "model.safetensors").is_file()


def test_download_list_covers_all_v2_presets(tiny_models: Path) -> None:
    names = v2_preset_names()
    assert len(names) == 130 and all(n.startswith("v2/") for n in names)
    rel = download_relpaths(ModelSource(tiny_models, size="large"))
    assert rel[:4] == ["text_2.pt", "coarse_2.pt", "fine_2.pt", "vocab.txt"]
    assert len(rel) == 4 + 3 * 130
    assert "speaker_embeddings/v2/zh_speaker_9_fine_prompt.npy" in rel


def test_download_from_a_local_folder_checks_it(tiny_models: Path) -> None:
    src = ModelSource(tiny_models)
    paths = download(src, presets=["v2/en_speaker_0"])
    assert paths[0] == tiny_models / "text.pt" and paths[-1] == tiny_models / "encodec"
    with pytest.raises(WeightsUnavailableError, match="fr_speaker_1"):
        download(src, presets=["v2/fr_speaker_1"])  # not among the tiny folder's presets
