"""Playback through real PortAudio, captured by ALSA's file plugin (tests/tui/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bark_engine.audio import read_wav
from bark_tui.widgets.waveform import BLOCKS, Waveform

from .audio_capture import rescan_portaudio
from .test_app_support import (
    fresh_home,
    generate_take,
    make_app,
    messages,
    type_text,
    wait_for_message,
    wait_until,
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def played(capture, expected: np.ndarray) -> np.ndarray:
    """The captured samples lined up with ``expected`` (PortAudio adds leading silence)."""
    start = int(np.flatnonzero(expected)[0])
    return capture.samples()[: len(expected) - start], expected[start:]


async def test_play_a_take_and_audition_a_voice(home, tiny_models, audio_capture):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        # audition first: only the codec loads, and the voice's own sample plays
        assert app.main.voices.highlighted.key == "v2/en_speaker_6"
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: ("voice", "v2/en_speaker_6") in app._audio, 60,
                         "the audition")
        assert not app.host.loaded  # no GPT was loaded for it
        sample = app._audio[("voice", "v2/en_speaker_6")]
        assert app.player_if_started.wait(10)
        got, want = played(audio_capture, sample)
        np.testing.assert_array_equal(got, want)
        # a second audition comes from memory: no worker, straight to the speakers
        audio_capture.next_file()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert not [w for w in app.workers if w.group == "audition" and w.is_running]
        assert app.player_if_started.wait(10)
        got, _ = played(audio_capture, sample)
        np.testing.assert_array_equal(got, want)

        # generate, then play the take with ctrl+r while the editor has focus
        await type_text(pilot, "Play me.")
        take = await generate_take(pilot, app)
        audio, _ = read_wav(take.wav_path)
        audio_capture.next_file()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.player_if_started.wait(10)
        await wait_until(pilot, lambda: app.playing_take is None, 10, "the end of playback")
        got, want = played(audio_capture, audio)
        np.testing.assert_array_equal(got, want)
        assert not [m for m in messages(app) if "error" in m.lower()]


async def test_no_output_device_is_one_notice(home, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-alsa-config"))
    rescan_portaudio()
    try:
        app = make_app(tiny_models)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("ctrl+o")
            await wait_for_message(pilot, app, "No audio output device", 60)
            await pilot.press("ctrl+o")  # from the cache this time
            await pilot.pause()
            await pilot.pause(0.2)
            assert sum("No audio output device" in m for m in messages(app)) == 1
            # everything else keeps working: the script, the voices, the dialogs
            await type_text(pilot, "still here")
            assert app.main.editor.text == "still here"
            assert app.playing_take is None
    finally:
        monkeypatch.undo()
        rescan_portaudio()


async def test_waveform_draws_a_playhead(home):
    """The strip marks the position in text, not only by colour."""
    from textual.app import App

    class Strip(App):
        def compose(self):
            yield Waveform()

    app = Strip()
    async with app.run_test(size=(80, 3)) as pilot:
        strip = app.query_one(Waveform)
        audio = np.sin(np.linspace(0, 60, 24_000)).astype(np.float32) * np.linspace(0, 1, 24_000)
        strip.show_audio(audio.astype(np.float32), 24_000, "Take 1")
        await pilot.pause()
        idle = str(strip.render())
        assert "Take 1" in idle and "1.0 s" in idle and "┃" not in idle
        levels = [BLOCKS.index(c) for c in strip.blocks]
        assert levels[0] <= 2 and levels[-1] >= len(BLOCKS) - 2  # quiet start, loud end
        half = len(levels) // 2
        assert sum(levels[:half]) < sum(levels[half:])
        strip.position = 0.5
        await pilot.pause()
        playing = str(strip.render())
        assert "▶ 0.5 / 1.0 s" in playing and "┃" in playing
