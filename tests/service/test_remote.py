"""`RemoteEngine` and `--server`: a real server behind the local engine's interface."""

from __future__ import annotations

import http.server
import json
import threading
import time

import numpy as np
import pytest

from bark_engine.audio import pcm16_bytes
from bark_engine.errors import Cancelled
from bark_engine.events import StageFinished, StageProgress, StageStarted
from bark_engine.options import GenerationOptions
from bark_tui.cli.main import main
from bark_tui.remote.engine import RemoteEngine
from bark_tui.remote.http import ConnectionLost, RemoteError
from bark_tui.service.process import ServerProcess

from .conftest import SHORT

OPTIONS = GenerationOptions(**SHORT)


def test_takes_through_the_server_equal_local_takes(server, local_engine):
    remote = RemoteEngine(server.url)
    events = []
    takes = remote.generate_takes("Two takes, please.", "v2/en_speaker_6", OPTIONS,
                                  seeds=[4, 5], on_event=events.append)
    local = local_engine.generate_takes("Two takes, please.", "v2/en_speaker_6", OPTIONS,
                                        seeds=[4, 5])
    for got, want in zip(takes, local, strict=True):
        assert got.seed == want.seed and got.voice == want.voice
        for key in ("semantic", "coarse", "fine", "audio"):
            assert np.array_equal(getattr(got, key), getattr(want, key)), key
    assert takes[0].random_weights and server.url in takes[0].model_id
    kinds = {type(e) for e in events}
    assert {StageStarted, StageProgress, StageFinished} <= kinds  # the bars fill as locally
    assert remote.count_tokens("Two takes, please.") == local_engine.count_tokens(
        "Two takes, please.")


def test_a_voice_of_this_machine_goes_inline(server, local_engine, tmp_path):
    take = local_engine.generate("Make me a voice.", None, GenerationOptions(**SHORT, seed=1))
    path = take.voice_prompt().save_npz(tmp_path / "mine.npz")
    remote = RemoteEngine(server.url)
    got = remote.generate("Now in that voice.", str(path), GenerationOptions(**SHORT, seed=2))
    want = local_engine.generate("Now in that voice.", str(path),
                                 GenerationOptions(**SHORT, seed=2))
    assert np.array_equal(got.fine, want.fine)
    # an audition travels as a 16-bit WAV
    heard = np.frombuffer(pcm16_bytes(local_engine.audition(str(path))), "<i2") / 32768.0
    assert np.array_equal(remote.audition(str(path)), heard.astype(np.float32))


def test_cancel_reaches_the_server_between_tokens(server):
    remote = RemoteEngine(server.url)
    cancel = threading.Event()
    started = threading.Event()

    def on_event(event):
        if isinstance(event, StageProgress):
            started.set()

    threading.Thread(target=lambda: started.wait(30) and cancel.set(), daemon=True).start()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        remote.generate("A long one. " * 20, None, GenerationOptions(seed=1), on_event=on_event,
                        cancel=cancel)
    assert time.perf_counter() - t0 < 30
    again = remote.generate("Still serving.", None, GenerationOptions(**SHORT, seed=3))
    assert len(again.audio) > 0


def test_a_server_killed_mid_job_is_one_clear_error(tiny_models, tmp_path):
    proc = ServerProcess(tiny_models, tmp_path / "home").start()
    try:
        remote = RemoteEngine(proc.url)
        remote.load()

        def kill_on_progress(event):
            if isinstance(event, StageProgress):
                proc.kill()

        with pytest.raises(ConnectionLost, match="lost the connection to"):
            remote.generate("Going, going. " * 10, None, GenerationOptions(seed=1),
                            on_event=kill_on_progress)
        with pytest.raises(RemoteError, match="no Bark server at"):
            RemoteEngine(proc.url).load()
    finally:
        proc.stop()


def test_say_with_server_writes_the_local_wav(server, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("BARK_TUI_HOME", str(tmp_path / "home"))
    common = ["say", "Same bytes either way.", "--voice", "v2/en_speaker_6", "--seed", "8",
              "--max-duration", "1"]
    assert main([*common, "--server", server.url, "--out", str(tmp_path / "remote.wav")]) == 0
    assert main([*common, "--models", str(tiny_models), "--device", "cpu",
                 "--out", str(tmp_path / "local.wav")]) == 0
    assert (tmp_path / "remote.wav").read_bytes() == (tmp_path / "local.wav").read_bytes()


def test_voices_and_info_with_server(server, capsys):
    assert main(["voices", "--server", server.url, "--json"]) == 0
    names = {v["name"] for v in json.loads(capsys.readouterr().out)}
    assert "v2/en_speaker_6" in names
    assert main(["info", "--server", server.url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["server"]
    assert info["reachable"] and info["engine"]["device"] == "cpu"
    assert info["queue"]["size"] == 8


def test_a_wrong_key_no_server_and_an_old_server_each_get_one_line(keyed_server, capsys):
    assert main(["say", "hi", "--server", keyed_server.url]) == 2
    assert "wants a key" in capsys.readouterr().err
    assert main(["say", "hi", "--server", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Bark server at" in err[0] and "ssh -L" in err[0]

    class Old(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = json.dumps({"status": "ok", "app": "bark-tui", "api_version": 0}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    old = http.server.HTTPServer(("127.0.0.1", 0), Old)
    thread = threading.Thread(target=old.handle_request, daemon=True)
    thread.start()
    try:
        assert main(["say", "hi", "--server", f"http://127.0.0.1:{old.server_port}"]) == 2
        assert "speaks API version 0" in capsys.readouterr().err
    finally:
        thread.join(10)
        old.server_close()
