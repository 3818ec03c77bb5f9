"""Player through real PortAudio into ALSA's file plugin (see audio_capture.py).

The capture sink takes data at once (≈1000× real time), so long clips are
used where a test must act mid-clip: 300 s of audio still plays in ~0.3 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bark_tui.core.player import NO_DEVICE_REASON, PlaybackUnavailable, Player

from .audio_capture import AudioCapture, install_alsa_config, require_portaudio

SR = 24_000
REPO = Path(__file__).resolve().parents[2]


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Never zero (so alignment on the first non-zero sample is exact) and never repeating."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    magnitude = rng.uniform(0.05, 0.9, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (magnitude * sign).astype(np.float32)


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.0005)


@pytest.fixture
def player() -> Player:
    p = Player()
    yield p
    p.close()


def test_play_is_bit_exact_and_calls_on_done(player: Player, audio_capture: AudioCapture) -> None:
    assert player.available, player.unavailable_reason
    x = signal(1.0)
    done = threading.Event()
    player.play(x, SR, on_done=done.set)
    assert done.wait(5)
    got = audio_capture.samples()
    assert len(got) >= len(x)
    np.testing.assert_array_equal(got[: len(x)], x)
    assert not got[len(x) :].any()  # only PortAudio's trailing silence after the clip
    assert not player.is_playing
    assert player.position_s == pytest.approx(1.0)
    assert player.duration_s == pytest.approx(1.0)


def test_play_copies_the_callers_buffer(player: Player, audio_capture: AudioCapture) -> None:
    x = signal(0.5, seed=1)
    expected = x.copy()
    done = threading.Event()
    player.play(x, SR, on_done=done.set)
    x[:] = 0.123  # a caller reusing its buffer must not change what is heard
    assert done.wait(5)
    np.testing.assert_array_equal(audio_capture.samples()[: len(expected)], expected)


def test_stop_midway_leaves_a_prefix_and_no_on_done(
    player: Player, audio_capture: AudioCapture
) -> None:
    x = signal(300.0, seed=2)
    done = threading.Event()
    player.play(x, SR, on_done=done.set)
    wait_until(lambda: player.position_s >= 1.0)
    player.stop()
    stopped_at = player.position_s
    assert not player.is_playing
    assert player.wait(1)
    got = audio_capture.samples(trim_end=True)
    assert 0 < len(got) < len(x)
    assert len(got) <= round(stopped_at * SR)  # never more than was handed over
    np.testing.assert_array_equal(got, x[: len(got)])
    time.sleep(0.05)
    assert not done.is_set()
    assert player.position_s == stopped_at  # stop keeps the position


def test_start_offset(player: Player, audio_capture: AudioCapture) -> None:
    x = signal(1.0, seed=3)
    done = threading.Event()
    player.play(x, SR, start_s=0.25, on_done=done.set)
    assert done.wait(5)
    got = audio_capture.samples(trim_end=True)
    np.testing.assert_array_equal(got, x[SR // 4 :])


def test_seek_while_playing_jumps_exactly(player: Player, audio_capture: AudioCapture) -> None:
    x = signal(300.0, seed=4)
    target = 250 * SR
    done = threading.Event()
    player.play(x, SR, on_done=done.set)
    wait_until(lambda: player.position_s >= 1.0)
    player.seek(250.0)
    assert done.wait(10)
    got = audio_capture.samples(trim_end=True)
    head = len(got) - (len(x) - target)  # frames played before the jump
    assert SR <= head < target
    np.testing.assert_array_equal(got[:head], x[:head])
    np.testing.assert_array_equal(got[head:], x[target:])
    assert player.position_s == pytest.approx(300.0)


def test_seek_is_clamped(player: Player, audio_capture: AudioCapture) -> None:
    x = signal(300.0, seed=5)
    done = threading.Event()
    player.play(x, SR, on_done=done.set)
    player.seek(10_000.0)  # past the end: the clip simply ends
    assert done.wait(5)
    assert player.position_s == pytest.approx(300.0)
    player.seek(-3)
    assert player.position_s == 0.0
    player.seek(float("inf"))
    assert player.position_s == pytest.approx(300.0)
    player.seek(float("nan"))
    assert player.position_s == 0.0


def test_two_plays_land_in_two_files(player: Player, audio_capture: AudioCapture) -> None:
    a, b = signal(0.5, seed=6), signal(0.75, seed=7)
    first = audio_capture.path
    done = threading.Event()
    player.play(a, SR, on_done=done.set)
    assert done.wait(5)
    second = audio_capture.next_file()
    done.clear()
    player.play(b, SR, on_done=done.set)
    assert done.wait(5)
    np.testing.assert_array_equal(audio_capture.samples(first, trim_end=True), a)
    np.testing.assert_array_equal(audio_capture.samples(second, trim_end=True), b)


def test_new_play_stops_the_previous_clip(player: Player, audio_capture: AudioCapture) -> None:
    long_clip, short_clip = signal(300.0, seed=8), signal(0.5, seed=9)
    first = audio_capture.path
    first_done, second_done = threading.Event(), threading.Event()
    player.play(long_clip, SR, on_done=first_done.set)
    wait_until(lambda: player.position_s >= 0.5)
    second = audio_capture.next_file()
    player.play(short_clip, SR, on_done=second_done.set)
    assert second_done.wait(5)
    cut = audio_capture.samples(first, trim_end=True)
    assert 0 < len(cut) < len(long_clip)
    np.testing.assert_array_equal(cut, long_clip[: len(cut)])
    np.testing.assert_array_equal(audio_capture.samples(second, trim_end=True), short_clip)
    assert not first_done.is_set()
    assert player.duration_s == pytest.approx(0.5)


def test_on_done_may_start_the_next_clip(player: Player, audio_capture: AudioCapture) -> None:
    a, b = signal(0.25, seed=10), signal(0.25, seed=11)
    second_done = threading.Event()
    files: list[Path] = []

    def chain() -> None:
        files.append(audio_capture.next_file())
        player.play(b, SR, on_done=second_done.set)

    player.play(a, SR, on_done=chain)
    assert second_done.wait(5)
    np.testing.assert_array_equal(audio_capture.samples(files[0], trim_end=True), b)
    assert player.last_error is None


def test_play_from_worker_threads_while_ui_polls(
    player: Player, audio_capture: AudioCapture
) -> None:
    clips = [signal(0.2, seed=20 + i) for i in range(4)]
    finished = threading.Event()
    positions: list[float] = []
    files: list[Path] = []

    def worker() -> None:
        for clip in clips:
            files.append(audio_capture.next_file())  # each stream opening truncates its file
            done = threading.Event()
            player.play(clip, SR, on_done=done.set)
            assert done.wait(5)
        finished.set()

    thread = threading.Thread(target=worker)
    thread.start()
    while not finished.is_set():  # the "UI thread": a playhead timer
        positions.append(player.position_s)
        _ = player.is_playing, player.duration_s
    thread.join()
    assert all(0.0 <= p <= 0.2 + 1e-9 for p in positions)
    for path, clip in zip(files, clips, strict=True):
        np.testing.assert_array_equal(audio_capture.samples(path, trim_end=True), clip)


def test_clip_played_from_its_end_finishes_at_once(
    player: Player, audio_capture: AudioCapture
) -> None:
    done = threading.Event()
    player.play(signal(0.1), SR, start_s=5.0, on_done=done.set)
    assert done.wait(5)
    assert len(audio_capture.samples()) == 0


def test_rejects_stereo(player: Player) -> None:
    with pytest.raises(ValueError, match="mono"):
        player.play(np.zeros((100, 2), dtype=np.float32), SR)


def test_wav_capture_reports_rate_and_channels(
    player: Player, audio_capture_wav: AudioCapture
) -> None:
    x = signal(0.5, seed=12)
    done = threading.Event()
    player.play(x, SR, on_done=done.set)
    assert done.wait(5)
    assert audio_capture_wav.wav_format() == (SR, 1, 2)
    got = audio_capture_wav.samples()
    np.testing.assert_allclose(got[: len(x)], x, atol=1.5 / 32768)


_PROBE = """
import json, sys
import numpy as np
from bark_tui.core.player import Player, PlaybackUnavailable
p = Player()
result = {"available": p.available, "reason": p.unavailable_reason}
try:
    p.play(np.ones(100, dtype=np.float32), 24000)
    result["raised"] = None
except PlaybackUnavailable as exc:
    result["raised"] = exc.reason
if len(sys.argv) > 1:  # then install the capture config and rescan
    import os
    os.environ["XDG_CONFIG_HOME"] = sys.argv[1]
    result["after_rescan"] = p.rescan()
print(json.dumps(result))
"""


def run_probe(tmp_path: Path, *args: str) -> tuple[dict, str]:
    require_portaudio()
    home = tmp_path / "home"
    empty_xdg = tmp_path / "empty-xdg"
    home.mkdir()
    empty_xdg.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "AUDIO_CAPTURE_FILE"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(empty_xdg), PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(proc.stdout), proc.stderr


def test_no_output_device(tmp_path: Path) -> None:
    """This machine has no sound card: without our ALSA config PortAudio sees no device."""
    result, stderr = run_probe(tmp_path)
    assert result == {"available": False, "reason": NO_DEVICE_REASON, "raised": NO_DEVICE_REASON}
    assert stderr == ""  # nothing may reach the terminal


def test_rescan_finds_a_device_configured_later(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    install_alsa_config(xdg, "raw")
    result, stderr = run_probe(tmp_path, str(xdg))
    assert result["available"] is False
    assert result["after_rescan"] is None  # a device now: no reason
    assert stderr == ""


def test_unavailable_is_an_exception_with_a_reason() -> None:
    exc = PlaybackUnavailable(NO_DEVICE_REASON)
    assert exc.reason == str(exc) == NO_DEVICE_REASON
