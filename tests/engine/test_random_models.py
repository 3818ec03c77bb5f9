"""The random-weight model folder has exactly the real suno/bark layout and quirks."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine import config
from bark_engine.loading.checkpoints import safe_torch_load
from bark_engine.testing import MARKER_FILE, PRESETS, preset_relpath, write_random_models
from bark_engine.testing.__main__ import main as run_cli
from bark_engine.testing.vocab import VOCAB_SIZE

TINY_FILES = ("text.pt", "coarse.pt", "fine.pt")
TEXTS = {
    "en": "Hello, my name is Suno. And, uh — and I like pizza. [laughs] But I also have "
    "other interests such as playing tic tac toe.",
    "music": "♪ In the jungle, the mighty jungle, the lion barks tonight ♪",
    "de": "Hallo, ich heiße Suno. Größe, übermäßig, schön — „Anführungszeichen“ und ß.",
    "es": "¡Hola! ¿Cómo estás? Me llamo Suno y me gusta la pizza, señor.",
    "fr": "Bonjour, je m'appelle Suno. J'aime beaucoup la pizza, c'est très bon « oui ».",
    "hi": "नमस्ते, मेरा नाम सुनो है। मुझे पिज़्ज़ा पसंद है।",
    "it": "Ciao, mi chiamo Suno. Mi piace molto la pizza, è perché così.",
    "ja": "こんにちは、私の名前はスノです。ピザが大好きです！「はい」〜ー",
    "ko": "안녕하세요, 제 이름은 수노입니다. 저는 피자를 좋아해요.",
    "pl": "Cześć, nazywam się Suno. Lubię pizzę — źdźbło, żółć, łódź.",
    "pt": "Olá, meu nome é Suno. Eu gosto de pizza, não é? Ação, coração.",
    "ru": "Привет, меня зовут Суно. Я люблю пиццу. Ёжик, щётка.",
    "tr": "Merhaba, benim adım Suno. Pizzayı çok severim; İstanbul, ığdır, şöyle, göz.",
    "zh": "你好，我的名字是苏诺。我喜欢吃披萨！……“引号”",
}


def _raw(path: Path) -> dict:
    """The checkpoint dict as stored (mapped, optimizer included)."""
    return safe_torch_load(path)


def _pickle_bytes(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        (name,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        return z.read(name)


def test_folder_has_the_real_file_names(tiny_models: Path) -> None:
    for name in (*TINY_FILES, "vocab.txt", MARKER_FILE):
        assert (tiny_models / name).is_file(), name
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        assert (tiny_models / "encodec" / name).is_file(), name
    assert not list(tiny_models.glob("*_2.pt"))
    assert "noise" in (tiny_models / MARKER_FILE).read_text()
    assert not list(tiny_models.rglob("*.tmp")), "no temporary files left behind"


@pytest.mark.parametrize(
    ("name", "prefixed", "causal"),
    [("text.pt", True, True), ("coarse.pt", False, True), ("fine.pt", True, False)],
)
def test_checkpoint_dicts_carry_the_real_quirks(
    tiny_models: Path, name: str, prefixed: bool, causal: bool
) -> None:
    ckpt = _raw(tiny_models / name)
    assert set(ckpt) == {"model_args", "model", "optimizer", "iter_num", "best_val_loss", "config"}
    assert type(ckpt["best_val_loss"]) is np.float64
    assert isinstance(ckpt["iter_num"], int)
    assert all(isinstance(v, (str, int, float, bool)) for v in ckpt["config"].values())
    # numpy scalars pickled under numpy 1.x's module name, as the real files were.
    pkl = _pickle_bytes(tiny_models / name)
    assert b"cnumpy.core.multiarray\nscalar\n" in pkl
    assert b"numpy._core" not in pkl

    keys = list(ckpt["model"])
    assert all(k.startswith("_orig_mod.") for k in keys) == prefixed
    assert any(k.startswith("_orig_mod.") for k in keys) == prefixed
    masks = [k for k in keys if k.endswith(".attn.bias")]
    n_layer = config.DIMS["tiny"][0]
    assert len(masks) == (n_layer if causal else 0)
    for k in masks:
        mask = ckpt["model"][k]
        assert mask.shape == (1, 1, 1024, 1024)
        assert torch.equal(mask.bool()[0, 0], torch.ones(1024, 1024, dtype=torch.bool).tril())


def test_model_args_match_the_stage_configs(tiny_models: Path) -> None:
    cfgs = config.stage_configs("tiny")
    text = _raw(tiny_models / "text.pt")["model_args"]
    coarse = _raw(tiny_models / "coarse.pt")["model_args"]
    fine = _raw(tiny_models / "fine.pt")["model_args"]
    assert text == cfgs["semantic"].to_model_args()
    assert "input_vocab_size" not in coarse and coarse["vocab_size"] == 12_096  # old key
    assert config.GPTConfig.from_model_args(coarse) == cfgs["coarse"]
    assert fine == cfgs["fine"].to_model_args(fine=True)
    assert fine["n_codes_total"] == 8 and fine["n_codes_given"] == 1


def test_fine_heads_and_embeddings_are_one_tensor(tiny_models: Path) -> None:
    sd = _raw(tiny_models / "fine.pt")["model"]
    for i in range(7):
        head = sd[f"_orig_mod.lm_heads.{i}.weight"]
        emb = sd[f"_orig_mod.transformer.wtes.{i + 1}.weight"]
        assert head.data_ptr() == emb.data_ptr()
    w0, w1 = sd["_orig_mod.transformer.wtes.0.weight"], sd["_orig_mod.transformer.wtes.1.weight"]
    assert w0.data_ptr() != w1.data_ptr()


def test_weights_follow_gpt2_init(tiny_models: Path) -> None:
    sd = _raw(tiny_models / "text.pt")["model"]
    n_layer = config.DIMS["tiny"][0]
    wte = sd["_orig_mod.transformer.wte.weight"]
    assert wte.shape == (129_600, 32)
    assert wte.std().item() == pytest.approx(0.02, rel=0.02)
    proj = torch.cat(
        [sd[f"_orig_mod.transformer.h.{i}.mlp.c_proj.weight"].flatten() for i in range(2)]
    )
    assert proj.std().item() == pytest.approx(0.02 / (2 * n_layer) ** 0.5, rel=0.05)
    assert torch.equal(sd["_orig_mod.transformer.ln_f.weight"], torch.ones(32))


def test_optimizer_state_is_adamw_shaped(tiny_models: Path) -> None:
    ckpt = _raw(tiny_models / "fine.pt")
    opt = ckpt["optimizer"]
    assert set(opt) == {"state", "param_groups"}
    # tied tensors are one parameter to the optimizer
    unique = {t.data_ptr() for t in ckpt["model"].values()}
    assert len(opt["state"]) == len(unique)
    group_params = [i for g in opt["param_groups"] for i in g["params"]]
    assert sorted(group_params) == sorted(opt["state"])
    assert [g["weight_decay"] for g in opt["param_groups"]] == [0.1, 0.0]
    shapes = sorted(
        tuple(t.shape) for t in {t.data_ptr(): t for t in ckpt["model"].values()}.values()
    )
    for entry in opt["state"].values():
        assert set(entry) == {"step", "exp_avg", "exp_avg_sq"}
        assert entry["exp_avg"].shape == entry["exp_avg_sq"].shape
        assert float(entry["step"]) == ckpt["iter_num"]
    assert sorted(tuple(e["exp_avg"].shape) for e in opt["state"].values()) == shapes


def test_vocab_is_mbert_shaped_and_tokenizes_every_language(tiny_models: Path) -> None:
    from transformers import BertTokenizer

    lines = (tiny_models / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == VOCAB_SIZE == 119_547
    assert VOCAB_SIZE + config.TEXT_ENCODING_OFFSET == config.TEXT_PAD_TOKEN
    assert lines[0] == "[PAD]" and lines[1] == "[unused1]"
    assert lines[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(set(lines[:-1])) == VOCAB_SIZE, "tokens are unique"

    tok = BertTokenizer(str(tiny_models / "vocab.txt"), do_lower_case=False)
    assert tok.unk_token_id == 100
    for lang, text in TEXTS.items():
        ids = tok.encode(text, add_special_tokens=False)
        assert ids and 100 not in ids, f"{lang}: [UNK] in {tok.convert_ids_to_tokens(ids)}"
        assert max(ids) < VOCAB_SIZE
    assert tok.encode("hello name pizza", add_special_tokens=False) == [
        lines.index("hello"),
        lines.index("name"),
        lines.index("pizza"),
    ]


def test_encodec_is_a_24khz_model_that_decodes(tiny_models: Path) -> None:
    from transformers import EncodecModel

    model, info = EncodecModel.from_pretrained(tiny_models / "encodec", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    cfg = model.config
    assert (cfg.sampling_rate, cfg.codebook_size, cfg.frame_rate) == (24_000, 1024, 75)
    assert 6.0 in cfg.target_bandwidths
    assert model.quantizer.get_num_quantizers_for_bandwidth(6.0) == 8
    codebook = model.quantizer.layers[0].codebook.embed
    assert codebook.std() > 0.5, "codebooks are drawn, not left at zero"
    codes = torch.randint(0, 1024, (1, 1, 8, 30), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.decode(codes, [None])
    audio = out[0] if isinstance(out, tuple) else out.audio_values
    assert audio.shape == (1, 1, 30 * 320)
    assert torch.isfinite(audio).all() and audio.std() > 0


def test_presets_are_valid_prompts_in_the_hub_layout(tiny_models: Path) -> None:
    from bark_engine.voices.catalog import get_preset

    assert "v2/en_speaker_6" in PRESETS and "announcer" in PRESETS and "en_speaker_1" in PRESETS
    for name in PRESETS:
        arrays = {
            kind: np.load(tiny_models / preset_relpath(name, kind), allow_pickle=False)
            for kind in ("semantic", "coarse", "fine")
        }
        sem, coarse, fine = arrays["semantic"], arrays["coarse"], arrays["fine"]
        assert sem.dtype == coarse.dtype == fine.dtype == np.int64
        known = get_preset(name).semantic_tokens
        if known is not None:
            assert sem.shape == (known,)
        n_frames = round(len(sem) * 75 / 49.9)
        assert coarse.shape == (2, n_frames) and fine.shape == (8, n_frames)
        assert np.array_equal(fine[:2], coarse)
        assert sem.min() >= 0 and sem.max() < 10_000
        assert fine.min() >= 0 and fine.max() < 1024
    assert (tiny_models / "speaker_embeddings/v2/en_speaker_0_semantic_prompt.npy").is_file()
    assert (tiny_models / "speaker_embeddings/announcer_fine_prompt.npy").is_file()


def test_same_seed_same_bytes_other_seed_other_weights(tiny_models: Path, tmp_path: Path) -> None:
    again = write_random_models(tmp_path / "again", dims="tiny", seed=0)
    for rel in (
        *TINY_FILES,
        "vocab.txt",
        "encodec/model.safetensors",
        preset_relpath(PRESETS[0], "fine"),
    ):
        assert filecmp.cmp(tiny_models / rel, again / rel, shallow=False), rel
    other = write_random_models(tmp_path / "other", dims="tiny", seed=1, optimizer_state=False)
    a = _raw(tiny_models / "coarse.pt")["model"]["transformer.wte.weight"]
    b = _raw(other / "coarse.pt")["model"]["transformer.wte.weight"]
    assert a.shape == b.shape and not torch.equal(a, b)
    assert "optimizer" not in _raw(other / "coarse.pt")
    assert (other / "coarse.pt").stat().st_size < (tiny_models / "coarse.pt").stat().st_size / 2


def test_large_dims_use_the_large_file_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Real large dims would write 13 GB; shrink the transformer, keep everything else.
    monkeypatch.setitem(config.DIMS, "large", (1, 1, 8))
    monkeypatch.setattr(
        "bark_engine.testing.random_models.codec_config_kwargs",
        lambda dims: {"num_filters": 2, "hidden_size": 8, "codebook_dim": 8},
    )
    out = write_random_models(tmp_path, dims="large", seed=0, optimizer_state=False)
    assert sorted(p.name for p in out.glob("*.pt")) == ["coarse_2.pt", "fine_2.pt", "text_2.pt"]
    mask = _raw(out / "text_2.pt")["model"]["_orig_mod.transformer.h.0.attn.bias"]
    assert mask.dtype == torch.float32  # as the original stored it (tiny uses bool to stay small)


def test_bad_dims_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dims"):
        write_random_models(tmp_path, dims="medium")  # type: ignore[arg-type]


def test_cli_writes_a_folder_and_reports_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rc = run_cli(
        [
            "random-models",
            str(tmp_path / "m"),
            "--dims",
            "tiny",
            "--seed",
            "2",
            "--no-optimizer-state",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "text.pt" in out and "encodec" in out and "MB" in out and "random" in out
    assert "optimizer" not in _raw(tmp_path / "m" / "fine.pt")
    assert "seed: 2" in (tmp_path / "m" / MARKER_FILE).read_text()


def test_cli_help_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bark_engine.testing", "random-models", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    assert "--dims" in done.stdout and "--no-optimizer-state" in done.stdout
