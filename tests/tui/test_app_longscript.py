"""Long scripts and dialogue in the studio, on the real engine (tiny random weights)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bark_engine.audio import read_wav
from bark_engine.events import StageStarted
from bark_tui.core import locations
from bark_tui.screens.prompt import PromptScreen
from bark_tui.studio.jobs.bridge import EventBridge
from bark_tui.studio.jobs.script import load_segment, parts_dir_for

from .test_app_support import (
    capture_each_play,
    compare_takes,
    fresh_home,
    has_message,
    make_app,
    messages,
    type_text,
    wait_for_message,
    wait_until,
    write_settings,
)

DIALOGUE = "Ann: Hello there.\nBob: Hi Ann. How are you?\nAnn: Fine, thanks."
TAKE_S = 0.15  # each segment: a handful of semantic tokens


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


async def render_script(pilot, app, text: str, timeout: float = 120.0):
    """Put ``text`` in the editor, ctrl+g, wait for the script take; return it."""
    app.main.editor.set_text(text)
    await pilot.pause()
    store = app.store
    before = store.count()
    await pilot.press("ctrl+g")
    await wait_until(pilot, lambda: store.count() > before and not app.queue.busy, timeout,
                     "the script take")
    await pilot.pause()
    return store.list_takes()[0]


async def test_dialogue_renders_per_speaker_and_plays_segment_one_first(
        home, tiny_models, audio_capture):
    write_settings(seed_mode="fixed", fixed_seed=7, fine_temp=0.0,
                   speakers={"Ann": "v2/en_speaker_0", "Bob": "v2/en_speaker_6"})
    app = make_app(tiny_models, take_s=TAKE_S)
    play_files = capture_each_play(app, audio_capture)  # each clip in its own file
    async with app.run_test(size=(120, 40)) as pilot:
        take = await render_script(pilot, app, DIALOGUE)
        # the speakers map decided the voices, one segment per line, 0.5 s between speakers
        segs = take.segments
        assert [s["speaker"] for s in segs] == ["Ann", "Bob", "Ann"]
        assert [s["voice"] for s in segs] == ["v2/en_speaker_0", "v2/en_speaker_6",
                                              "v2/en_speaker_0"]
        assert [s["pause_before_s"] for s in segs] == [0.0, 0.5, 0.5]
        # the history names the dialogue's voices, not the voice that was selected
        assert str(app.main.history.get_cell(str(take.id), "voice")) == "2 voices"
        assert [s["seed"] for s in segs] == [7, 8, 9]
        # time to first audio is kept beside the total, and shown
        assert 0 < take.timings["first_audio_s"] <= take.timings["total_s"]
        assert "first audio after" in str(app.main.generation.query_one("#gen-title").content)
        from bark_tui.screens.main import take_label

        assert take_label(take).startswith(f"Take {take.id} · 3 segments · first audio ")
        first_cell = str(app.main.history.get_cell(str(take.id), "first_audio"))
        assert first_cell == f"{take.timings['first_audio_s']:.1f} s"  # the History column
        # playback of segment 1 began before the last segment was made
        log = app.segment_log
        made = {i: t for kind, i, t in log if kind == "made"}
        plays = [(i, t) for kind, i, t in log if kind == "play"]
        assert plays and plays[0][0] == 0
        assert plays[0][1] < made[len(segs) - 1]
        assert [i for i, _t in plays] == [0, 1, 2]  # and the others followed in order
        # ... and what PortAudio played is segment 1's audio
        await wait_until(pilot, lambda: not app.player_if_started.is_playing, 20, "playback")
        first = load_segment(parts_dir_for(take) / segs[0]["file"])["audio"]
        captured = audio_capture.samples(play_files[0])
        start = int(np.flatnonzero(first)[0])
        np.testing.assert_array_equal(captured[: len(first) - start], first[start:])
        # the take's WAV is the whole script, stitched
        audio, rate = read_wav(take.wav_path)
        total = sum(s["duration_s"] for s in segs) + 1.0
        assert abs(len(audio) / rate - total) < 0.01


async def test_remake_one_segment_leaves_the_others_byte_identical(home, tiny_models):
    write_settings(seed_mode="fixed", fixed_seed=3, fine_temp=0.0, play_while_generating=False)
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        take = await render_script(pilot, app, "One short line.\n\n[v2/en_speaker_0]\nTwo.")
        folder = parts_dir_for(take)
        before = {r["file"]: (folder / r["file"]).read_bytes() for r in take.segments}
        assert len(before) == 2
        # "regenerate" (g) on a script take renders the whole script again: the same take
        app.regenerate(take)
        await wait_until(pilot, lambda: app.store.count() == 2 and not app.queue.busy, 60,
                         "the regenerated script")
        again = app.store.list_takes()[0]
        assert [r["seed"] for r in again.segments] == [r["seed"] for r in take.segments]
        assert again.wav_path.read_bytes() == take.wav_path.read_bytes()
        app.remake_segment(take, 1, seed=99)
        await wait_for_message(pilot, app, "re-stitched", 60)
        new = app.store.get(take.id)
        assert new.segments[0]["file"] == take.segments[0]["file"]
        assert (folder / new.segments[0]["file"]).read_bytes() == before[take.segments[0]["file"]]
        assert new.segments[1]["seed"] == 99 and new.segments[1]["file"] != take.segments[1]["file"]
        assert not (folder / take.segments[1]["file"]).exists()
        audio, _ = read_wav(new.wav_path)
        assert abs(len(audio) / 24_000 - new.duration_s) < 1e-3


async def test_a_remake_shows_its_stages_and_esc_cancels_it_with_nothing_written(
        home, tiny_models, monkeypatch):
    """Re-making a segment is a job in the queue: the panel names it and shows its
    stages; esc stops it mid-way and the take (row, segment files, WAV) is as it was."""
    from bark_engine.events import StageProgress
    from bark_tui.studio.jobs.script import RemakeJob

    write_settings(seed_mode="fixed", fixed_seed=3, fine_temp=0.0, play_while_generating=False)
    app = make_app(tiny_models, take_s=TAKE_S)
    armed, reached, go = threading.Event(), threading.Event(), threading.Event()
    forward = EventBridge.__call__

    def call(bridge, event) -> None:  # hold the re-make's worker at its first token
        forward(bridge, event)
        if armed.is_set() and isinstance(event, StageProgress) and not reached.is_set():
            reached.set()
            go.wait(60)

    monkeypatch.setattr(EventBridge, "__call__", call)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            take = await render_script(pilot, app, "One short line.\n\nTwo.")
            folder = parts_dir_for(take)
            files = {r["file"]: (folder / r["file"]).read_bytes() for r in take.segments}
            wav = take.wav_path.read_bytes()
            armed.set()
            app.remake_segment(take, 1, seed=99)
            await wait_until(pilot, reached.is_set, 60, "the re-make mid-way")
            await pilot.pause()
            job = app.queue.running
            assert isinstance(job, RemakeJob) and job.index == 1
            title = str(app.main.query_one("#gen-title").render())
            assert f"Re-making segment 2 of take {take.id} · seed 99" in title
            assert app.main.generation.row("semantic").state == "running"
            await pilot.press("escape")
            go.set()
            await wait_for_message(pilot, app, f"Cancelled job {job.id}", 30)
            await wait_until(pilot, lambda: not app.queue.busy, 30, "the queue to settle")
            assert app.store.get(take.id).segments == take.segments
            assert {f.name: f.read_bytes() for f in folder.iterdir()} == files
            assert take.wav_path.read_bytes() == wav
    finally:
        go.set()


async def test_regenerate_after_a_remake_uses_the_remade_seed(home, tiny_models):
    write_settings(seed_mode="fixed", fixed_seed=3, fine_temp=0.0, play_while_generating=False)
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        take = await render_script(pilot, app, "One short line.\n\nTwo.\n\nThree.")
        app.remake_segment(take, 1, seed=99)
        await wait_for_message(pilot, app, "re-stitched", 60)
        remade = app.store.get(take.id)
        assert [r["seed"] for r in remade.segments] == [3, 99, 5]
        # g in History on the re-made take: every segment with the seed it was made with
        app.main.refresh_history(select=take.id)
        app.main.history.focus()
        await pilot.press("g")
        await wait_until(pilot, lambda: app.store.count() == 2 and not app.queue.busy, 90,
                         "the regenerated take")
        again = app.store.list_takes()[0]
        assert again.id != take.id
        assert [r["seed"] for r in again.segments] == [3, 99, 5]
        old, new = parts_dir_for(remade), parts_dir_for(again)
        for before, after in zip(remade.segments, again.segments, strict=True):
            np.testing.assert_array_equal(load_segment(new / after["file"])["audio"],
                                          load_segment(old / before["file"])["audio"])
        assert again.wav_path.read_bytes() == remade.wav_path.read_bytes()


async def test_unknown_voice_is_refused_before_generating(home, tiny_models):
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.set_text("Hello.\n[nobody-here]\nStill me.")
        await pilot.pause()
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, app, "Unknown voice: nobody-here")
        assert not app.queue.busy and app.store.count() == 0
        assert "nobody-here" in app.main.editor.text  # the script stays


class SegmentGate:
    """Holds the worker as segment ``index`` starts, until the test has pressed its keys."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.reached = threading.Event()
        self.go = threading.Event()


@pytest.fixture
def segment_gate(monkeypatch):
    gates: list[SegmentGate] = []
    forward = EventBridge.__call__

    def call(bridge: EventBridge, event) -> None:
        forward(bridge, event)
        for gate in gates:
            if isinstance(event, StageStarted) and event.stage == "semantic" \
                    and event.segment == gate.index and not gate.reached.is_set():
                gate.reached.set()
                gate.go.wait(60)

    monkeypatch.setattr(EventBridge, "__call__", call)

    def make(index: int) -> SegmentGate:
        gates.append(SegmentGate(index))
        return gates[-1]

    yield make
    for gate in gates:
        gate.go.set()


LINES = "\n\n".join(f"Line number {i}." for i in range(6))


async def start_and_hold(pilot, app, gate: SegmentGate, text: str):
    """Put ``text`` in the editor, ctrl+g, and wait until the render is held at
    the gate's segment; returns the running job."""
    app.main.editor.set_text(text)
    await pilot.pause()
    await pilot.press("ctrl+g")
    await wait_until(pilot, gate.reached.is_set, 90, f"segment {gate.index + 1} to start")
    return app.queue.running


async def test_cancel_keeps_finished_segments_and_the_next_render_goes_on(
        home, tiny_models, segment_gate, monkeypatch):
    write_settings(seed_mode="random", play_while_generating=False, fine_temp=0.0, batch=1)
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(3)
    async with app.run_test(size=(120, 40)) as pilot:
        first_job = await start_and_hold(pilot, app, gate, LINES)
        await pilot.press("escape")
        gate.go.set()
        await wait_until(pilot, lambda: not app.queue.busy, 60, "the cancel")
        await wait_for_message(pilot, app, "3 of 6 segments kept")
        assert "render again" in str(app.main.generation.query_one("#gen-title").content)
        assert app.store.count() == 0
        folders = list(locations.takes_dir().glob("*.parts"))
        assert len(folders) == 1
        kept = sorted(folders[0].glob("segment-*.npz"))
        assert len(kept) == 3
        kept_audio = [load_segment(path)["audio"] for path in kept]
        saved = []  # every .npz the studio writes from here on
        real_savez = np.savez
        monkeypatch.setattr(np, "savez", lambda fh, **arrays: (saved.append(fh),
                                                               real_savez(fh, **arrays)))
        # the same script and settings again: a new random seed is drawn, the kept one wins
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 120,
                         "the resumed take")
        assert has_message(app, "goes on from the unfinished render: 3 of 6 segments kept")
        take = app.store.list_takes()[0]
        assert take.seed == first_job.seed
        assert [r["seed"] for r in take.segments] == [first_job.seed + i for i in range(6)]
        assert [r["seconds"] for r in take.segments[:3]] == [0, 0, 0]  # reused, not made
        assert "6 segments (3 reused)" in str(app.main.generation.query_one("#gen-title").content)
        assert all(r["seconds"] > 0 for r in take.segments[3:])
        for i, audio in enumerate(kept_audio):
            got = load_segment(parts_dir_for(take) / take.segments[i]["file"])["audio"]
            np.testing.assert_array_equal(got, audio)
        # the take owns the folder now; nothing is left to resume
        assert parts_dir_for(take) == folders[0]
        assert not (folders[0] / "resume").exists()
        assert list(locations.takes_dir().glob("*.parts")) == folders
        # each segment is written once: the three made now, one file each, no copies
        assert len(saved) == 3
        assert sorted(p.name for p in folders[0].iterdir()) == sorted(
            r["file"] for r in take.segments)


async def test_a_changed_script_does_not_resume_and_nothing_is_kept_before_a_segment(
        home, tiny_models, segment_gate):
    write_settings(seed_mode="fixed", fixed_seed=11, play_while_generating=False,
                   fine_temp=0.0, batch=1)
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(1)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_and_hold(pilot, app, gate, LINES)
        await pilot.press("escape")
        gate.go.set()
        await wait_for_message(pilot, app, "1 of 6 segments kept", 60)
        app.main.editor.set_text(LINES.replace("number 0", "line 0"))  # (0 is read "zero")
        await pilot.pause()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 120,
                         "the other take")
        assert not has_message(app, "goes on from the unfinished render")
        take = app.store.list_takes()[0]
        assert all(r["seconds"] > 0 for r in take.segments)
        # the cancelled render of the first script still waits for its own next render
        assert len(list(locations.takes_dir().glob("*.parts/resume/resume.json"))) == 1


async def test_cancel_before_any_segment_keeps_nothing(home, tiny_models, segment_gate):
    write_settings(play_while_generating=False, fine_temp=0.0)
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(0)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_and_hold(pilot, app, gate, LINES)
        await pilot.press("escape")
        gate.go.set()
        await wait_for_message(pilot, app, "nothing was saved", 60)
        assert app.store.count() == 0
        assert not list(locations.takes_dir().glob("*.parts"))


async def test_segment_preview_follows_the_typing(home, tiny_models):
    from bark_tui.widgets.segment_list import SegmentPreview

    write_settings(speakers={"Ann": "v2/en_speaker_0"})
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        preview = app.main.query_one(SegmentPreview)
        await type_text(pilot, "One.")
        assert not preview.display  # one plain take: nothing to show
        await pilot.press("enter")
        await type_text(pilot, "Ann: Hi [laughs]")
        text = str(preview.content)
        assert preview.display and text.startswith("2 segments")
        assert "Ann → v2/en_speaker_0" in text
        assert "#2 L2 +0.5s Ann · v2/en_speaker_0 · ≈1 s · 6 tok" in text
        await pilot.press("enter")
        for line in ("[pause 1.5s]", "Bob: Yo", "[nobody]"):
            await type_text(pilot, line)
            await pilot.press("enter")
        text = str(preview.content)
        assert text.startswith("3 segments") and "#3 L4 +1.5s Bob" in text
        assert "⚠" in text and "nobody" in text


async def test_speakers_map_edited_in_the_app_decides_the_voices(home, tiny_models):
    from textual.widgets import Select

    from bark_tui.core.settings import load_settings
    from bark_tui.screens.speakers import SpeakersScreen, speaker_id

    write_settings(seed_mode="fixed", fixed_seed=5, fine_temp=0.0, play_while_generating=False)
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.set_text("Ann: Hello.\nBob: Hi there.")
        await pilot.pause()
        app.action_speakers()
        await wait_until(pilot, lambda: isinstance(app.screen, SpeakersScreen), 10, "the form")
        await pilot.pause()
        app.screen.query_one(f"#{speaker_id('Ann')}", Select).value = "v2/en_speaker_0"
        app.screen.query_one(f"#{speaker_id('Bob')}", Select).value = "v2/en_speaker_6"
        await pilot.press("ctrl+s")
        await wait_for_message(pilot, app, "Speakers and long-script settings saved")
        saved, _warnings = load_settings(locations.settings_path())
        assert saved.speakers == {"Ann": "v2/en_speaker_0", "Bob": "v2/en_speaker_6"}
        assert "Ann → v2/en_speaker_0" in str(app.main.query_one("#segment-preview").content)
        store = app.store
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: store.count() == 1 and not app.queue.busy, 60, "take")
        take = store.list_takes()[0]
        assert [s["voice"] for s in take.segments] == ["v2/en_speaker_0", "v2/en_speaker_6"]


async def test_several_takes_compare_and_keep_one(home, tiny_models):
    write_settings(seed_mode="fixed", fixed_seed=40, fine_temp=0.0)
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await compare_takes(pilot, app, "Hello.", 3)
        assert [g.seed for g in screen.generations] == [40, 41, 42]
        assert app.store.count() == 0  # nothing is kept before the user chooses
        played = []
        app._play_audio = lambda audio, rate, take_id, what: played.append((audio, what))
        await pilot.press("down", "enter")  # hear take 2
        await wait_until(pilot, lambda: played, 10, "take 2 playing")
        assert [w for _a, w in played] == ["take 2 of 3 (seed 41)"]
        assert played[0][0] is screen.generations[1].audio
        await pilot.press("k")
        await wait_for_message(pilot, app, "Kept take(s)", 30)
        takes = app.store.list_takes()
        assert [t.seed for t in takes] == [41]
        title = str(app.main.generation.query_one("#gen-title").content)
        assert title == f"Kept take {takes[0].id} in the history"  # not "nothing kept yet"
        audio, _rate = takes[0].load_audio()
        np.testing.assert_allclose(audio, screen.generations[1].audio, atol=1 / 32768)
        assert len(list(locations.takes_dir().glob("*.wav"))) == 1


async def test_several_takes_of_a_dialogue_are_refused_with_the_reason(home, tiny_models):
    """ctrl+t on a script with speakers would read "Ann:" aloud in one voice: it says why
    not and what to do instead, and makes nothing."""
    write_settings(seed_mode="fixed", fixed_seed=40,
                   speakers={"Ann": "v2/en_speaker_0", "Bob": "v2/en_speaker_6"})
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        for text, what in ((DIALOGUE, "3 segments and speakers Ann, Bob"),
                           ("Ann: Just one line.", "1 segment and speaker Ann"),
                           ("First part.\n\nSecond part.", "2 segments")):
            app.main.editor.set_text(text)
            await pilot.pause()
            await pilot.press("ctrl+t")
            await wait_for_message(pilot, app, f"this script has {what}.")
            assert "ctrl+p → Re-make segment" in messages(app)[-1]
            assert not isinstance(app.screen, PromptScreen)  # no "how many" question
            app.clear_notifications()
        assert not app.queue.busy and app.store.count() == 0
        app.main.editor.set_text("Hello there.")  # one plain segment: asked how many
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), 10, "the prompt")


async def test_a_failed_render_keeps_its_finished_segments_too(home, tiny_models, segment_gate):
    from bark_engine.voices.catalog import UserVoices
    from bark_engine.voices.prompts import VoicePrompt

    rng = np.random.default_rng(5)
    fine = rng.integers(0, 1024, (8, 150))
    voices = UserVoices(locations.user_voices_dir())
    good = VoicePrompt.from_arrays(rng.integers(0, 10_000, 100), fine[:2], fine, name="guest")
    path = voices.add("guest", good)
    write_settings(seed_mode="fixed", fixed_seed=21, play_while_generating=False,
                   fine_temp=0.0, batch=1)
    script = "Line number 0.\n\nLine number 1.\n\nLine number 2.\n\n[guest]\nLine number 3."
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(2)
    async with app.run_test(size=(120, 40)) as pilot:
        await start_and_hold(pilot, app, gate, script)
        path.write_bytes(b"not a voice any more")  # segment 4's voice breaks mid-render
        gate.go.set()
        await wait_until(pilot, lambda: not app.queue.busy, 60, "the failure")
        await wait_for_message(pilot, app, "3 of 4 segments kept", 30)
        assert "failed" in str(app.main.generation.query_one("#gen-title").content)
        assert app.store.count() == 0
        assert len(list(locations.takes_dir().glob("*.parts/segment-*.npz"))) == 3
        # the voice mended, the same render goes on from the three kept segments
        path.unlink()
        voices.add("guest", good)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 120,
                         "the resumed take")
        assert has_message(app, "goes on from the unfinished render: 3 of 4 segments kept")
        take = app.store.list_takes()[0]
        assert [r["seconds"] for r in take.segments[:3]] == [0, 0, 0]
        assert take.segments[3]["seconds"] > 0


async def test_a_script_renders_in_batches_and_equals_one_at_a_time(home, tiny_models,
                                                                    segment_gate):
    """Segments at once = 3: the panel names the batch, a cancel keeps the whole
    first batch, and the finished take is the one a one-at-a-time render makes."""
    write_settings(seed_mode="fixed", fixed_seed=30, play_while_generating=False,
                   fine_temp=0.0, batch=3)
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(3)  # the second batch's first segment
    async with app.run_test(size=(120, 40)) as pilot:
        await start_and_hold(pilot, app, gate, LINES)
        await pilot.pause()
        assert "making segments 4, 5, 6/6" in str(
            app.main.generation.query_one("#gen-title").content)
        await pilot.press("escape")
        gate.go.set()
        await wait_for_message(pilot, app, "3 of 6 segments kept", 60)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 120,
                         "the batched take")
        batched = app.store.list_takes()[0]
    write_settings(seed_mode="fixed", fixed_seed=30, play_while_generating=False,
                   fine_temp=0.0, batch=1)
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        one = await render_script(pilot, app, LINES)
    assert one.id != batched.id
    assert [r["seed"] for r in one.segments] == [r["seed"] for r in batched.segments]
    assert one.wav_path.read_bytes() == batched.wav_path.read_bytes()


async def test_quitting_during_a_render_says_the_finished_segments_are_kept(
        home, tiny_models, segment_gate):
    write_settings(seed_mode="fixed", fixed_seed=3, play_while_generating=False, batch=1)
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(2)
    async with app.run_test(size=(120, 40)) as pilot:
        job = await start_and_hold(pilot, app, gate, LINES)
        await pilot.press("ctrl+q")
        gate.go.set()
    assert app.quit_note is not None
    assert f"job {job.id}" in app.quit_note and "finished segments are kept" in app.quit_note
    kept = list(locations.takes_dir().glob("*.parts/segment-*.npz"))
    assert len(kept) == 2  # what the note promises is there


async def test_script_remake_and_several_takes_jobs_at_quit_come_back_after_a_restart(
        home, tiny_models, segment_gate):
    """Quitting mid-render with a re-make and several takes waiting loses none of them:
    the next start puts all three back, held, each its own kind with its seeds; ctrl+g
    goes on, and the script resumes from the segments it had finished."""
    from bark_tui.core.session import load_session
    from bark_tui.studio.jobs.script import RemakeJob, ScriptJob
    from bark_tui.studio.jobs.takes import TakesJob

    write_settings(seed_mode="fixed", fixed_seed=41, play_while_generating=False,
                   fine_temp=0.0, batch=1)
    app = make_app(tiny_models, take_s=TAKE_S)
    gate = segment_gate(2)
    async with app.run_test(size=(120, 40)) as pilot:
        earlier = await render_script(pilot, app, "First part.\n\nSecond part.")
        script_job = await start_and_hold(pilot, app, gate, LINES)
        app.remake_segment(earlier, 1, seed=77)
        app.main.editor.set_text("One plain line.")
        await pilot.pause()
        app.generate_takes(2)
        await pilot.pause()
        takes_seeds = app.queue.waiting[-1].seeds
        app.regenerate_script(earlier)  # the earlier script take, rendered again
        await pilot.pause()
        await pilot.press("ctrl+q")
    gate.go.set()
    saved = load_session(locations.session_path()).queued
    assert [r["kind"] for r in saved] == ["script", "remake", "takes", "rescript"]

    write_settings(seed_mode="fixed", fixed_seed=41, play_while_generating=False,
                   fine_temp=0.0, batch=1, continuity="chain")  # changed since: not used
    again = make_app(tiny_models, take_s=TAKE_S)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_for_message(pilot, again, "4 job(s) that were waiting when the studio closed")
        script, remake, takes, rescript = again.queue.waiting
        assert isinstance(script, ScriptJob) and isinstance(remake, RemakeJob)
        assert isinstance(takes, TakesJob) and takes.seeds == takes_seeds
        assert isinstance(rescript, ScriptJob) and rescript.regenerates == earlier.id
        assert (script.seed, script.resume_key, script.count, script.continuity) == (
            script_job.seed, script_job.resume_key, 6, "fixed")  # as queued
        assert (remake.take.id, remake.index, remake.options.seed) == (earlier.id, 1, 77)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: again.store.count() == 2, 120, "the resumed script")
        await wait_until(pilot, lambda: not again.queue.busy and again.store.count() == 3, 180,
                         "the re-make, the takes and the re-render")
        resumed = next(t for t in again.store.list_takes() if t.text == LINES)
        # it went on from the two segments finished before the quit (notices expire, so
        # the take's own record says it: a reused segment took no time)
        assert [r["seconds"] for r in resumed.segments[:2]] == [0, 0]
        assert all(r["seconds"] > 0 for r in resumed.segments[2:])
        remade = again.store.get(earlier.id)
        assert remade.segments[1]["seed"] == 77
    assert load_session(locations.session_path()).queued == ()  # put back once, then done
