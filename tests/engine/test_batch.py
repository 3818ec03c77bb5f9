"""Several takes as one batch: every row equals a separate run with its seed, token for token.

Equality is exact (`array_equal`), never approximate: the batched loops run
each row through the very calls of the single loops (see bark_engine.stages.batch).
Rows are made to stop at different semantic lengths (a min_eos_p near the
tiny models' EOS probability), so finished rows leave the batch mid-way.
"""

from __future__ import annotations

import json
import threading
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine import (
    BadInputError,
    Cancelled,
    EngineConfig,
    GenerationOptions,
    StageFinished,
    StageProgress,
    StageStarted,
)
from bark_engine.config import stage_configs
from bark_engine.engine import Engine
from bark_engine.model.gpt import use_decode_layout
from bark_engine.stages.batch import (
    clone_cache,
    generate_coarse_batch,
    generate_fine_batch,
    generate_semantic_batch,
    step_rows,
)
from bark_engine.stages.coarse import generate_coarse
from bark_engine.stages.fine import generate_fine
from bark_engine.stages.semantic import generate_semantic, step_bound
from bark_engine.takes import format_takes_table, measure_takes_per_minute
from bark_tui.cli import main
from tests.engine.cancel_check import canceller
from tests.engine.reference_port import tiny_model

TEXT = list(range(2000, 2040))
HISTORY = np.arange(100, 400) % 10_000


def gens(seeds) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def assert_rows_equal(batched: list[np.ndarray], separate: list[np.ndarray]) -> None:
    assert len(batched) == len(separate)
    for b, (x, y) in enumerate(zip(batched, separate, strict=True)):
        assert x.shape == y.shape, f"row {b}: {x.shape} != {y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=f"row {b}")


@pytest.fixture(scope="module")
def semantic_model():
    return tiny_model("semantic", seed=0)


@pytest.fixture(scope="module")
def coarse_model():
    return tiny_model("coarse", seed=1)


@pytest.fixture(scope="module")
def fine_model():
    return tiny_model("fine", seed=2)


# --- semantic --------------------------------------------------------------------------------

SEMANTIC_CASES = {
    # (history, temperature, min_eos_p, seeds): rows stop at different steps
    "2 rows": (None, 1.0, 1e-4, [1, 2]),
    "3 rows": (None, 1.0, 1e-4, [0, 2, 3]),
    "3 rows, history": (HISTORY, 1.0, 2e-4, [0, 1, 5]),
    "2 rows, history, top-k/top-p": (HISTORY, 0.7, 0.2, [7, 8]),
}


@pytest.mark.parametrize("case", SEMANTIC_CASES)
def test_semantic_batch_equals_separate_runs(semantic_model, case: str) -> None:
    history, temp, min_eos_p, seeds = SEMANTIC_CASES[case]
    extra = {"top_k": 200, "top_p": 0.95} if "top" in case else {}
    kw = dict(temperature=temp, min_eos_p=min_eos_p, max_duration_s=0.4, **extra)
    separate = [
        generate_semantic(semantic_model, TEXT, history, generator=g, **kw) for g in gens(seeds)
    ]
    steps = []
    batched = generate_semantic_batch(
        semantic_model, TEXT, history, generators=gens(seeds),
        on_step=lambda n, total: steps.append((n, total)), **kw,
    )
    assert_rows_equal(batched, separate)
    lengths = [len(s) for s in separate]
    if min_eos_p < 0.01:  # these cases are there to make rows part ways
        assert len(set(lengths)) == len(seeds), f"rows should stop apart: {lengths}"
    assert steps[-1] == (sum(lengths), len(seeds) * step_bound(768, 0.4))
    assert [n for n, _ in steps] == sorted({n for n, _ in steps})


def test_semantic_batch_greedy_and_one_row(semantic_model) -> None:
    single = generate_semantic(semantic_model, TEXT, None, temperature=0, max_duration_s=0.3,
                               generator=None)
    both = generate_semantic_batch(semantic_model, TEXT, None, temperature=0, max_duration_s=0.3,
                                   generators=[None, None])
    assert_rows_equal(both, [single, single])
    one = generate_semantic_batch(semantic_model, TEXT, HISTORY, temperature=0.7,
                                  max_duration_s=0.3, generators=gens([4]))
    expected = generate_semantic(semantic_model, TEXT, HISTORY, temperature=0.7,
                                 max_duration_s=0.3, generator=gens([4])[0])
    assert_rows_equal(one, [expected])


def test_semantic_batch_rejects_bad_input(semantic_model) -> None:
    with pytest.raises(BadInputError):
        generate_semantic_batch(semantic_model, TEXT, None, temperature=0.7, generators=[])
    with pytest.raises(BadInputError):
        generate_semantic_batch(semantic_model, TEXT, np.array([1, 10_000]), temperature=0.7,
                                generators=gens([1]))


def test_semantic_batch_cancel_mid_batch(semantic_model) -> None:
    cancel, seen = threading.Event(), []

    def on_step(n: int, total: int | None) -> None:
        seen.append(n)
        if len(seen) == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        generate_semantic_batch(semantic_model, TEXT, None, temperature=0.7, min_eos_p=None,
                                generators=gens([1, 2]), on_step=on_step, cancel=cancel)
    assert seen == [2, 4, 6]


def test_clone_cache_is_independent(semantic_model) -> None:
    cache = semantic_model.new_cache(1, max_len=8)
    cache.k.zero_()
    cache.length = 3
    copy = clone_cache(cache)
    copy.k.fill_(1.0)
    copy.length = 5
    assert cache.length == 3 and float(cache.k.abs().sum()) == 0.0


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("layout", ["row-major", "decode"])
def test_step_rows_equals_the_model_bit_for_bit(bias: bool, layout: str) -> None:
    cfg = replace(stage_configs("tiny")["coarse"], bias=bias)
    model = tiny_model("coarse", seed=5, cfg=cfg)
    if layout == "decode":
        use_decode_layout(model)
    rng = torch.Generator().manual_seed(0)
    caches = []
    with torch.inference_mode():
        for n in (300, 301, 17):
            cache = model.new_cache(1)
            model(torch.randint(0, 12_000, (1, n), generator=rng), cache)
            caches.append(cache)
        tokens = [torch.randint(0, 12_000, (1, 1), generator=rng) for _ in caches]
        vocab = slice(10_000, 12_048)
        for _ in range(3):
            mine = [clone_cache(c) for c in caches]
            got = step_rows(model, tokens, mine, vocab)
            want = [model(t, c, vocab=vocab) for t, c in zip(tokens, caches, strict=True)]
            for g, w, a, b in zip(got, want, mine, caches, strict=True):
                assert torch.equal(g, w)
                assert a.length == b.length and torch.equal(a.k[:, :, :, : a.length],
                                                            b.k[:, :, :, : b.length])
            tokens = [w[0, 0].argmax().view(1, 1) + 10_000 for w in want]


# --- coarse ----------------------------------------------------------------------------------


def coarse_history(n_sem: int, n_frames: int):
    rng = np.random.default_rng(n_sem)
    return rng.integers(0, 10_000, n_sem), rng.integers(0, 1024, (2, n_frames))


@pytest.mark.parametrize(
    ("lengths", "history"),
    [
        ((19, 40), None),
        ((7, 40, 23), None),
        ((30, 11, 25), (600, 902)),  # more history than a window keeps
        ((12, 0, 9), (7, 11)),  # a row with nothing to do; a tiny history
    ],
)
def test_coarse_batch_equals_separate_runs(coarse_model, lengths, history) -> None:
    rng = np.random.default_rng(sum(lengths))
    semantics = [rng.integers(0, 10_000, n) for n in lengths]
    hist = coarse_history(*history) if history else (None, None)
    kw = dict(temperature=0.7, window_steps=16, max_coarse_history=120)  # several windows
    seeds = list(range(10, 10 + len(lengths)))
    separate = [
        generate_coarse(coarse_model, s, *hist, generator=g, **kw)
        for s, g in zip(semantics, gens(seeds), strict=True)
    ]
    steps = []
    batched = generate_coarse_batch(coarse_model, semantics, *hist, generators=gens(seeds),
                                    on_step=lambda n, total: steps.append((n, total)), **kw)
    assert_rows_equal(batched, separate)
    total = sum(2 * c.shape[1] for c in separate)
    if total:
        assert steps[-1] == (total, total)


def test_coarse_batch_default_windows_greedy_and_top_k(coarse_model) -> None:
    rng = np.random.default_rng(3)
    semantics = [rng.integers(0, 10_000, n) for n in (50, 45)]
    hist = coarse_history(600, 902)
    for kw, seeds in (
        (dict(temperature=None), None),
        (dict(temperature=0.9, top_k=40, top_p=0.9), [1, 2]),
    ):
        row_gens = gens(seeds) if seeds else [None, None]
        separate = [
            generate_coarse(coarse_model, s, *hist, generator=g, **kw)
            for s, g in zip(semantics, row_gens, strict=True)
        ]
        batch_gens = gens(seeds) if seeds else [None, None]
        batched = generate_coarse_batch(coarse_model, semantics, *hist, generators=batch_gens,
                                        **kw)
        assert_rows_equal(batched, separate)


def test_coarse_batch_cancel_mid_window(coarse_model) -> None:
    cancel, seen = threading.Event(), []

    def on_step(n: int, total: int | None) -> None:
        seen.append((n, total))
        if n == 6:
            cancel.set()

    with pytest.raises(Cancelled):
        generate_coarse_batch(coarse_model, [np.arange(100), np.arange(50)], None, None,
                              temperature=0.7, generators=gens([0, 1]), on_step=on_step,
                              cancel=cancel)
    assert seen == [(n, 300 + 150) for n in (2, 4, 6)]
    with pytest.raises(BadInputError):
        generate_coarse_batch(coarse_model, [np.arange(3)], None, None, temperature=0.7,
                              generators=gens([0, 1]))


# --- fine ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_history", [0, 300])
def test_fine_batch_equals_separate_runs(fine_model, n_history: int) -> None:
    rng = np.random.default_rng(n_history)
    coarses = [rng.integers(0, 1024, (2, n)) for n in (10, 600, 1100)]
    hist = rng.integers(0, 1024, (8, n_history)) if n_history else None
    seeds = [3, 4, 5]
    separate = [
        generate_fine(fine_model, c, hist, temperature=0.5, generator=g)
        for c, g in zip(coarses, gens(seeds), strict=True)
    ]
    steps = []
    batched = generate_fine_batch(fine_model, coarses, hist, temperature=0.5,
                                  generators=gens(seeds),
                                  on_step=lambda n, total: steps.append((n, total)))
    assert_rows_equal(batched, separate)
    total = steps[-1][1]
    assert [n for n, _ in steps] == list(range(1, total + 1))
    assert all(t == total for _, t in steps)


def test_fine_batch_cancel(fine_model) -> None:
    cancel = threading.Event()
    calls = []

    def on_step(n: int, total: int | None) -> None:
        calls.append(n)
        if n == 8:
            cancel.set()

    coarses = [np.zeros((2, 100), dtype=np.int64)] * 2
    with pytest.raises(Cancelled):
        generate_fine_batch(fine_model, coarses, None, generators=gens([0, 1]), on_step=on_step,
                            cancel=cancel)
    assert calls == list(range(1, 9))  # 6 passes of row 0, then 2 of row 1


# --- Engine.generate_takes ---------------------------------------------------------------------

LINE = "Several takes of one line."
# min_eos_p near the tiny folder's EOS probability: these seeds stop at different lengths,
# one at the 1.3 s cap (65 tokens → several coarse windows).
TAKE_CASES = {
    "no voice": (None, [1, 2, 4]),
    "voice": ("v2/en_speaker_6", [1, 5, 7]),
}
TAKE_OPTIONS = GenerationOptions(text_temp=0.7, min_eos_p=1.4e-4, max_duration_s=1.3)


@pytest.fixture(scope="module")
def engine(tiny_models: Path) -> Engine:
    eng = Engine(EngineConfig(models=str(tiny_models), device="cpu"))
    eng.load()
    return eng


@pytest.mark.parametrize("case", TAKE_CASES)
def test_takes_equal_separate_generations(engine: Engine, case: str) -> None:
    voice, seeds = TAKE_CASES[case]
    events = []
    takes = engine.generate_takes(LINE, voice, TAKE_OPTIONS, seeds=seeds, on_event=events.append)
    singles = [
        engine.generate(LINE, voice, GenerationOptions(**{**TAKE_OPTIONS.__dict__, "seed": s}))
        for s in seeds
    ]
    assert [t.seed for t in takes] == seeds
    lengths = [len(t.semantic) for t in singles]
    assert len(set(lengths)) == len(seeds), f"takes should stop apart: {lengths}"
    for take, single in zip(takes, singles, strict=True):
        np.testing.assert_array_equal(take.semantic, single.semantic)
        np.testing.assert_array_equal(take.coarse, single.coarse)
        np.testing.assert_array_equal(take.fine, single.fine)
        np.testing.assert_array_equal(take.audio, single.audio)
        assert take.options == single.options and take.voice == single.voice
        assert take.timings["semantic"].tokens == len(take.semantic)
        assert take.timings["decode"].tokens == len(take.audio)
    stage_events = [e for e in events if isinstance(e, (StageStarted, StageProgress, StageFinished))]
    started = [e.stage for e in stage_events if isinstance(e, StageStarted)]
    assert started == ["semantic", "coarse", "fine", "decode"]  # once per stage, whole batch
    finished = {e.stage: e.tokens for e in stage_events if isinstance(e, StageFinished)}
    assert finished["semantic"] == sum(lengths)
    assert finished["coarse"] == sum(t.coarse.shape[1] for t in takes)
    assert finished["decode"] == sum(len(t.audio) for t in takes)
    for stage in started:
        progress = [e.step for e in stage_events if isinstance(e, StageProgress) and e.stage == stage]
        assert progress and progress == sorted(progress), stage


def test_takes_fine_greedy_two_takes(engine: Engine) -> None:
    opts = GenerationOptions(max_duration_s=0.3, fine_temp=0)
    takes = engine.generate_takes(LINE, None, opts, seeds=[21, 22])
    for take in takes:
        single = engine.generate(LINE, None, GenerationOptions(max_duration_s=0.3, fine_temp=0,
                                                               seed=take.seed))
        np.testing.assert_array_equal(take.fine, single.fine)


def test_takes_cancel_mid_batch_then_engine_still_works(engine: Engine) -> None:
    cancel, on_event, _ = canceller("coarse", 4)
    with pytest.raises(Cancelled):
        engine.generate_takes(LINE, None, GenerationOptions(max_duration_s=0.4), seeds=[1, 2],
                              on_event=on_event, cancel=cancel)
    again = engine.generate_takes(LINE, None, GenerationOptions(max_duration_s=0.2), seeds=[3])
    assert len(again) == 1 and len(again[0].audio) > 0


def test_takes_bad_seeds(engine: Engine) -> None:
    with pytest.raises(BadInputError):
        engine.generate_takes(LINE, seeds=[])
    with pytest.raises(BadInputError):
        engine.generate_takes(LINE, seeds=7)  # type: ignore[arg-type]
    with pytest.raises(BadInputError):
        engine.generate_takes(LINE, seeds=list(range(17)))


def test_measure_takes_per_minute(engine: Engine) -> None:
    rows = measure_takes_per_minute(engine, LINE, batches=(1, 2),
                                    options=GenerationOptions(max_duration_s=0.2))
    assert [r.batch for r in rows] == [1, 2]
    assert all(r.exact and r.takes_per_minute > 0 and r.speedup for r in rows)
    assert "takes/min" in format_takes_table(rows)


# --- CLI --------------------------------------------------------------------------------------


def test_say_takes_writes_numbered_wavs_and_json(tiny_models: Path, tmp_path: Path,
                                                 capsys) -> None:
    out = tmp_path / "take.wav"
    common = ["--models", str(tiny_models), "say", LINE, "--max-duration", "0.3"]
    rc = main([*common, "--takes", "3", "--seed", "40", "--out", str(out), "--json",
               "--save-voice", str(tmp_path / "v.npz")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["seed"] for t in report["takes"]] == [40, 41, 42]
    assert [Path(t["out"]).name for t in report["takes"]] == ["take-1.wav", "take-2.wav",
                                                              "take-3.wav"]
    assert not out.exists() and (tmp_path / "v-3.npz").exists()
    assert report["random_weights"] is True
    # take 2 is exactly `say --seed 41`
    single = tmp_path / "single.wav"
    assert main([*common, "--seed", "41", "--out", str(single)]) == 0
    assert (tmp_path / "take-2.wav").read_bytes() == single.read_bytes()
    with wave.open(str(tmp_path / "take-1.wav")) as w:
        assert w.getframerate() == 24_000
        assert w.getnframes() / 24_000 == pytest.approx(report["takes"][0]["audio_seconds"],
                                                         abs=1e-3)


@pytest.mark.parametrize("bad", ["0", "17", "x"])
def test_say_takes_rejects_bad_counts(bad: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["say", "hi", "--takes", bad, "--out", str(tmp_path / "a.wav")])
    assert exc.value.code == 2
    assert not list(tmp_path.iterdir())


def test_say_takes_with_file_is_refused(tiny_models: Path, tmp_path: Path, capsys) -> None:
    script = tmp_path / "s.txt"
    script.write_text("One line.", encoding="utf-8")
    rc = main(["--models", str(tiny_models), "say", "--file", str(script), "--takes", "2",
               "--out", str(tmp_path / "a.wav")])
    assert rc == 2 and "--takes" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.wav"))
