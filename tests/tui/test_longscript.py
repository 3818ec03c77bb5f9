"""Long scripts without the app: when a script needs segments, voices, previews, purging."""

from __future__ import annotations

import dataclasses

import numpy as np

from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.script import ScriptOptions
from bark_engine.voices.catalog import UserVoices, VoicePrompt
from bark_tui.core.script_text import (
    build_script,
    needs_script,
    resolve_segments,
    written_structure,
)
from bark_tui.core.settings import Settings
from bark_tui.history import HistoryStore, NewTake
from bark_tui.studio.jobs.script import save_segment, stitch
from bark_tui.widgets.segment_list import describe_script_segments

V = "v2/en_speaker_6"


def script(text: str, **settings):
    return build_script(text, Settings(**settings), V)


def test_a_plain_paragraph_is_one_take_unless_long_scripts_are_on():
    long_text = "This sentence is long enough to matter here. " * 12
    s = script(long_text)
    assert len(s.segments) > 1 and not written_structure(s, V)
    assert not needs_script(s, V, split_long=False)
    assert needs_script(s, V, split_long=True)
    assert "turn on Long scripts" in describe_script_segments(s, V, split_long=False)
    assert not needs_script(script("Hello there."), V)
    assert describe_script_segments(script("Hello there."), V) == ""


def test_structure_always_makes_a_script():
    for text in ("Ann: Hi.", "One.\n\nTwo.", "One. [pause 2s] Two.", "[v2/en_speaker_0]\nHi."):
        assert needs_script(script(text), V, split_long=False), text


def test_speaker_map_and_my_voices_resolve(tmp_path):
    voices = UserVoices(tmp_path / "voices")
    prompt = VoicePrompt.from_arrays(np.zeros(10, np.int64), np.zeros((2, 15), np.int64),
                                     np.zeros((8, 15), np.int64), "narrator")
    voices.add("narrator", prompt)
    s = build_script("Ann: Hi.\nBob: Yo.\n[nobody]\nText.", Settings(speakers={
        "ann": "narrator", "Bob": "v2/en_speaker_0"}), V, voices)
    resolved, unknown = resolve_segments(s, voices)
    assert [seg.voice for seg in resolved.segments] == [
        str(voices.path_for("narrator")), "v2/en_speaker_0", "nobody"]
    assert unknown == ["nobody"]
    text = describe_script_segments(s, V)
    assert "Ann → narrator" in text and "nobody" in text


def test_purge_removes_a_script_takes_segment_files(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3", tmp_path / "takes")
    parts = tmp_path / "takes" / "script-x.parts"
    parts.mkdir(parents=True)
    s = parse_script("One.\n\nTwo.")
    records = []
    for seg in s.segments:
        audio = np.full(240, 0.1 * (seg.index + 1), np.float32)
        name = save_segment(parts, seg.index, 5 + seg.index, np.zeros(3), np.zeros((2, 3)),
                            np.zeros((8, 3)), audio)
        records.append({"index": seg.index, "file": name, "parts": parts.name,
                        "pause_before_s": seg.pause_before_s})
    audio = stitch(parts, records)
    assert len(audio) == 480 + round(0.75 * 24_000)
    take = store.add_take(NewTake("One.\n\nTwo.", None, 5, segments=records), audio, None)
    store.delete(take.id)
    assert store.purge_deleted() == 1
    assert not parts.exists()
    store.close()


def test_long_script_settings_round_trip_and_bad_values_fall_back(tmp_path):
    import json

    from bark_tui.core.settings import load_settings, save_settings, validate_settings

    path = tmp_path / "settings.json"
    save_settings(Settings(continuity="chain", reset_every=3, play_while_generating=False), path)
    loaded, warnings = load_settings(path)
    assert (loaded.continuity, loaded.reset_every, loaded.play_while_generating) == (
        "chain", 3, False) and warnings == []
    path.write_text(json.dumps({"continuity": "drift", "reset_every": -2,
                                "play_while_generating": "yes"}))
    loaded, warnings = load_settings(path)
    assert (loaded.continuity, loaded.reset_every, loaded.play_while_generating) == (
        "fixed", 0, True)
    assert len(warnings) == 3
    assert validate_settings(Settings(continuity="drift"))


def test_chain_mode_records_and_remakes_from_the_previous_segment(tmp_path, tiny_models):
    from bark_engine.options import EngineConfig, GenerationOptions
    from bark_tui.studio.jobs.host import EngineHost
    from bark_tui.studio.jobs.script import (
        ScriptJob,
        load_segment,
        parts_dir_for,
        regenerate_segment,
        run_script_job,
    )
    from bark_tui.studio.messages import JobEnded, SegmentReady

    store = HistoryStore(tmp_path / "h.sqlite3", tmp_path / "takes")
    host = EngineHost(EngineConfig(models=str(tiny_models), threads=1))
    s = parse_script("One.\n\nTwo.\n\nThree.", ScriptOptions(default_voice=V))
    options = GenerationOptions(fine_temp=0.0, max_duration_s=0.15)
    job = ScriptJob("One.\n\nTwo.\n\nThree.", V, options, id=1, script=s, seed=11,
                    continuity="chain", reset_every=2)
    posted: list = []
    run_script_job(host, job, posted.append, store)
    ended = [m for m in posted if isinstance(m, JobEnded)]
    assert ended and ended[0].outcome.take is not None, ended[0].outcome.error
    assert len([m for m in posted if isinstance(m, SegmentReady)]) == 3
    take = ended[0].outcome.take
    # segment 2 continued segment 1; segment 3 is reset to the preset (every 2 segments)
    assert [r["history"] for r in take.segments] == ["voice", "chain", "voice"]
    folder = parts_dir_for(take)
    first = (folder / take.segments[0]["file"]).read_bytes()
    third = (folder / take.segments[2]["file"]).read_bytes()
    new = regenerate_segment(host.engine, store, take, 1, seed=500)
    assert new.segments[1]["seed"] == 500
    assert (folder / new.segments[0]["file"]).read_bytes() == first
    assert (folder / new.segments[2]["file"]).read_bytes() == third
    # the re-made segment is what chain mode makes from segment 1's tokens with that seed
    prev = load_segment(folder / take.segments[0]["file"])
    gen = host.engine.generate("Two.", voice=VoicePrompt(
        semantic=prev["semantic_prompt"], coarse=prev["coarse_prompt"],
        fine=prev["fine_prompt"]), options=dataclasses.replace(
        take.generation_options(), seed=500))
    np.testing.assert_array_equal(load_segment(folder / new.segments[1]["file"])["audio"],
                                  gen.audio)
    store.close()


def test_resume_fingerprint_find_and_prune(tmp_path):
    from bark_engine.options import GenerationOptions
    from bark_tui.core import script_resume
    from bark_tui.studio.jobs.script import ScriptJob

    def job(text="One.\n\nTwo.", seed=5, **fields):
        return ScriptJob(text, V, GenerationOptions(seed=seed), script=script(text), seed=seed,
                         **fields)

    model = ("/models", "small", "cpu")
    key = script_resume.fingerprint(job(), model)
    assert script_resume.fingerprint(job(seed=6), model) == key  # the seed is matched apart
    for other in (job("One.\n\nThree."), job(continuity="chain"), job(seeds={1: 99}),
                  dataclasses.replace(job(), options=GenerationOptions(text_temp=0.6))):
        assert script_resume.fingerprint(other, model) != key
    assert script_resume.fingerprint(job(), ("/models", "large", "cpu")) != key
    assert script_resume.fingerprint(job(), ("/models", "small", "cpu", "bfloat16")) != key
    # four cancelled renders: the newest three are kept, found by key (and seed when fixed)
    for n in range(4):
        parts = tmp_path / f"script-{n}.parts"
        parts.mkdir()
        (parts / "segment-0000-abc.npz").write_bytes(b"finished segment")
        script_resume.keep(parts, key if n == 3 else f"other-{n}", 5 + n, 1, 2)
        assert (parts / "segment-0000-abc.npz").exists()  # what the next render reuses
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "script-1.parts", "script-2.parts", "script-3.parts"]
    found = script_resume.find(tmp_path, key, None)
    assert found == script_resume.Resumable("script-3.parts", 8, 1, 2)
    assert script_resume.find(tmp_path, key, 8) == found
    assert script_resume.find(tmp_path, key, 5) is None  # a fixed seed must match
    script_resume.claim(tmp_path, found)
    assert script_resume.find(tmp_path, key, None) is None
    # the take is stored: the files it names stay, the marker and unnamed parts go
    parts = tmp_path / "script-3.parts"
    (parts / "segment-0001-old.npz").write_bytes(b"an earlier render's part")
    (parts / "manifest.json").write_text("{}")  # what a render on Ray keeps beside its parts
    script_resume.finish(parts, ["segment-0000-abc.npz"])
    assert sorted(p.name for p in parts.iterdir()) == ["segment-0000-abc.npz"]
