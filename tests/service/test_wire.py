"""The service's rules without a server: wire format, options, keys, addresses, voices."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bark_engine.errors import BadInputError, VoiceError
from bark_engine.events import LoadProgress, StageProgress, StageStarted
from bark_engine.options import GenerationOptions
from bark_engine.voices.prompts import VoicePrompt
from bark_tui.remote.choice import choose_server
from bark_tui.remote.http import RemoteError, check_url
from bark_tui.service.config import check_bind, is_loopback, read_key_file
from bark_tui.service.wire import (
    event_from_wire,
    event_to_wire,
    options_from_wire,
    options_to_wire,
    voice_from_wire,
    voice_to_wire,
)
from tests.engine.voice_arrays import make_arrays


@pytest.mark.parametrize("event", [
    LoadProgress("text.pt", 3, 10, "loading"),
    StageStarted("coarse", None, 2, (2, 3)),
    StageProgress("semantic", 5, 768, 120.5, 0.1, 0, ()),
])
def test_events_round_trip(event):
    assert event_from_wire(event_to_wire(event)) == event


def test_options_round_trip_and_every_field_is_checked():
    options = GenerationOptions(text_temp=0.6, top_k=50, seed=9, max_duration_s=2.5)
    assert options_from_wire(options_to_wire(options)) == options
    for bad in ({"text_temp": -1}, {"text_temp": "hot"}, {"top_p": 1.5}, {"top_k": 0},
                {"top_k": True}, {"seed": -3}, {"max_semantic_steps": 10_000},
                {"allow_early_stop": "yes"}, {"min_eos_p": float("nan")}, {"what": 1}):
        with pytest.raises(BadInputError):
            options_from_wire(bad)


def test_inline_voices_round_trip_and_are_checked():
    arrays = make_arrays()
    prompt = VoicePrompt.from_arrays(arrays["semantic_prompt"], arrays["coarse_prompt"],
                                     arrays["fine_prompt"], name="mine")
    back = voice_from_wire(voice_to_wire(prompt))
    assert isinstance(back, VoicePrompt) and back.name == "mine"
    assert np.array_equal(back.fine, prompt.fine)
    assert voice_from_wire("v2/en_speaker_6") == "v2/en_speaker_6"
    for bad in ({"npz": "!!!"}, {"npz": "UEsDBA=="}, {"file": "x"}, 42):
        with pytest.raises(VoiceError):
            voice_from_wire(bad)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("::", False),
    ("example.com", False),
])
def test_only_loopback_goes_without_a_key(host, loopback):
    assert is_loopback(host) is loopback
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(BadInputError, match="without a key"):
            check_bind(host, None)
        check_bind(host, "k" * 20)


def test_key_files(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret-s3cret-s3cret\n")
    os.chmod(key, 0o600)
    assert read_key_file(key) == "s3cret-s3cret-s3cret"
    os.chmod(key, 0o640)
    with pytest.raises(BadInputError, match="chmod 600"):
        read_key_file(key)
    short = tmp_path / "short"
    short.write_text("abc")
    os.chmod(short, 0o600)
    with pytest.raises(BadInputError, match="shorter than"):
        read_key_file(short)
    with pytest.raises(BadInputError, match="cannot read"):
        read_key_file(tmp_path / "missing")


def test_server_urls_and_which_server_is_chosen(tmp_path):
    assert check_url("127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert check_url("https://gpu.example/bark/") == "https://gpu.example/bark"
    for bad in ("ftp://x", "http://", "http://h:99999", "http://h/?q=1"):
        with pytest.raises(RemoteError):
            check_url(bad)
    assert choose_server(env={}) is None
    key = tmp_path / "k"
    key.write_text("k" * 20)
    os.chmod(key, 0o600)
    env = {"BARK_TUI_SERVER": "http://127.0.0.1:1", "BARK_TUI_API_KEY": "from-env"}
    assert choose_server(env=env).key == "from-env"
    chosen = choose_server("http://127.0.0.1:2", key, env=env, saved_url="http://127.0.0.1:3")
    assert (chosen.url, chosen.key) == ("http://127.0.0.1:2", "k" * 20)
    saved = choose_server(env={}, saved_url="127.0.0.1:3", saved_key_file=str(key))
    assert (saved.url, saved.label) == ("http://127.0.0.1:3", "127.0.0.1:3")


def test_finished_jobs_are_forgotten_oldest_first_beyond_the_byte_cap(monkeypatch):
    from bark_engine.options import Request
    from bark_tui.service import board as board_mod
    from bark_tui.service.work import RowsWork, SegmentResult

    board = board_mod.JobBoard(None, queue_size=8, keep_minutes=30)
    jobs = []
    for i in range(3):
        job = board.submit(RowsWork([Request("hi")]))
        board.cancel(job)  # out of the queue, finished; now give it results to keep
        job.state = board_mod.RUNNING
        job.add_segment(SegmentResult(0, "hi", None, i, np.zeros(1000, np.float32),
                                      np.zeros(3, np.int64), np.zeros((2, 4), np.int64),
                                      np.zeros((8, 4), np.int64), 0.1))
        job.finish(board_mod.DONE)
        job.finished_at = 1000.0 + i
        jobs.append(job)
    monkeypatch.setattr(board_mod.time, "time", lambda: 1010.0)
    size = jobs[0].kept_bytes()
    assert size == 4000 + 24 + 64 + 256
    monkeypatch.setattr(board_mod, "MAX_KEPT_BYTES", 2 * size)
    assert [j.id for j in board.jobs()] == [j.id for j in jobs[1:]]
    monkeypatch.setattr(board_mod, "MAX_KEPT_JOBS", 1)
    assert [j.id for j in board.jobs()] == [jobs[2].id]
