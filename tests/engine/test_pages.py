"""A loaded model holds its weights once: the mapped originals are handed back after each copy.

Loading copies each linear weight of a memory-mapped checkpoint into the
layout it runs in (the CPU kernels' panels, or the fallback's column-major
weight); the copy reads the mapped pages, which would otherwise stay
resident next to it. These tests measure a real process's RSS against the
size of the weights, and check that releasing pages never changes a value.
"""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from bark_engine.config import GPTConfig
from bark_engine.loading.checkpoints import load_checkpoint, safe_torch_load
from bark_engine.model import kernels
from bark_engine.model.pages import FileMapping, MappedPages, file_mappings
from bark_engine.model.precision import (
    PackedLinear,
    full_state_dict,
    linear_layers,
    use_decode_layout,
    weight_of,
)
from bark_engine.testing.checkpoint_files import checkpoint_dict, save_checkpoint

LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc"
)


def _write(path: Path, cfg: GPTConfig, seed: int = 0) -> Path:
    ckpt = checkpoint_dict(
        cfg, "causal", seed=seed, compiled_prefix=True, old_vocab_key=False,
        mask_dtype=torch.bool, optimizer_state=False,
    )  # fmt: skip
    save_checkpoint(ckpt, path)
    return path


# ~175 MB of float32 weights, ~140 MB of them in Linears: big enough that a
# second copy stands far above the interpreter's own noise, small enough to
# write and load in a few seconds.
BIG = GPTConfig(
    n_layer=4, n_head=8, n_embd=768, block_size=64, input_vocab_size=10_048,
    output_vocab_size=10_048,
)  # fmt: skip
# Every Linear spans several pages, so each one has pages to release.
SMALL = GPTConfig(
    n_layer=2, n_head=2, n_embd=64, block_size=32, input_vocab_size=300, output_vocab_size=300
)


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("pages") / "big.pt", BIG)


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from bark_engine.loading.checkpoints import load_checkpoint
    from bark_engine.model import pages
    from bark_engine.model.precision import linear_layers, weight_bytes, weight_of
    from bark_engine.model.steps import Feed
    from bark_engine.model.strategy import stepper_for

    path, warm, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "naive":  # the same copies, the originals' pages kept: two copies
        pages.MappedPages.release = lambda self, tensor: 0

    def load_and_decode(p):
        model = load_checkpoint(p, "causal")  # packed for the kernels, or column-major
        stepper = stepper_for(model)
        cache = stepper.new_cache(1)
        stepper.advance(cache, [Feed(0, torch.tensor([1, 2, 3, 4]), fresh=True)], None)
        logits = stepper.advance(cache, [Feed(0, torch.tensor([5]))], None)  # a decode step
        assert torch.isfinite(logits).all()
        return model

    def status_mb(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

    warm_model = load_and_decode(warm)  # lazy imports, thread pools, allocator
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM restarts from the current RSS (Linux >= 4.0)
    base = status_mb("VmRSS")
    model = load_and_decode(path)
    weights = weight_bytes(model) / 2**20
    linears = sum(weight_of(m).numel() * 4 for _, _, m in linear_layers(model)) / 2**20
    print(json.dumps({
        "weights": weights, "linears": linears,
        "rss": status_mb("VmRSS") - base, "hwm": status_mb("VmHWM") - base,
    }))
    """
)


def _measure(path: Path, warm: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(path), str(warm), mode],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@LINUX_PROC
def test_load_and_decode_hold_the_weights_once(big_checkpoint: Path, tmp_path: Path) -> None:
    warm = _write(tmp_path / "warm.pt", SMALL, seed=1)
    ours = _measure(big_checkpoint, warm, "release")
    weights, linears = ours["weights"], ours["linears"]
    assert linears > 0.75 * weights > 100  # the test means something only if Linears dominate
    # One copy: the laid-out Linears plus the few embedding rows read, the KV
    # cache and a little slack; while converting, one matrix is held twice.
    largest = BIG.n_embd * BIG.output_vocab_size * 4 / 2**20
    assert ours["rss"] < 1.05 * weights + 16, ours
    assert ours["hwm"] < 1.05 * weights + largest + 16, ours
    # Control: the same measurement sees the second copy when pages are kept.
    naive = _measure(big_checkpoint, warm, "naive")
    assert naive["rss"] > ours["rss"] + 0.8 * linears, (naive, ours)
    assert naive["hwm"] > 1.7 * linears, naive


@pytest.mark.parametrize("use_kernels", [False, True])
def test_released_weights_keep_names_shapes_and_values(tmp_path: Path, use_kernels) -> None:
    if use_kernels and not kernels.available():
        pytest.skip("CPU kernels not built here")
    path = _write(tmp_path / "small.pt", SMALL, seed=2)
    released = load_checkpoint(path, "causal", use_kernels=use_kernels)
    kept = load_checkpoint(path, "causal", use_kernels=False)
    originals = {n: p.data for n, p in kept.named_parameters()}
    stored = {
        k.removeprefix("_orig_mod."): v
        for k, v in safe_torch_load(path, mmap=False)["model"].items()
        if not k.endswith("attn.bias")
    }
    state = full_state_dict(released)
    assert sorted(state) == sorted(full_state_dict(kept))
    for name, value in state.items():
        assert value.shape == stored[name].shape and torch.equal(value, stored[name]), name
        # The handed-back originals still read the file's values (faulted back in).
        assert torch.equal(originals[name], stored[name]), name
    for _, _, m in linear_layers(released):  # the layout the CPU path reads
        assert isinstance(m, PackedLinear) if use_kernels else m.weight.stride(0) == 1
    cache_a, cache_b = released.new_cache(1, 8), kept.new_cache(1, 8)
    for step in ([[1, 2, 3]], [[4]], [[5]]):
        a = released(torch.tensor(step), cache_a)
        b = kept(torch.tensor(step), cache_b)
        if use_kernels:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(a, b)  # the same layout: bit for bit
    use_decode_layout(released)  # idempotent
    assert all(torch.equal(v, state[k]) for k, v in full_state_dict(released).items())


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_pages_are_released_only_from_clean_file_mappings(tmp_path: Path) -> None:
    path = _write(tmp_path / "small.pt", SMALL, seed=3)
    # The checkpoint's tensors as mapped (no layout copied yet).
    raw = safe_torch_load(path)["model"]
    fc = raw["_orig_mod.transformer.h.0.mlp.c_fc.weight"]  # 256 x 64 floats: 16 pages
    expected = fc.clone()
    nbytes = fc.numel() * fc.element_size()  # 64 KiB
    assert MappedPages().release(fc) >= nbytes - 2 * mmap.PAGESIZE  # all but the ends' pages
    assert torch.equal(fc, expected)

    anon = torch.randn(1 << 16)  # ordinary memory: dropping it would zero it
    copy = anon.clone()
    assert MappedPages().release(anon) == 0 and torch.equal(anon, copy)

    # A written (copy-on-write) page makes the mapping's data differ from the
    # file: nothing in it may be dropped any more.
    dirty = safe_torch_load(path)["model"]
    head = dirty["_orig_mod.lm_head.weight"]
    head[0, 0] = 123.0
    proj = dirty["_orig_mod.transformer.h.1.mlp.c_fc.weight"]
    assert MappedPages().release(proj) == 0
    assert head[0, 0].item() == 123.0


@pytest.mark.parametrize("use_kernels", [False, True])
def test_fine_model_heads_keep_their_embeddings(tmp_path: Path, use_kernels: bool) -> None:
    cfg = GPTConfig(
        n_layer=1, n_head=2, n_embd=64, block_size=32, input_vocab_size=300,
        output_vocab_size=300, n_codes_total=8, n_codes_given=1,
    )  # fmt: skip
    ckpt = checkpoint_dict(
        cfg, "fine", seed=4, compiled_prefix=True, old_vocab_key=False,
        mask_dtype=None, optimizer_state=False,
    )  # fmt: skip
    save_checkpoint(ckpt, tmp_path / "fine.pt")
    if use_kernels and not kernels.available():
        pytest.skip("CPU kernels not built here")
    model = load_checkpoint(tmp_path / "fine.pt", "fine", use_kernels=use_kernels)
    stored = safe_torch_load(tmp_path / "fine.pt", mmap=False)["model"]
    for i, head in enumerate(model.lm_heads):
        embedding = model.transformer["wtes"][i + 1].weight
        assert torch.equal(embedding, stored[f"_orig_mod.lm_heads.{i}.weight"])  # not released
        if use_kernels:  # a packed copy of the head; the embedding keeps the original
            assert isinstance(head, PackedLinear) and torch.equal(weight_of(head), embedding)
        else:  # tied, and row-major for the embedding's lookups
            assert embedding is head.weight and head.weight.is_contiguous()
    fc = model.transformer["h"][0].mlp.c_fc
    assert isinstance(fc, PackedLinear) if use_kernels else fc.weight.stride(0) == 1


def test_smaps_parsing(tmp_path: Path) -> None:
    smaps = tmp_path / "smaps"
    smaps.write_text(
        "7f0000000000-7f0000100000 rw-p 00000000 fe:00 1234    /models/text.pt\n"
        "Size:               1024 kB\n"
        "Rss:                 512 kB\n"
        "Anonymous:             0 kB\n"
        "VmFlags: rd wr mr mw me ac\n"
        "7f0000100000-7f0000200000 rw-p 00000000 00:00 0 \n"
        "Anonymous:           100 kB\n"
        "7f0000200000-7f0000300000 rw-p 00001000 fe:00 99   /a path/with spaces.pt (deleted)\n"
        "Anonymous:             8 kB\n"
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                  [stack]\n"
        "Anonymous:           132 kB\n"
    )
    assert file_mappings(smaps) == [
        FileMapping(0x7F0000000000, 0x7F0000100000, "/models/text.pt", 0),
        FileMapping(0x7F0000200000, 0x7F0000300000, "/a path/with spaces.pt (deleted)", 8),
    ]
    assert file_mappings(tmp_path / "absent") == []
