"""The decode layout holds the weights once: the mapped originals are handed back after each copy.

`use_decode_layout` copies each Linear weight of a memory-mapped model into a
column-major tensor; the copy reads the mapped pages, which would otherwise
stay resident next to it. These tests measure a real process's RSS against
the size of the weights, and check that releasing pages never changes a value.
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
from torch import nn

from bark_engine.config import GPTConfig
from bark_engine.loading.checkpoints import load_checkpoint, safe_torch_load
from bark_engine.model.gpt import use_decode_layout
from bark_engine.model.pages import FileMapping, MappedPages, file_mappings
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
    from torch import nn
    from bark_engine.loading.checkpoints import load_checkpoint
    from bark_engine.model.gpt import use_decode_layout

    path, warm, mode = sys.argv[1], sys.argv[2], sys.argv[3]

    def two_copies(model):  # what use_decode_layout did before it released pages
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.data = m.weight.data.t().contiguous().t()

    def load_and_decode(p):
        model = load_checkpoint(p, "causal")
        (two_copies if mode == "naive" else use_decode_layout)(model)
        cache = model.new_cache(1, 16)
        model(torch.tensor([[1, 2, 3, 4]]), cache)  # a prefill ...
        logits = model(torch.tensor([[5]]), cache)  # ... and one decode step (DecodePlan)
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
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    linears = sum(
        m.weight.numel() * 4 for m in model.modules() if isinstance(m, nn.Linear)
    ) / 2**20
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
    # One copy: the column-major Linears plus the few embedding rows read, the
    # KV cache and a little slack; while converting, one matrix is held twice.
    largest = BIG.n_embd * BIG.output_vocab_size * 4 / 2**20
    assert ours["rss"] < 1.05 * weights + 16, ours
    assert ours["hwm"] < 1.05 * weights + largest + 16, ours
    # Control: the same measurement sees the second copy when pages are kept.
    naive = _measure(big_checkpoint, warm, "naive")
    assert naive["rss"] > ours["rss"] + 0.8 * linears, (naive, ours)
    assert naive["hwm"] > 1.7 * linears, naive


def test_released_weights_keep_names_shapes_and_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "small.pt", SMALL, seed=2)
    released = load_checkpoint(path, "causal")
    originals = {n: p.data for n, p in released.named_parameters()}
    use_decode_layout(released)
    kept = load_checkpoint(path, "causal")
    with torch.no_grad():  # the same layout, pages left alone
        for m in kept.modules():
            if isinstance(m, nn.Linear):
                m.weight.data = m.weight.data.t().contiguous().t()
    stored = {
        k.removeprefix("_orig_mod."): v
        for k, v in safe_torch_load(path, mmap=False)["model"].items()
        if not k.endswith("attn.bias")
    }
    state = released.state_dict()
    assert list(state) == list(kept.state_dict())
    for name, value in state.items():
        assert value.shape == stored[name].shape and torch.equal(value, stored[name]), name
        # The handed-back originals still read the file's values (faulted back in).
        assert torch.equal(originals[name], stored[name]), name
    for m in released.modules():
        if isinstance(m, nn.Linear):
            assert m.weight.stride(0) == 1  # column-major, as the decode path needs
    cache_a, cache_b = released.new_cache(1, 8), kept.new_cache(1, 8)
    for step in ([[1, 2, 3]], [[4]], [[5]]):
        a = released(torch.tensor(step), cache_a)
        b = kept(torch.tensor(step), cache_b)
        assert torch.equal(a, b)  # bit for bit
    use_decode_layout(released)  # idempotent
    assert all(torch.equal(v, state[k]) for k, v in released.state_dict().items())


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_pages_are_released_only_from_clean_file_mappings(tmp_path: Path) -> None:
    path = _write(tmp_path / "small.pt", SMALL, seed=3)
    model = load_checkpoint(path, "causal")
    fc = model.transformer["h"][0].mlp.c_fc.weight.data  # 256 x 64 floats: 16 pages
    expected = fc.clone()
    nbytes = fc.numel() * fc.element_size()  # 64 KiB
    assert MappedPages().release(fc) >= nbytes - 2 * mmap.PAGESIZE  # all but the ends' pages
    assert torch.equal(fc, expected)

    anon = torch.randn(1 << 16)  # ordinary memory: dropping it would zero it
    copy = anon.clone()
    assert MappedPages().release(anon) == 0 and torch.equal(anon, copy)

    # A written (copy-on-write) page makes the mapping's data differ from the
    # file: nothing in it may be dropped any more.
    dirty = load_checkpoint(path, "causal")
    with torch.no_grad():
        dirty.lm_head.weight.data[0, 0] = 123.0
    proj = dirty.transformer["h"][1].mlp.c_fc.weight.data
    assert MappedPages().release(proj) == 0
    assert dirty.lm_head.weight[0, 0].item() == 123.0


def test_fine_model_heads_stay_tied_and_row_major(tmp_path: Path) -> None:
    cfg = GPTConfig(
        n_layer=1, n_head=2, n_embd=64, block_size=32, input_vocab_size=300,
        output_vocab_size=300, n_codes_total=8, n_codes_given=1,
    )  # fmt: skip
    ckpt = checkpoint_dict(
        cfg, "fine", seed=4, compiled_prefix=True, old_vocab_key=False,
        mask_dtype=None, optimizer_state=False,
    )  # fmt: skip
    save_checkpoint(ckpt, tmp_path / "fine.pt")
    model = use_decode_layout(load_checkpoint(tmp_path / "fine.pt", "fine"))
    for i, head in enumerate(model.lm_heads):
        assert model.transformer["wtes"][i + 1].weight is head.weight
        assert head.weight.is_contiguous()
    assert model.transformer["h"][0].mlp.c_fc.weight.stride(0) == 1


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
