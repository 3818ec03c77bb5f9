"""Rows of a batch: each equals its run alone, token for token, whatever its neighbours.

For each stage and end to end, batches of B = 1, 2, 3, 4, 8 rows with mixed
texts, voices, temperatures and lengths (rows that stop at very different
steps) are compared with every row run on its own, with `array_equal`. The
CPU kernels must also give the same tokens at 1 and 2 threads; the
pure-torch fallback only promises batch invariance (it runs each row on its
own), and is checked for that. Coarse windows that continue from the cache
are compared with prefilling every window again.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_engine import BadInputError, Cancelled, EngineConfig, GenerationOptions, StageStarted
from bark_engine.engine import Engine, Request
from bark_engine.model.steps import Feed
from bark_engine.model.strategy import fine_runner_for, stepper_for
from bark_engine.stages.coarse import CoarseRow, coarse_rows
from bark_engine.stages.fine import FineRow, fine_rows
from bark_engine.stages.semantic import SemanticRow, semantic_rows
from tests.engine.cancel_check import canceller
from tests.engine.reference_port import laid_out, tiny_model

SIZES = [1, 2, 3, 4, 8]
PATHS = ["kernels", "fallback"]
rng = np.random.default_rng(0)  # the voices below; every row draws from its own seed
SEM_HISTORY = [None, rng.integers(0, 10_000, 300), rng.integers(0, 10_000, 40)]
COARSE_HISTORY = [None, (rng.integers(0, 10_000, 300), rng.integers(0, 1024, (2, 450))),
                  (rng.integers(0, 10_000, 40), rng.integers(0, 1024, (2, 60)))]
FINE_HISTORY = [None, rng.integers(0, 1024, (8, 600)), rng.integers(0, 1024, (8, 100))]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module", params=PATHS)
def models(request):
    """The three tiny models laid out for one CPU path, and that path's name."""
    path = request.param
    return path, {
        "semantic": laid_out(tiny_model("semantic", seed=0), path),
        "coarse": laid_out(tiny_model("coarse", seed=1), path),
        "fine": laid_out(tiny_model("fine", seed=2), path),
    }


def with_threads(n: int, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def fallback_only_small(path: str, B: int) -> None:
    """The fallback replays each row on its own: a few batch sizes show that (time)."""
    if path == "fallback" and B > 4:
        pytest.skip("the pure-torch fallback is checked up to B = 4")


def assert_rows_equal(batched: list[np.ndarray], alone: list[np.ndarray]) -> None:
    assert len(batched) == len(alone)
    for b, (x, y) in enumerate(zip(batched, alone, strict=True)):
        assert x.shape == y.shape, f"row {b}: {x.shape} != {y.shape}"
        np.testing.assert_array_equal(x, y, err_msg=f"row {b}")


# --- semantic ----------------------------------------------------------------------------


def semantic_specs(n: int, offset: int = 0) -> list[dict]:
    """Rows with different texts, voices and sampling; min_eos_p near the tiny
    model's EOS probability and different caps make them stop far apart."""
    specs = []
    for i in range(offset, offset + n):
        specs.append(dict(
            text_ids=list(range(2000 + 7 * i, 2010 + 9 * i)),
            history=SEM_HISTORY[i % 3],
            temperature=[1.0, 0.7, 0][i % 3],
            top_k=200 if i % 4 == 3 else None,
            min_eos_p=[1e-4, 2e-4, None][i % 3],
            max_duration_s=[0.3, 1.2, 0.6][i % 3],
            seed=100 + i,
        ))
    return specs


def semantic_row(spec: dict) -> SemanticRow:
    spec = dict(spec)
    return SemanticRow(**{k: v for k, v in spec.items() if k != "seed"},
                       generator=gen(spec["seed"]))


def run_semantic(model, specs: list[dict], **kw) -> list[np.ndarray]:
    return semantic_rows(stepper_for(model), [semantic_row(s) for s in specs], **kw)


@pytest.mark.parametrize("B", SIZES)
def test_semantic_rows_equal_their_runs_alone(models, B: int) -> None:
    _, m = models
    specs = semantic_specs(B)
    alone = [run_semantic(m["semantic"], [s])[0] for s in specs]
    steps: list[tuple[int, int]] = []
    batched = run_semantic(m["semantic"], specs, on_step=lambda n, t: steps.append((n, t)))
    assert_rows_equal(batched, alone)
    lengths = [len(a) for a in alone]
    if B >= 3:
        assert max(lengths) >= 3 * min(lengths), f"rows should stop far apart: {lengths}"
    bound = sum(semantic_row(s).bound for s in specs)
    assert steps[-1] == (sum(lengths), bound)
    assert [n for n, _ in steps] == sorted({n for n, _ in steps})


def test_a_semantic_row_does_not_depend_on_its_neighbours(models) -> None:
    _, m = models
    mine = semantic_specs(1, offset=4)
    first = run_semantic(m["semantic"], mine + semantic_specs(3))[0]
    second = run_semantic(m["semantic"], semantic_specs(5, offset=7) + mine)[-1]
    np.testing.assert_array_equal(first, second)


# --- coarse ------------------------------------------------------------------------------


def coarse_specs(n: int, offset: int = 0) -> list[dict]:
    specs = []
    for i in range(offset, offset + n):
        hist = COARSE_HISTORY[i % 3]
        specs.append(dict(
            semantic=np.random.default_rng(i).integers(0, 10_000, 15 + 37 * (i % 5)),
            history_semantic=None if hist is None else hist[0],
            history_coarse=None if hist is None else hist[1],
            temperature=[0.7, 0, 1.0][i % 3],
            top_p=0.9 if i % 4 == 1 else None,
            seed=200 + i,
        ))
    return specs


def coarse_row(spec: dict) -> CoarseRow:
    return CoarseRow(**{k: v for k, v in spec.items() if k != "seed"}, generator=gen(spec["seed"]))


def run_coarse(model, specs: list[dict], **kw) -> list[np.ndarray]:
    return coarse_rows(stepper_for(model), [coarse_row(s) for s in specs], **kw)


@pytest.mark.parametrize("B", SIZES)
def test_coarse_rows_equal_their_runs_alone(models, B: int) -> None:
    path, m = models
    fallback_only_small(path, B)
    specs = coarse_specs(B)
    alone = [run_coarse(m["coarse"], [s])[0] for s in specs]
    batched = run_coarse(m["coarse"], specs)
    assert_rows_equal(batched, alone)
    if B >= 3:
        assert len({a.shape[1] for a in alone}) >= 3  # rows leave the batch at different steps


def test_a_coarse_row_does_not_depend_on_its_neighbours(models) -> None:
    _, m = models
    mine = coarse_specs(1, offset=4)
    first = run_coarse(m["coarse"], mine + coarse_specs(2))[0]
    second = run_coarse(m["coarse"], coarse_specs(3, offset=6) + mine)[-1]
    np.testing.assert_array_equal(first, second)


# --- fine --------------------------------------------------------------------------------


def fine_specs(n: int, offset: int = 0) -> list[dict]:
    return [dict(coarse=np.random.default_rng(i).integers(0, 1024, (2, 120 + 410 * (i % 4))),
                 history_fine=FINE_HISTORY[i % 3], temperature=[0.5, None, 1.0][i % 3],
                 seed=300 + i)
            for i in range(offset, offset + n)]


def run_fine(model, specs: list[dict], **kw) -> list[np.ndarray]:
    rows = [FineRow(s["coarse"], s["history_fine"], s["temperature"], gen(s["seed"]))
            for s in specs]
    return fine_rows(fine_runner_for(model), rows, **kw)


@pytest.mark.parametrize("B", [1, 3, 4])
def test_fine_rows_equal_their_runs_alone(models, B: int) -> None:
    _, m = models
    specs = fine_specs(B)
    alone = [run_fine(m["fine"], [s])[0] for s in specs]
    steps: list[int] = []
    assert_rows_equal(run_fine(m["fine"], specs, on_step=lambda n, t: steps.append(n)), alone)
    assert steps == list(range(1, len(steps) + 1)) or steps == sorted(set(steps))


# --- threads -----------------------------------------------------------------------------


def test_kernel_rows_do_not_depend_on_the_thread_count(models) -> None:
    path, m = models
    if path != "kernels":
        pytest.skip("the pure-torch fallback promises batch invariance only")

    def all_stages():
        return (run_semantic(m["semantic"], semantic_specs(4)),
                run_coarse(m["coarse"], coarse_specs(4)),
                run_fine(m["fine"], fine_specs(2)))

    one, two = with_threads(1, all_stages), with_threads(2, all_stages)
    for a, b in zip(one, two, strict=True):
        assert_rows_equal(a, b)


# --- coarse windows continued from the cache ---------------------------------------------


class CountingStepper:
    """A stepper that counts the windows it is asked to prefill."""

    def __init__(self, inner) -> None:
        self.inner, self.model, self.prefills = inner, inner.model, 0

    def new_cache(self, slots):
        return self.inner.new_cache(slots)

    def advance(self, cache, feeds, vocab):
        self.prefills += sum(f.fresh for f in feeds)
        return self.inner.advance(cache, feeds, vocab)


@pytest.mark.parametrize("voice", ["none", "short", "full"])
def test_coarse_windows_continue_only_where_their_start_does_not_move(models, voice) -> None:
    path, m = models
    if path == "fallback" and voice == "short":
        pytest.skip("the fallback's windows are checked without a voice and with a full one")
    history = {"none": (None, None), "short": COARSE_HISTORY[2], "full": COARSE_HISTORY[1]}[voice]
    semantic = np.random.default_rng(5).integers(0, 10_000, 240)  # 720 coarse tokens: 12 windows
    counts, outs = {}, {}
    for cont in (True, False):
        stepper = CountingStepper(stepper_for(m["coarse"]))
        row = CoarseRow(semantic, *history, temperature=0)
        outs[cont] = coarse_rows(stepper, [row], continue_windows=cont)[0]
        counts[cont] = stepper.prefills
    assert counts[False] == 12
    # No voice: the coarse history slides from the window at step 660 (past 630
    # tokens); the short voice (115 coarse tokens of history, 39 semantic) from
    # step 540; a full voice (630 tokens of history) from the start.
    assert counts[True] == {"none": 2, "short": 4, "full": 12}[voice], counts
    np.testing.assert_array_equal(outs[True], outs[False])  # greedy: the same tokens
    if path == "kernels":  # every op row-wise in a fixed order: sampled tokens too
        sampled = [coarse_rows(stepper_for(m["coarse"]),
                               [CoarseRow(semantic, *history, temperature=0.9, generator=gen(9))],
                               continue_windows=cont)[0] for cont in (True, False)]
        np.testing.assert_array_equal(*sampled)


def test_a_continued_window_has_the_logits_of_a_prefilled_one(models) -> None:
    path, m = models
    stepper = stepper_for(m["coarse"])
    ids = torch.randint(0, 12_096, (420,), generator=gen(4))
    cache = stepper.new_cache(2)
    stepper.advance(cache, [Feed(1, ids[:357], fresh=True)], None)
    for t in range(357, 416):
        stepper.advance(cache, [Feed(1, ids[t : t + 1])], None)
    continued = stepper.advance(cache, [Feed(1, ids[416:420])], None)  # several at once
    fresh = stepper.advance(cache, [Feed(0, ids, fresh=True)], None)
    if path == "kernels":
        assert torch.equal(continued, fresh)
    else:
        torch.testing.assert_close(continued, fresh, rtol=1e-4, atol=1e-4)


# --- the engine --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=PATHS)
def engine(request, tiny_models: Path) -> Engine:
    eng = Engine(EngineConfig(models=str(tiny_models), device="cpu",
                              kernels=request.param == "kernels"))
    eng.load()
    return eng


TEXTS = ["One.", "A second, longer line for the batch.", "Third line here.",
         "Four.", "Five is a longer sentence with more words in it.", "Six.", "Seven.", "Eight!"]
VOICES = [None, "v2/en_speaker_6", "v2/de_speaker_3", None]


def requests(n: int) -> list[Request]:
    return [Request(TEXTS[i], VOICES[i % 4],
                    GenerationOptions(seed=40 + i, min_eos_p=1.5e-4,
                                      max_duration_s=[0.4, 1.0, 0.6][i % 3],
                                      text_temp=[0.7, 1.0][i % 2], fine_temp=[0.5, 0][i % 2]),
                    segment=10 + i)
            for i in range(n)]


@pytest.mark.parametrize("B", [1, 3, 8])
def test_engine_batch_equals_each_request_alone(engine: Engine, B: int) -> None:
    fallback_only_small("kernels" if engine.uses_kernels else "fallback", B)
    reqs = requests(B)
    events: list = []
    batch = engine.generate_batch(reqs, on_event=events.append)
    for req, take in zip(reqs, batch, strict=True):
        alone = engine.generate(req.text, req.voice, req.options, segment=req.segment)
        for name in ("semantic", "coarse", "fine", "audio"):
            np.testing.assert_array_equal(getattr(take, name), getattr(alone, name), err_msg=name)
        assert (take.text, take.voice, take.seed, take.options) == (
            alone.text, alone.voice, alone.seed, alone.options)
        assert take.timings["coarse"].tokens == take.coarse.shape[1]
    started = [e for e in events if isinstance(e, StageStarted)]
    assert [e.stage for e in started] == ["semantic", "coarse", "fine", "decode"]
    expected = tuple(r.segment for r in reqs) if B > 1 else ()
    assert all(e.segment == 10 and e.segments == expected for e in started)


def test_engine_batch_cancelled_midway_leaves_the_engine_usable(engine: Engine) -> None:
    cancel, on_event, _ = canceller("coarse", 5)
    with pytest.raises(Cancelled):
        engine.generate_batch(requests(3), on_event=on_event, cancel=cancel)
    reqs = requests(2)
    again = engine.generate_batch(reqs)
    alone = engine.generate(reqs[1].text, reqs[1].voice, reqs[1].options)
    np.testing.assert_array_equal(again[1].fine, alone.fine)


def test_engine_batch_refuses_bad_input_before_any_stage(engine: Engine) -> None:
    events: list = []
    with pytest.raises(BadInputError):
        engine.generate_batch([])
    with pytest.raises(BadInputError):
        engine.generate_batch(requests(1) * 17)
    bad = [*requests(2), Request("   ")]
    with pytest.raises(BadInputError, match="empty"):
        engine.generate_batch(bad, on_event=events.append)
    assert not [e for e in events if isinstance(e, StageStarted)]


def test_engine_batch_draws_a_seed_for_a_request_without_one(engine: Engine) -> None:
    reqs = [replace(requests(1)[0], options=GenerationOptions(max_duration_s=0.3)), *requests(1)]
    takes = engine.generate_batch(reqs)
    assert takes[0].seed is not None and takes[0].options.seed == takes[0].seed
    again = engine.generate(reqs[0].text, reqs[0].voice,
                            replace(reqs[0].options, seed=takes[0].seed))
    np.testing.assert_array_equal(again.semantic, takes[0].semantic)


def test_engines_on_one_thread_run_one_batch_at_a_time(engine: Engine) -> None:
    """Two threads sharing an engine (the studio's queue and a regenerate) get the
    same takes as one after the other."""
    reqs = requests(2)
    out: dict[int, list] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, engine.generate_batch(
        [reqs[i]]))) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(out[i][0].fine, engine.generate_batch([reqs[i]])[0].fine)
