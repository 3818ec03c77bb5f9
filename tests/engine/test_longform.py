"""Long scripts on tiny random models: stitching lengths, resuming, chaining."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bark_engine import Cancelled, EngineConfig, GenerationOptions, StageStarted
from bark_engine.engine import Engine
from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.render import RenderOptions, ScriptRenderer, chains
from bark_engine.scripts.script import ScriptOptions

SENTENCES = [
    "The lighthouse keeper climbed the stairs every evening at dusk.",
    "He polished the great lens until it shone like a second moon.",
    "Ships passed far out at sea, and none of them ever stopped.",
    "One winter night a small boat drifted toward the rocks [gasps].",
    "He ran down the stairs with a lantern, shouting into the wind.",
]
OPTS = GenerationOptions(max_duration_s=0.15, fine_temp=0)  # a few greedy-fine tokens: fast


def five_minute_script() -> str:
    """About five minutes of speech by the segmenter's estimate, in paragraphs."""
    paragraphs = []
    for i in range(24):
        paragraphs.append(" ".join(SENTENCES[(i + k) % 5] for k in range(3)))
    return "\n\n".join(paragraphs)


@pytest.fixture(scope="module")
def engine(tiny_models: Path) -> Engine:
    eng = Engine(EngineConfig(models=str(tiny_models), device="cpu", dtype="float32"))
    eng.load()
    return eng


def test_five_minute_script_length_is_segments_plus_silences(engine: Engine) -> None:
    script = parse_script(five_minute_script(), ScriptOptions(), engine.count_tokens)
    assert script.estimated_seconds >= 240
    seen = []
    result = ScriptRenderer(engine, RenderOptions(generation=OPTS, seed=9)).render(
        script, on_segment=seen.append
    )
    assert [t.segment.index for t in seen] == list(range(len(script.segments)))
    silences = sum(round(s.pause_before_s * 24_000) for s in script.segments)
    assert len(result.audio) == sum(len(t.audio) for t in result.segments) + silences
    assert result.first_audio_s <= result.total_s


def test_interrupted_render_resumes_with_identical_audio(engine: Engine, tmp_path: Path) -> None:
    text = "\n\n".join(SENTENCES)
    script = parse_script(text, ScriptOptions(), engine.count_tokens)
    assert len(script.segments) == 5
    parts = tmp_path / "parts"
    opts = RenderOptions(generation=OPTS, seed=3, parts_dir=parts, default_voice="v2/en_speaker_6",
                         batch=2, first_batch=None)
    cancel = threading.Event()

    def stop_after_two(take) -> None:
        if take.segment.index == 1:
            cancel.set()

    with pytest.raises(Cancelled):  # after the first batch of two
        ScriptRenderer(engine, opts).render(script, on_segment=stop_after_two, cancel=cancel)
    assert len(list(parts.glob("segment-*.npz"))) == 2
    resumed = ScriptRenderer(engine, opts).render(script)
    assert [t.reused for t in resumed.segments] == [True, True, False, False, False]
    fresh = ScriptRenderer(engine, RenderOptions(generation=OPTS, seed=3,
                                                 default_voice="v2/en_speaker_6")).render(script)
    assert np.array_equal(resumed.audio, fresh.audio)


def test_changed_segment_is_regenerated_alone(engine: Engine, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    opts = RenderOptions(generation=OPTS, seed=1, parts_dir=parts)
    first = parse_script("\n\n".join(SENTENCES[:3]), ScriptOptions(), engine.count_tokens)
    ScriptRenderer(engine, opts).render(first)
    edited = parse_script("\n\n".join([SENTENCES[0], "A brand new middle line.", SENTENCES[2]]),
                          ScriptOptions(), engine.count_tokens)
    again = ScriptRenderer(engine, opts).render(edited)
    assert [t.reused for t in again.segments] == [True, False, True]


def test_kept_segments_are_not_reused_at_another_precision(
    engine: Engine, tiny_models: Path, tmp_path: Path
) -> None:
    """bf16 gives other tokens than float32: a bf16 render re-makes the float32
    render's kept segments, and reuses its own."""
    parts = tmp_path / "parts"
    opts = RenderOptions(generation=OPTS, seed=4, parts_dir=parts)
    script = parse_script("\n\n".join(SENTENCES[:2]), ScriptOptions(), engine.count_tokens)
    ScriptRenderer(engine, opts).render(script)
    half = Engine(EngineConfig(models=str(tiny_models), device="cpu", dtype="bfloat16"))
    assert half.model_id.startswith(f"{engine.model_id} bfloat16 on cpu")
    assert [t.reused for t in ScriptRenderer(half, opts).render(script).segments] == [False] * 2
    assert [t.reused for t in ScriptRenderer(half, opts).render(script).segments] == [True] * 2


def test_chain_mode_uses_previous_segment_as_history(engine: Engine) -> None:
    script = parse_script("\n\n".join(SENTENCES[:3]), ScriptOptions(), engine.count_tokens)
    fixed = ScriptRenderer(engine, RenderOptions(generation=OPTS, seed=2,
                                                 default_voice="v2/en_speaker_6")).render(script)
    chained = ScriptRenderer(engine, RenderOptions(generation=OPTS, seed=2, continuity="chain",
                                                   default_voice="v2/en_speaker_6")).render(script)
    # the first segment has the same history (the preset) either way
    assert np.array_equal(fixed.segments[0].fine, chained.segments[0].fine)
    assert any(not np.array_equal(a.coarse, b.coarse)
               for a, b in zip(fixed.segments[1:], chained.segments[1:], strict=True))


def test_dialogue_speakers_get_their_voices(engine: Engine) -> None:
    text = "Alice: Hello there.\nBob: Hi Alice [laughs].\n[announcer]\nThe end."
    script = parse_script(text, ScriptOptions(speakers={"alice": "v2/en_speaker_9",
                                                        "Bob": "v2/en_speaker_6"}))
    result = ScriptRenderer(engine, RenderOptions(generation=OPTS, seed=5)).render(script)
    assert [t.voice for t in result.segments] == ["v2/en_speaker_9", "v2/en_speaker_6",
                                                  "announcer"]
    assert [s.pause_before_s for s in script.segments][1:] == [0.5, 0.5]


def test_bad_segment_refused_before_any_generation(engine: Engine) -> None:
    script = parse_script("Fine line.\n\n[narrator]\nNo such voice.", ScriptOptions())
    calls = []
    with pytest.raises(Exception, match="unknown voice"):
        ScriptRenderer(engine, RenderOptions(generation=OPTS)).render(
            script, on_segment=calls.append)
    assert calls == []


@pytest.mark.parametrize("batch", [2, 3, 8])
def test_a_batched_render_equals_one_segment_at_a_time(engine: Engine, batch: int) -> None:
    """Fixed voices: segments are independent rows; the audio is the same bits, the
    segments land in script order, and segment 1 comes with the first batch."""
    script = parse_script("\n\n".join(SENTENCES), ScriptOptions(), engine.count_tokens)
    opts = RenderOptions(generation=OPTS, seed=6, default_voice="v2/en_speaker_6")
    one = ScriptRenderer(engine, replace(opts, batch=1)).render(script)
    seen, events = [], []
    many = ScriptRenderer(engine, replace(opts, batch=batch)).render(
        script, on_segment=seen.append, on_event=events.append)
    assert many.batch == batch and one.batch == 1
    assert np.array_equal(many.audio, one.audio)
    assert [t.segment.index for t in seen] == list(range(5))
    batches = [e.segments or (e.segment,) for e in events
               if isinstance(e, StageStarted) and e.stage == "semantic"]
    assert batches[0] == (0,)  # segment 1 alone first: its audio as soon as at batch 1
    assert batches[1] == tuple(range(1, 1 + min(batch, 4)))
    assert many.first_audio_s <= many.total_s


def test_chain_groups_batch_across_reset_boundaries(engine: Engine) -> None:
    """With --reset-every 2 the chains (0 1)(2 3)(4) are independent: their k-th
    segments share a batch, and every segment equals the one-at-a-time render."""
    script = parse_script("\n\n".join(SENTENCES), ScriptOptions(), engine.count_tokens)
    opts = RenderOptions(generation=OPTS, seed=8, default_voice="v2/en_speaker_6",
                         continuity="chain", reset_every=2)
    assert [[s.index for s in g] for g in chains(script, opts)] == [[0, 1], [2, 3], [4]]
    events = []
    one = ScriptRenderer(engine, replace(opts, batch=1)).render(script)
    many = ScriptRenderer(engine, replace(opts, batch=3)).render(script, on_event=events.append)
    for a, b in zip(one.segments, many.segments, strict=True):
        assert np.array_equal(a.fine, b.fine) and a.chained == b.chained
    assert [t.chained for t in many.segments] == [False, True, False, True, False]
    batches = [e.segments or (e.segment,) for e in events
               if isinstance(e, StageStarted) and e.stage == "semantic"]
    assert batches == [(0,), (1, 2, 4), (3,)]  # segment 1 alone first, then the chains
    together = RenderOptions(**{**opts.__dict__, "batch": 3, "first_batch": None})
    events.clear()
    again = ScriptRenderer(engine, together).render(script, on_event=events.append)
    assert [e.segments for e in events
            if isinstance(e, StageStarted) and e.stage == "semantic"] == [(0, 2, 4), (1, 3)]
    assert np.array_equal(again.audio, many.audio)


def test_chain_groups_end_where_the_voice_changes(engine: Engine) -> None:
    text = "Alice: One.\n\nAlice: Two.\nBob: Three.\nAlice: Four."
    script = parse_script(text, ScriptOptions(speakers={"Alice": "v2/en_speaker_9",
                                                        "Bob": "v2/en_speaker_6"}))
    opts = RenderOptions(generation=OPTS, continuity="chain")
    assert [[s.index for s in g] for g in chains(script, opts)] == [[0, 1], [2], [3]]
    fixed = replace(opts, continuity="fixed")
    assert [[s.index for s in g] for g in chains(script, fixed)] == [[0], [1], [2], [3]]
