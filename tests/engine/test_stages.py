"""The three token stages and EnCodec decode on tiny real models.

Rules of the original Bark (EOS, min_eos_p, max duration, window and history
arithmetic) are checked directly, and the fast loops (KV cache, `rows=`) are
compared with slow transcriptions of the original loops.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from bark_engine.config import stage_configs
from bark_engine.errors import BadInputError, Cancelled
from bark_engine.loading.codec import decode, load_codec
from bark_engine.model.gpt import GPT
from bark_engine.stages import generate_coarse as reexported_coarse
from bark_engine.stages.coarse import generate_coarse, plan_coarse
from bark_engine.stages.fine import generate_fine
from bark_engine.stages.semantic import generate_semantic, semantic_context, step_bound
from tests.engine.reference_port import init_random, tiny_model
from tests.engine.slow_reference import slow_coarse, slow_fine

EOS = 10_000
TEXT = list(range(2000, 2040))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def semantic_model() -> GPT:
    return tiny_model("semantic", seed=0)


@pytest.fixture(scope="module")
def coarse_model() -> GPT:
    return tiny_model("coarse", seed=1)


@pytest.fixture(scope="module")
def fine_model():
    return tiny_model("fine", seed=2)


@torch.no_grad()
def constant_logits_model(logits: dict[int, float]) -> GPT:
    """A real GPT whose final LayerNorm outputs a fixed unit vector, so every
    position yields exactly these logits (others 0): EOS tests need no luck."""
    model = init_random(GPT(replace(stage_configs("tiny")["semantic"], bias=True)), seed=3)
    ln_f = model.transformer["ln_f"]
    ln_f.weight.zero_()
    ln_f.bias.zero_()
    ln_f.bias[0] = 1.0
    model.lm_head.weight.zero_()
    for token, value in logits.items():
        model.lm_head.weight[token, 0] = value
    return model


# --- semantic -----------------------------------------------------------------------


def test_semantic_context_layout() -> None:
    ids = semantic_context(list(range(300)), np.arange(400) % 10_000)
    assert ids.shape == (513,) and ids.dtype == np.int64
    np.testing.assert_array_equal(ids[:256], np.arange(256) + 10_048)  # cut to 256
    np.testing.assert_array_equal(ids[256:512], np.arange(144, 400))  # last 256 of history
    assert ids[512] == 129_599
    short = semantic_context([5, 6], np.array([7]))
    assert list(short[:3]) == [10_053, 10_054, 129_595] and (short[3:256] == 129_595).all()
    assert short[256] == 7 and (short[257:512] == 10_000).all()
    assert (semantic_context([], None)[256:512] == 10_000).all()


def test_semantic_sampling_range_progress_and_seed(semantic_model: GPT) -> None:
    steps: list[tuple[int, int | None]] = []

    def run(seed: int, on_step=None) -> np.ndarray:
        return generate_semantic(
            semantic_model, TEXT, None, temperature=0.7, min_eos_p=None, max_steps=60,
            generator=gen(seed), on_step=on_step,
        )

    out = run(1, lambda n, total: steps.append((n, total)))
    assert out.dtype == np.int64 and 0 < len(out) <= 60
    assert out.min() >= 0 and out.max() < 10_000
    assert steps == [(n, 60) for n in range(1, len(out) + 1)]
    np.testing.assert_array_equal(out, run(1))
    assert not np.array_equal(out, run(2))


def test_semantic_top_k_1_and_tiny_top_p_equal_greedy(semantic_model: GPT) -> None:
    greedy = generate_semantic(semantic_model, TEXT, None, temperature=0, max_steps=50, generator=None)
    for kwargs in ({"top_k": 1}, {"top_p": 1e-6}):
        sampled = generate_semantic(
            semantic_model, TEXT, None, temperature=0.9, max_steps=50, generator=gen(0), **kwargs
        )
        np.testing.assert_array_equal(sampled, greedy)


def test_semantic_dominant_eos_stops_at_once() -> None:
    model = constant_logits_model({EOS: 30.0})
    for temperature in (None, 0.7):
        assert len(generate_semantic(model, TEXT, None, temperature=temperature, generator=gen(0))) == 0
    # Without early stop EOS is not even a candidate: the cap is reached.
    out = generate_semantic(
        model, TEXT, None, temperature=0.7, allow_early_stop=False, max_steps=30, generator=gen(0)
    )
    assert len(out) == 30 and out.max() < 10_000


def test_greedy_stops_iff_argmax_is_eos() -> None:
    runner_up = constant_logits_model({EOS: 11.0, 42: 12.0})
    out = generate_semantic(runner_up, TEXT, None, temperature=None, max_steps=40, generator=None)
    np.testing.assert_array_equal(out, np.full(40, 42))  # p(EOS) ≈ 0.26 ≥ 0.2, yet greedy goes on
    top = constant_logits_model({EOS: 12.0, 42: 11.0})
    assert len(generate_semantic(top, TEXT, None, temperature=0, generator=None)) == 0


def test_drawn_eos_ends_without_being_appended() -> None:
    model = constant_logits_model({EOS: 9.0})  # p(EOS) ≈ 0.45 per step
    lengths = []
    for seed in range(12):
        out = generate_semantic(model, TEXT, None, temperature=1.0, min_eos_p=None, generator=gen(seed))
        assert EOS not in out
        lengths.append(len(out))
    assert max(lengths) < 40 and len(set(lengths)) > 2  # geometric stopping points


def test_min_eos_p_uses_the_temperature_scaled_probability_with_ge() -> None:
    model = constant_logits_model({EOS: 5.0})  # raw p(EOS) ≈ 0.0146; at T=0.5 ≈ 0.69
    kwargs = {"max_steps": 5, "generator": gen(0)}
    assert len(generate_semantic(model, TEXT, None, temperature=0.5, min_eos_p=0.2, **kwargs)) == 0
    assert len(generate_semantic(model, TEXT, None, temperature=1.0, min_eos_p=0.2, **kwargs)) > 0
    with torch.inference_mode():
        logits = model(torch.from_numpy(semantic_context(TEXT, None))[None], merge_context=True)
    p_eos = torch.softmax(logits[0, 0, :10_001].float(), -1)[EOS]  # what the loop computes
    at = float(p_eos)
    above = float(torch.nextafter(p_eos, torch.tensor(1.0)))
    assert len(generate_semantic(model, TEXT, None, temperature=1.0, min_eos_p=at, **kwargs)) == 0
    assert len(generate_semantic(model, TEXT, None, temperature=1.0, min_eos_p=above, **kwargs)) > 0


@pytest.mark.parametrize(("max_duration_s", "expected"), [(0.5, 25), (1.0, 50), (0.0, 1), (20.0, 768)])
def test_max_duration_stops_right_after_crossing(max_duration_s: float, expected: int) -> None:
    model = constant_logits_model({EOS: -50.0})
    totals = set()
    out = generate_semantic(
        model, TEXT, None, temperature=0.7, max_duration_s=max_duration_s, generator=gen(0),
        on_step=lambda n, total: totals.add(total),
    )
    assert len(out) == expected and totals == {expected}
    assert (expected - 1) / 49.9 <= max_duration_s < expected / 49.9 or expected == 768


def test_step_bound_accumulates_like_the_original() -> None:
    for limit in (0.3, 0.5, 1.0, 2.004, 7.7, 15.39):
        duration, n = 0.0, 0
        while n < 768:
            n += 1
            duration += 1 / 49.9
            if duration > limit:
                break
        assert step_bound(768, limit) == n
    assert step_bound(100, None) == 100 and step_bound(100, 60.0) == 100


def test_semantic_fills_the_whole_context_at_the_step_cap(semantic_model: GPT) -> None:
    out = generate_semantic(
        semantic_model, TEXT, None, temperature=1.0, allow_early_stop=False, generator=gen(3)
    )
    assert len(out) == 768  # 257 context positions + 767 fed tokens = 1024
    with pytest.raises(BadInputError):
        generate_semantic(semantic_model, TEXT, None, temperature=1.0, max_steps=769, generator=None)


def test_semantic_rejects_bad_history(semantic_model: GPT) -> None:
    with pytest.raises(BadInputError):
        generate_semantic(semantic_model, TEXT, np.array([1, 10_000]), temperature=None, generator=None)


def test_semantic_cancel_is_prompt(semantic_model: GPT) -> None:
    cancel, seen = threading.Event(), []

    def on_step(n: int, total: int | None) -> None:
        seen.append(n)
        if n == 5:
            cancel.set()

    with pytest.raises(Cancelled):
        generate_semantic(
            semantic_model, TEXT, None, temperature=0.7, min_eos_p=None, generator=gen(0),
            on_step=on_step, cancel=cancel,
        )
    assert seen == [1, 2, 3, 4, 5]


# --- coarse ------------------------------------------------------------------------------

HISTORIES = {
    "none": None,
    "short": (7, 11),  # odd semantic length, few frames
    "long": (600, 902),  # more than the 209 / 630 the window keeps
}


def coarse_history(kind: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    if HISTORIES[kind] is None:
        return None, None
    n_sem, n_frames = HISTORIES[kind]
    rng = np.random.default_rng(n_sem)
    return rng.integers(0, 10_000, n_sem), rng.integers(0, 1024, (2, n_frames))


@pytest.mark.parametrize(
    ("n_semantic", "history"),
    [(n, h) for n in (1, 19, 20, 21, 100) for h in HISTORIES] + [(300, "long")],
)
def test_coarse_matches_slow_original_loop(coarse_model: GPT, n_semantic: int, history: str) -> None:
    semantic = np.random.default_rng(n_semantic).integers(0, 10_000, n_semantic)
    hist = coarse_history(history)
    ours = reexported_coarse(coarse_model, semantic, *hist, temperature=None, generator=None)
    assert ours.shape == (2, int(np.floor(n_semantic * 75 / 49.9)))
    assert ours.dtype == np.int64 and ours.min() >= 0 and ours.max() < 1024
    np.testing.assert_array_equal(ours, slow_coarse(coarse_model, semantic, *hist, None))


def test_coarse_sampling_matches_slow_loop_and_seeds(coarse_model: GPT) -> None:
    semantic = np.random.default_rng(0).integers(0, 10_000, 50)
    hist = coarse_history("long")
    ours = generate_coarse(coarse_model, semantic, *hist, temperature=0.7, generator=gen(4))
    np.testing.assert_array_equal(ours, slow_coarse(coarse_model, semantic, *hist, 0.7, gen(4)))
    again = generate_coarse(coarse_model, semantic, *hist, temperature=0.7, generator=gen(4))
    other = generate_coarse(coarse_model, semantic, *hist, temperature=0.7, generator=gen(5))
    np.testing.assert_array_equal(ours, again)
    assert not np.array_equal(ours, other)
    top1 = generate_coarse(coarse_model, semantic, *hist, temperature=0.7, top_k=1, generator=gen(6))
    np.testing.assert_array_equal(
        top1, generate_coarse(coarse_model, semantic, *hist, temperature=0, generator=None)
    )


def test_coarse_history_plan() -> None:
    sem, coarse = coarse_history("long")
    plan = plan_coarse(np.zeros(10, dtype=np.int64), sem, coarse)
    assert plan.max_semantic_history == 209 and plan.base_semantic_idx == 209
    assert len(plan.coarse_history) == round(209 * 75 / 49.9 * 2) - 2  # 628 - 2
    np.testing.assert_array_equal(plan.semantic[:209], sem[-209:])
    # Frame-interleaved: ..., cb0, cb1 (+1024), with the last frame dropped by the trim.
    last = plan.coarse_history[-2:] - 10_000
    assert list(last) == [coarse[0, -2], coarse[1, -2] + 1024]
    assert plan.n_steps == 30
    short = plan_coarse(np.zeros(1, dtype=np.int64), *coarse_history("short"))
    assert short.base_semantic_idx == 6 and short.n_steps == 2  # 7 → even 6; 1 token → 2 steps
    with pytest.raises(BadInputError):
        generate_coarse(GPT(stage_configs("tiny")["coarse"]), np.zeros(3, dtype=np.int64),
                        sem, None, temperature=None, generator=None)


def test_coarse_empty_semantic_gives_empty_codes(coarse_model: GPT) -> None:
    out = generate_coarse(coarse_model, np.zeros(0, dtype=np.int64), None, None,
                          temperature=None, generator=None)
    assert out.shape == (2, 0)


def test_coarse_cancel_mid_window(coarse_model: GPT) -> None:
    cancel, seen = threading.Event(), []

    def on_step(n: int, total: int | None) -> None:
        seen.append((n, total))
        if n == 7:
            cancel.set()

    with pytest.raises(Cancelled):
        generate_coarse(coarse_model, np.arange(100), None, None, temperature=0.7,
                        generator=gen(0), on_step=on_step, cancel=cancel)
    assert seen == [(n, 300) for n in range(1, 8)]


# --- fine ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n_history", [0, 300, 800])
@pytest.mark.parametrize("n_frames", [10, 600, 1024, 1500, 2100])
def test_fine_matches_slow_original_loop(fine_model, n_frames: int, n_history: int) -> None:
    rng = np.random.default_rng(n_frames + n_history)
    coarse = rng.integers(0, 1024, (2, n_frames))
    hist = rng.integers(0, 1024, (8, n_history)) if n_history else None
    sampled = n_history == 300  # one sampled run per length, the rest greedy
    temperature = 0.5 if sampled else None
    ours = generate_fine(fine_model, coarse, hist, temperature=temperature,
                         generator=gen(n_frames) if sampled else None)
    assert ours.shape == (8, n_frames) and ours.dtype == np.int64
    assert ours.min() >= 0 and ours.max() < 1024
    np.testing.assert_array_equal(ours[:2], coarse)
    expected = slow_fine(fine_model, coarse, hist, temperature, gen(n_frames) if sampled else None)
    np.testing.assert_array_equal(ours, expected)


def test_fine_other_coarse_counts_and_temperature_one_samples(fine_model) -> None:
    coarse = np.random.default_rng(0).integers(0, 1024, (3, 200))
    greedy = generate_fine(fine_model, coarse, None, temperature=None, generator=None)
    np.testing.assert_array_equal(greedy[:3], coarse)
    np.testing.assert_array_equal(greedy, slow_fine(fine_model, coarse, None, None))
    sampled = generate_fine(fine_model, coarse, None, temperature=1.0, generator=gen(0))
    assert not np.array_equal(sampled, greedy)  # 1.0 samples, unlike the port
    one = generate_fine(fine_model, coarse[:1], None, temperature=0, generator=None)
    np.testing.assert_array_equal(one, slow_fine(fine_model, coarse[:1], None, None))
    with pytest.raises(BadInputError):
        generate_fine(fine_model, np.zeros((8, 5), dtype=np.int64), None, generator=None)


def test_fine_cancel_and_progress(fine_model) -> None:
    coarse = np.zeros((2, 1500), dtype=np.int64)
    seen = []
    generate_fine(fine_model, coarse, None, temperature=None, generator=None,
                  on_step=lambda n, total: seen.append((n, total)))
    assert seen == [(n, 12) for n in range(1, 13)]  # 2 windows × 6 codebooks
    cancel = threading.Event()
    calls = []

    def on_step(n: int, total: int | None) -> None:
        calls.append(n)
        cancel.set()

    with pytest.raises(Cancelled):
        generate_fine(fine_model, coarse, None, generator=None, on_step=on_step, cancel=cancel)
    assert calls == [1]


# --- EnCodec decode -------------------------------------------------------------------------


def test_decode_gives_the_same_samples_at_any_thread_count(tmp_path) -> None:
    """A cluster's one-thread workers and a two-thread local render must stitch the same
    WAV: the codec's sums may not depend on the thread count (oneDNN's did, by ~1e-7)."""
    from bark_engine.testing.random_models import write_random_codec

    codec = load_codec(write_random_codec(tmp_path / "codec", "tiny", 0))
    fine = np.random.default_rng(1).integers(0, 1024, (8, 75 * 12))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decode(codec, fine)
        torch.set_num_threads(2)
        two = decode(codec, fine)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
    assert torch._C._get_mkldnn_enabled()  # switched back on for everything else


def test_decode_matches_encodec_model_decode(tmp_path) -> None:
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(0)
    cfg = EncodecConfig(num_filters=4, hidden_size=16, codebook_dim=16, num_lstm_layers=1)
    assert cfg.codebook_size == 1024
    EncodecModel(cfg).save_pretrained(tmp_path)
    codec = load_codec(tmp_path)
    assert not codec.training and not any(p.requires_grad for p in codec.parameters())
    fine = np.random.default_rng(0).integers(0, 1024, (8, 40))
    audio = decode(codec, fine)
    codes = torch.from_numpy(fine)[None, None]  # (frames=1, B=1, 8, T)
    with torch.no_grad():
        usual = codec.decode(codes, [None]).audio_values[0, 0].numpy()  # oneDNN's convs
        torch._C._set_mkldnn_enabled(False)  # as `decode` runs them on the CPU
        try:
            expected = codec.decode(codes, [None]).audio_values[0, 0].numpy()
        finally:
            torch._C._set_mkldnn_enabled(True)
    assert audio.dtype == np.float32 and audio.shape == (40 * 320,)
    np.testing.assert_array_equal(audio, expected)
    np.testing.assert_allclose(audio, usual, atol=1e-6)
    assert np.abs(audio).max() > 0
    assert decode(codec, np.zeros((8, 0), dtype=np.int64)).shape == (0,)
    with pytest.raises(BadInputError):
        decode(codec, fine[:2])
