"""Safe, zero-copy loading of Bark checkpoints, and the tokenizer."""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine.config import GPTConfig
from bark_engine.errors import CheckpointError
from bark_engine.loading.checkpoints import (
    load_checkpoint,
    load_tokenizer,
    read_vocab,
    safe_torch_load,
)
from bark_engine.model import kernels
from bark_engine.model.gpt import GPT, FineGPT
from bark_engine.model.precision import PackedLinear, full_state_dict, is_packed, weight_of
from bark_engine.testing.checkpoint_files import checkpoint_dict, save_checkpoint

MICRO = GPTConfig(
    n_layer=1, n_head=2, n_embd=8, block_size=32, input_vocab_size=40, output_vocab_size=40
)
MICRO_FINE = GPTConfig(
    n_layer=1, n_head=2, n_embd=8, block_size=32, input_vocab_size=20, output_vocab_size=20
)


def _write(path: Path, cfg: GPTConfig = MICRO, kind: str = "causal", **quirks) -> Path:
    args = {
        "seed": 0,
        "compiled_prefix": False,
        "old_vocab_key": False,
        "mask_dtype": None,
        "optimizer_state": False,
    }
    numpy1 = quirks.pop("numpy1_names", True)
    args.update(quirks)
    save_checkpoint(checkpoint_dict(cfg, kind, **args), path, numpy1_names=numpy1)
    return path


def _stored_weights(path: Path) -> dict[str, torch.Tensor]:
    raw = safe_torch_load(path)["model"]
    return {k.removeprefix("_orig_mod."): v for k, v in raw.items() if not k.endswith("attn.bias")}


# --- round trip on the tiny folder -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "cls"),
    [("text.pt", "causal", GPT), ("coarse.pt", "causal", GPT), ("fine.pt", "fine", FineGPT)],
)
def test_loaded_weights_equal_the_stored_ones(tiny_models: Path, name, kind, cls) -> None:
    model = load_checkpoint(tiny_models / name, kind)
    assert type(model) is cls
    assert not model.training
    assert is_packed(model) == kernels.available()  # the CPU kernels' layout where built
    stored = _stored_weights(tiny_models / name)
    state = full_state_dict(model)
    assert set(state) == set(stored)
    for key, value in state.items():
        assert value.device.type == "cpu" and value.dtype == torch.float32
        assert torch.equal(value, stored[key]), key
    assert all(not p.requires_grad for p in model.parameters())
    assert not any(n.endswith("attn.bias") for n, _ in model.named_buffers())


@pytest.mark.parametrize("use_kernels", [False, True])
def test_fine_model_weights_are_tied_after_loading(tiny_models: Path, use_kernels: bool) -> None:
    for dtype in (torch.float32, torch.bfloat16):
        model = load_checkpoint(tiny_models / "fine.pt", "fine", dtype=dtype,
                                use_kernels=use_kernels)
        for i, head in enumerate(model.lm_heads):
            embedding = model.transformer["wtes"][i + 1].weight
            assert embedding.dtype == torch.float32  # embeddings stay float32
            if isinstance(head, PackedLinear):  # a packed copy of the head, in the dtype
                assert weight_of(head).dtype == dtype
                torch.testing.assert_close(weight_of(head).float(), embedding, rtol=1e-2,
                                           atol=1e-3)
            else:  # the fallback keeps the tie (its heads stay float32)
                assert embedding is head.weight


def test_loaded_models_run(tiny_models: Path) -> None:
    gpt = load_checkpoint(tiny_models / "coarse.pt", "causal")
    idx = torch.randint(0, 12_096, (1, 5), generator=torch.Generator().manual_seed(0))
    logits = gpt(idx)
    assert logits.shape == (1, 1, 12_096) and torch.isfinite(logits).all()
    fine = load_checkpoint(tiny_models / "fine.pt", "fine")
    codes = torch.randint(0, 1024, (1, 6, 8), generator=torch.Generator().manual_seed(0))
    assert fine(2, codes).shape == (1, 6, 1056)


def test_other_dtype_converts_values(tiny_models: Path) -> None:
    model = load_checkpoint(tiny_models / "text.pt", "causal", dtype=torch.bfloat16)
    stored = _stored_weights(tiny_models / "text.pt")
    w = weight_of(model.lm_head)
    assert w.dtype == torch.bfloat16
    torch.testing.assert_close(w.float(), stored["lm_head.weight"], rtol=1e-2, atol=1e-3)
    assert torch.equal(model.transformer["wte"].weight, stored["transformer.wte.weight"])


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_float32_cpu_parameters_are_views_of_the_mapped_file(tiny_models: Path) -> None:
    path = tiny_models / "text.pt"
    model = load_checkpoint(path, "causal")
    target = str(path.resolve())
    regions = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            regions.append((start, end))
    assert regions, "the checkpoint is memory-mapped"
    for name, p in model.named_parameters():
        assert any(s <= p.data_ptr() < e for s, e in regions), f"{name} was copied"


# --- each quirk of the real files, alone -------------------------------------------------


@pytest.mark.parametrize(
    "quirks",
    [
        {},
        {"compiled_prefix": True},
        {"old_vocab_key": True},
        {"mask_dtype": torch.float32},
        {"mask_dtype": torch.bool, "compiled_prefix": True},
        {"optimizer_state": True},
        {"numpy1_names": False},
        {"compiled_prefix": True, "old_vocab_key": True, "optimizer_state": True},
    ],
    ids=lambda q: "+".join(f"{k}={v}" for k, v in q.items()) or "plain",
)
def test_each_quirk_loads(tmp_path: Path, quirks: dict) -> None:
    path = _write(tmp_path / "c.pt", **quirks)
    model = load_checkpoint(path, "causal")
    stored = _stored_weights(path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, stored[key])


def test_fine_checkpoint_holding_only_the_heads_loads(tmp_path: Path) -> None:
    ckpt = checkpoint_dict(
        MICRO_FINE,
        "fine",
        seed=1,
        compiled_prefix=True,
        old_vocab_key=False,
        mask_dtype=None,
        optimizer_state=False,
    )
    for i in range(1, 8):
        del ckpt["model"][f"_orig_mod.transformer.wtes.{i}.weight"]
    save_checkpoint(ckpt, tmp_path / "f.pt")
    model = load_checkpoint(tmp_path / "f.pt", "fine", use_kernels=False)
    assert model.transformer["wtes"][3].weight is model.lm_heads[2].weight
    packed = load_checkpoint(tmp_path / "f.pt", "fine")
    assert torch.equal(weight_of(packed.lm_heads[2]), packed.transformer["wtes"][3].weight)


def test_legacy_non_zip_checkpoint_loads(tmp_path: Path) -> None:
    ckpt = checkpoint_dict(
        MICRO, "causal", seed=2, compiled_prefix=True, old_vocab_key=False,
        mask_dtype=None, optimizer_state=False,
    )  # fmt: skip
    path = tmp_path / "legacy.pt"
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    model = load_checkpoint(path, "causal")
    assert torch.equal(weight_of(model.lm_head), ckpt["model"]["_orig_mod.lm_head.weight"])


# --- refusing what does not fit ---------------------------------------------------------


def test_wrong_kind_is_refused(tiny_models: Path) -> None:
    with pytest.raises(CheckpointError, match=r"fine\.pt.*fine-stage.*expected a causal"):
        load_checkpoint(tiny_models / "fine.pt", "causal")
    with pytest.raises(CheckpointError, match=r"coarse\.pt.*causal.*expected a fine"):
        load_checkpoint(tiny_models / "coarse.pt", "fine")


def test_missing_and_unexpected_weights_are_named(tmp_path: Path) -> None:
    ckpt = checkpoint_dict(
        MICRO, "causal", seed=3, compiled_prefix=True, old_vocab_key=False,
        mask_dtype=None, optimizer_state=False,
    )  # fmt: skip
    del ckpt["model"]["_orig_mod.transformer.ln_f.weight"]
    ckpt["model"]["_orig_mod.transformer.extra.weight"] = torch.zeros(2)
    save_checkpoint(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "bad.pt", "causal")
    msg = str(err.value)
    assert "bad.pt" in msg
    assert "missing transformer.ln_f.weight" in msg
    assert "unexpected transformer.extra.weight" in msg


def test_wrong_shapes_are_refused(tmp_path: Path) -> None:
    ckpt = checkpoint_dict(
        MICRO, "causal", seed=4, compiled_prefix=False, old_vocab_key=False,
        mask_dtype=None, optimizer_state=False,
    )  # fmt: skip
    ckpt["model_args"]["n_embd"] = 16  # the weights are 8 wide
    save_checkpoint(ckpt, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"shape\.pt.*do not fit"):
        load_checkpoint(tmp_path / "shape.pt", "causal")


@pytest.mark.parametrize("cut", [0, 100, 0.5, -30])
def test_truncated_files_are_refused(tiny_models: Path, tmp_path: Path, cut) -> None:
    data = (tiny_models / "coarse.pt").read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        load_checkpoint(path, "causal")


def test_non_checkpoints_are_refused(tmp_path: Path) -> None:
    # ~1 in 15 random files made the unpickler raise IndexError (seed 2 here does)
    for seed in (2, *range(40)):
        (tmp_path / "noise.pt").write_bytes(random.Random(seed).randbytes(4096))
        with pytest.raises(CheckpointError, match=r"noise\.pt"):
            load_checkpoint(tmp_path / "noise.pt", "causal")
    torch.save({"model_args": {"n_layer": 1}}, tmp_path / "nomodel.pt")
    with pytest.raises(CheckpointError, match=r"nomodel\.pt"):
        load_checkpoint(tmp_path / "nomodel.pt", "causal")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list\.pt.*not a dict"):
        load_checkpoint(tmp_path / "list.pt", "causal")
    with pytest.raises(CheckpointError, match=r"absent\.pt"):
        load_checkpoint(tmp_path / "absent.pt", "causal")


# --- pickles that try to run code ----------------------------------------------------------


class _SystemCall:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _ExecCall:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


class _Payload:
    """A plain custom class: harmless here, but not something a checkpoint may hold."""

    def __init__(self) -> None:
        self.value = 1


class _StateDict(collections.OrderedDict):
    """An OrderedDict subclass: its reduce names this module's class."""


def _hostile_payloads(marker: Path) -> dict[str, object]:
    return {
        "os.system": _SystemCall(f"touch {marker}"),
        "exec": _ExecCall(f"open({str(marker)!r}, 'w').write('ran')"),
        "custom class": _Payload(),
        "OrderedDict subclass": _StateDict(a=torch.zeros(1)),
    }


@pytest.mark.parametrize("payload", ["os.system", "exec", "custom class", "OrderedDict subclass"])
def test_pickled_code_is_refused_and_never_runs(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    ckpt = checkpoint_dict(
        MICRO, "causal", seed=5, compiled_prefix=False, old_vocab_key=False,
        mask_dtype=None, optimizer_state=False,
    )  # fmt: skip
    ckpt["best_val_loss"] = _hostile_payloads(marker)[payload]
    path = tmp_path / "hostile.pt"
    torch.save(ckpt, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=r"hostile\.pt.*refused"):
        load_checkpoint(path, "causal")
    assert not marker.exists(), "code in the pickle ran"


def test_the_allow_list_does_not_leak_out_of_the_loader(tiny_models: Path) -> None:
    load_checkpoint(tiny_models / "coarse.pt", "causal")
    # Outside our loader, plain weights_only loading still refuses numpy scalars.
    with pytest.raises(Exception, match="numpy"):
        torch.load(tiny_models / "coarse.pt", weights_only=True)


# --- memory: never two copies, never the optimizer ------------------------------------------

_RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from bark_engine.loading.checkpoints import load_checkpoint, safe_torch_load
    path = sys.argv[1]
    load_checkpoint(sys.argv[2], "causal")  # warm up lazy imports and allocator

    def status_mb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

    def reset_peak():  # VmHWM restarts from the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status_mb("VmRSS")

    def growth():
        return status_mb("VmHWM") - base

    base = reset_peak()
    m32 = load_checkpoint(path, "causal")
    fp32 = growth()
    base = reset_peak()
    m16 = load_checkpoint(path, "causal", dtype=torch.bfloat16)
    bf16 = growth()
    del m32, m16
    base = reset_peak()
    ckpt = safe_torch_load(path, mmap=False)  # everything read into memory, the naive way
    print(json.dumps({"fp32": fp32, "bf16": bf16, "naive": growth()}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_holds_the_weights_once_and_never_the_optimizer(
    tiny_models: Path, tmp_path: Path
) -> None:
    cfg = GPTConfig(
        n_layer=2, n_head=2, n_embd=128, input_vocab_size=129_600, output_vocab_size=10_048
    )
    path = _write(tmp_path / "mid.pt", cfg, optimizer_state=True, compiled_prefix=True)
    weights_mb = sum(v.numel() * 4 for v in _stored_weights(path).values()) / 2**20
    file_mb = path.stat().st_size / 2**20
    assert file_mb > 2.5 * weights_mb  # the optimizer state is most of the file

    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path), str(tiny_models / "coarse.pt")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    grew = json.loads(out.stdout.strip().splitlines()[-1])
    assert grew["naive"] > 0.8 * file_mb, "control: a plain load reads the whole file"
    assert grew["fp32"] < 0.25 * weights_mb, "float32 on CPU maps the file, copies nothing"
    # bfloat16: the mapped float32 pages are read once, plus the half-size copy.
    assert grew["bf16"] < 1.5 * weights_mb + 16
    assert grew["bf16"] < 0.6 * file_mb


# --- tokenizer -------------------------------------------------------------------------------


def test_tokenizer_matches_transformers_bert_on_the_vocab(tiny_models: Path) -> None:
    from transformers import BertTokenizer

    vocab = tiny_models / "vocab.txt"
    ours = load_tokenizer(vocab)
    reference = BertTokenizer(str(vocab), do_lower_case=False)
    for text in [
        "Hello, my name is Suno. [laughs] ♪",
        "Größe ß — ça",
        "こんにちは世界",
        "안녕하세요",
    ]:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == reference.encode(text, add_special_tokens=False)
        assert 100 not in ids
    lines = vocab.read_text(encoding="utf-8").split("\n")
    assert ours.encode("hello", add_special_tokens=False) == [lines.index("hello")]
    assert ours.encode("Hello", add_special_tokens=False) != [lines.index("hello")]  # cased
    assert ours.encode("hello", add_special_tokens=True)[0] == 101  # [CLS]


def test_tokenizer_refuses_unusable_vocabularies(tmp_path: Path, tiny_models: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_tokenizer(tmp_path / "vocab.txt")
    big = tmp_path / "big.txt"
    shutil.copy(tiny_models / "vocab.txt", big)
    with big.open("a", encoding="utf-8") as f:
        f.write("[unused_extra]\n")
    with pytest.raises(CheckpointError, match="119547"):
        read_vocab(big)
    (tmp_path / "nounk.txt").write_text("[PAD]\nhello\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"\[UNK\]"):
        load_tokenizer(tmp_path / "nounk.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CheckpointError, match=r"binary\.txt"):
        load_tokenizer(tmp_path / "binary.txt")


def test_best_val_loss_comes_back_as_a_number(tiny_models: Path) -> None:
    ckpt = safe_torch_load(tiny_models / "text.pt")
    assert isinstance(ckpt["best_val_loss"], np.floating)
    assert 1.0 < float(ckpt["best_val_loss"]) < 3.0
    json.dumps(ckpt["config"])  # plain values only
