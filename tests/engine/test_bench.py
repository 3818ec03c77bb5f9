"""Smoke test of `python -m bark_engine.bench` at tiny dims with tiny work.

Runs the benchmark's code path (both engines, every stage, bandwidth, the
table, the JSON) and checks that every row is there; the engines run in this
process to keep it fast, and one real child process checks that protocol.
No timing assertions: speed is measured by running the benchmark, not by tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bark_engine.bench.bandwidth import semantic_bytes_per_token
from bark_engine.bench.cli import main
from bark_engine.bench.spawn import run_child
from bark_engine.bench.work import Work
from bark_engine.config import stage_configs
from bark_engine.model import kernels

ROWS = (
    "RANDOM WEIGHTS",
    "date ",
    "machine ",
    "kernels   compiled kernels (" if kernels.available() else "kernels   pure-torch",
    "load avg ",
    "openmp ",
    "model ",
    "work ",
    "semantic (8 tok)",
    "coarse (24 tok)",
    "fine (12 frames)",
    "decode (12 frames)",
    "end to end",
    "takes/min, B = 1",
    "load (no imports)",
    "peak RSS",
    "bandwidth ",
    "bound ",
    "of the bound",
    "targets ",
    "paired    ours ",
    "warm-up (not in e2e)",
    "batching ",
    "columns ",
)


def test_bench_prints_every_row(tiny_models: Path, tmp_path: Path, capsys) -> None:
    out_json = tmp_path / "bench.json"
    rc = main([
        "--models", str(tiny_models), "--semantic-tokens", "8", "--threads", "1",
        "--bandwidth-mb", "8", "--json", str(out_json), "--in-process",
    ])
    table = capsys.readouterr().out
    assert rc == 0, table
    for row in ROWS:
        assert row in table, f"missing {row!r} in\n{table}"
    data = json.loads(out_json.read_text())
    summary = data["summary"]
    assert set(summary["engines"]) == {"ours", "port"}
    for name in ("ours", "port"):
        assert set(summary["engines"][name]["rates"]) == {"semantic", "coarse", "fine", "decode"}
        assert data["results"]["engines"][name]["peak_rss_mb"] > 0
    assert {"end_to_end", "load", "peak_rss", "semantic"} <= set(summary["ratios"])
    assert set(summary["targets"]) == {"end_to_end", "semantic_bound"}
    paired = summary["paired_share"]
    assert len(paired["shares"]) == 3 and len(paired["gbs"]) == 6
    assert min(paired["shares"]) <= paired["median"] <= max(paired["shares"])
    assert "(paired median)" in table


def test_bench_stage_subset_and_bad_options(tiny_models: Path, capsys) -> None:
    rc = main([
        "--models", str(tiny_models), "--semantic-tokens", "4", "--threads", "1",
        "--stages", "decode", "--engines", "ours", "--no-bandwidth", "--in-process",
        "--takes", "1,2",
    ])
    table = capsys.readouterr().out
    assert rc == 0
    assert "decode (6 frames)" in table and "semantic (" not in table
    assert "end to end" not in table  # needs every stage
    assert "takes     ours, B takes" in table
    rows = table.split("takes     ours, B takes", 1)[1].splitlines()[2:4]
    assert [row.split()[0] for row in rows] == ["1", "2"]  # one row per B
    assert "1.00x" in rows[0]  # per take against B = 1
    assert main(["--models", str(tiny_models), "--stages", "nope"]) == 2
    assert main(["--models", str(tiny_models), "--precisions", "int4"]) == 2
    assert main(["--models", str(tiny_models), "--precisions", "float32"]) == 2  # is --dtype
    assert main(["--models", str(tiny_models), "--paired-rounds", "-1"]) == 2
    assert main(["--models", str(tiny_models / "missing")]) == 2


def test_child_process_protocol() -> None:
    out = run_child(
        {"task": "bandwidth", "threads": 1, "megabytes": 4, "repeats": 2}, threads=1
    )
    assert out["threads"] == 1 and out["gbs"] > 0 and out["megabytes"] == 4


def test_openmp_settings_for_the_children(monkeypatch) -> None:
    from bark_engine.bench.spawn import omp_env, omp_label
    from bark_engine.openmp import SPIN_COUNT, set_default_waits

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert omp_env(None) == {"GOMP_SPINCOUNT": str(SPIN_COUNT), "OMP_WAIT_POLICY": ""}
    assert omp_env("passive")["OMP_WAIT_POLICY"] == "PASSIVE"
    assert omp_label(omp_env("spin:100")) == "OMP_WAIT_POLICY=unset, GOMP_SPINCOUNT=100"
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert omp_env(None) == {}  # the user's own setting wins
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    set_default_waits(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}
    env = {}
    set_default_waits(env)
    assert env == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}


def test_fixed_work_sizes() -> None:
    work = Work()
    assert (work.semantic_tokens, work.coarse_tokens, work.coarse_frames) == (256, 768, 384)
    assert work.audio_seconds == pytest.approx(5.12)


def test_semantic_bound_counts_blocks_and_used_head_rows() -> None:
    cfg = stage_configs("small")["semantic"]  # 12 layers, 768 wide, no biases
    c = 768
    per_block = 12 * c * c + 2 * c  # qkv, out, MLP in and out; two LayerNorm weights
    expected = 4 * (12 * per_block + c + 10_001 * c)
    assert semantic_bytes_per_token(cfg) == expected  # ≈ 371 MB


def test_bench_script_and_baseline_blocks(tiny_models: Path, capsys) -> None:
    """A script at batch 1 and 2 (the same audio), and this checkout as its own baseline."""
    rc = main([
        "--models", str(tiny_models), "--semantic-tokens", "4", "--threads", "1",
        "--stages", "decode", "--engines", "ours", "--no-bandwidth", "--in-process",
        "--script", "1.2", "--script-segment", "0.4", "--script-batch", "2",
        "--baseline", str(Path(__file__).parents[2]),
    ])
    table = capsys.readouterr().out
    assert rc == 0
    rows = table.split("script    ours", 1)[1].splitlines()[2:4]
    assert [row.split()[:2] for row in rows] == [["1", "3"], ["2", "3"]]  # B, segments
    assert all(row.rstrip().endswith("yes") for row in rows)  # the same audio at B = 2
    assert "vs before ours / the --baseline engine" in table and "before: decode" in table


def test_bench_runs_ours_in_other_precisions_beside_float32(tiny_models: Path, tmp_path: Path,
                                                             capsys) -> None:
    out_json = tmp_path / "bench.json"
    rc = main([
        "--models", str(tiny_models), "--semantic-tokens", "4", "--threads", "1",
        "--no-bandwidth", "--in-process", "--precisions", "int8,bfloat16",
        "--json", str(out_json),
    ])
    table = capsys.readouterr().out
    assert rc == 0, table
    block = table.split("precision ours in each precision", 1)[1]
    rows = [line.split()[0] for line in block.splitlines()[2:5]]
    assert rows == ["float32", "int8", "bfloat16"]
    data = json.loads(out_json.read_text())
    engines = data["summary"]["engines"]
    weights = {n: engines[n]["weight_mb"] for n in ("ours", "ours-int8", "ours-bfloat16")}
    assert weights["ours-int8"] < weights["ours-bfloat16"] < weights["ours"]
    assert set(engines["ours-int8"]["vs_ours"]) >= {"semantic", "end_to_end"}
    accuracy = data["results"]["accuracy"]
    for name in ("int8", "bfloat16"):
        for stage in ("semantic", "coarse", "fine"):
            a = accuracy[name][stage]
            assert 0 < a["rel_err"] < 0.02 and a["kl"] >= 0 and 0.9 <= a["top1"] <= 1
    # int8 moves the logits more than bf16 (a coarser grid on every weight)
    assert accuracy["int8"]["semantic"]["rel_err"] > accuracy["bfloat16"]["semantic"]["rel_err"]
    assert "accuracy  logits against float32's" in block and "RANDOM weights" in block
    # the coarse stage's prefills are timed apart: inside the stage, and reported
    for name in ("ours", "ours-int8", "ours-bfloat16"):
        parts, stage_s = engines[name]["parts"], engines[name]["seconds"]["coarse"]
        assert parts["coarse_prefills"] > 0 and parts["coarse_steps"] > 0
        assert parts["coarse_prefills"] + parts["coarse_steps"] <= stage_s
    assert "prefills  the coarse stage's window prefills alone, s: float32 " in block
    assert "int8 end to end ≥ 1.35x bf16: " in block
    assert "int8 coarse prefills ≥ 1.8x bf16: " in block
    checks = data["summary"]["precision_checks"]
    assert checks["int8_vs_bf16"] == pytest.approx(
        engines["ours-int8"]["audio_per_s"] / engines["ours-bfloat16"]["audio_per_s"])
