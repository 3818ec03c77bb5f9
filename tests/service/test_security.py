"""The service's safety rules, on real processes: keys, binds, uploads, names, errors."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import subprocess
import sys
from urllib.parse import quote, urlsplit

import numpy as np
import pytest

from tests.engine.voice_arrays import make_arrays


def call(server, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict, dict]:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = {"raw": data[:100]}
    return resp.status, dict(resp.getheaders()), parsed


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def serve_cmd(models, *extra) -> list[str]:
    return [sys.executable, "-m", "bark_tui", "serve", "--models", str(models), "--device",
            "cpu", "--port", "0", *extra]


def test_every_endpoint_but_health_needs_the_key(keyed_server, key_file):
    key = key_file.read_text().strip()
    assert call(keyed_server, "GET", "/health")[0] == 200
    for path in ("/v1/models", "/v1/audio/voices", "/v1/bark/info", "/v1/bark/jobs"):
        status, headers, body = call(keyed_server, "GET", path)
        assert status == 401, path
        assert body["error"]["type"] == "authentication_error"
        assert headers.get("www-authenticate") == "Bearer"
        assert call(keyed_server, "GET", path, headers={"Authorization": "Bearer nope"})[0] == 401
        assert call(keyed_server, "GET", path,
                    headers={"Authorization": f"Bearer {key}"})[0] == 200
    status, _, _ = call(keyed_server, "POST", "/v1/audio/speech",
                        json.dumps({"model": "bark", "input": "hi"}).encode())
    assert status == 401


def test_the_openai_client_with_the_key(keyed_server, key_file):
    openai = pytest.importorskip("openai")
    key = key_file.read_text().strip()
    good = openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key=key, max_retries=0)
    assert "bark" in {m.id for m in good.models.list()}
    bad = openai.OpenAI(base_url=f"{keyed_server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_a_network_address_without_a_key_is_refused(tiny_models, tmp_path):
    done = subprocess.run(serve_cmd(tiny_models, "--host", "0.0.0.0"), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "without a key" in lines[0] and "secrets.token_urlsafe" in lines[0]


def test_a_key_file_others_can_read_is_refused(tiny_models, tmp_path):
    key = tmp_path / "open.key"
    key.write_text("a" * 40)
    os.chmod(key, 0o644)
    done = subprocess.run(serve_cmd(tiny_models, "--api-key-file", str(key)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "chmod 600" in done.stderr


def test_pickled_or_malformed_voice_uploads_are_refused_and_nothing_is_written(server):
    voices = server.home / "voices"
    pickled = npz(semantic_prompt=np.array([{"x": 1}], dtype=object),
                  coarse_prompt=np.zeros((2, 3), np.int64), fine_prompt=np.zeros((8, 3), np.int64))
    good = make_arrays()
    out_of_range = npz(**{**good, "coarse_prompt": good["coarse_prompt"] + 5000})
    for body in (pickled, b"PK\x03\x04 not really a zip", b"\x93NUMPY...", out_of_range):
        status, _, reply = call(server, "PUT", "/v1/bark/voices/evil", body)
        assert status == 400, reply
        assert reply["error"]["type"] == "invalid_request_error"
        b64 = base64.b64encode(body).decode()
        status, _, reply = call(server, "POST", "/v1/audio/speech", json.dumps(
            {"model": "bark", "input": "Hi.", "voice": {"npz": b64}}).encode())
        assert status == 400, reply
    assert not voices.exists() or not any(voices.iterdir())


def test_an_upload_over_the_limit_is_413(server):
    status, _, reply = call(server, "PUT", "/v1/bark/voices/big", b"PK\x03\x04" + b"0" * (9 << 20))
    assert status == 413 and reply["error"]["type"] == "request_too_large"


def test_voice_names_never_leave_their_folder(server, tmp_path):
    body = npz(**make_arrays())
    for name in ("../escape", "..", "a/b", "~root", "x\x01y"):
        status, _, reply = call(server, "PUT", f"/v1/bark/voices/{quote(name, safe='')}", body)
        assert status in (400, 404), (name, status, reply)
    outside = server.home.parent
    assert not list(outside.glob("escape*"))
    status, _, reply = call(server, "PUT", "/v1/bark/voices/Narrator", body)
    assert status == 200 and (server.home / "voices").is_dir()
    assert [p.name for p in (server.home / "voices").iterdir()] == ["Narrator.npz"]
    status, _, reply = call(server, "PUT", "/v1/bark/voices/Narrator", body)
    assert status == 409  # no silent overwrite


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("POST", "/v1/audio/speech", b"{not json", 400),
    ("POST", "/v1/bark/jobs", b"[1, 2]", 400),
    ("POST", "/v1/bark/jobs", json.dumps({"text": "hi", "options": {"top_p": 3}}).encode(), 400),
    ("POST", "/v1/bark/jobs", json.dumps({"text": "hi", "options": {"warp": 1}}).encode(), 400),
    ("POST", "/v1/bark/jobs", json.dumps({"text": "hi", "takes": 99}).encode(), 400),
    ("GET", "/v1/bark/jobs/nope/events", None, 404),
    ("GET", "/v1/bark/jobs/nope/events?after=x", None, 422),
    ("GET", "/no/such/route", None, 404),
    ("DELETE", "/v1/models", None, 405),
])
def test_errors_are_json_with_a_type_never_a_traceback(server, method, path, body, status):
    got, _, reply = call(server, method, path, body)
    assert got == status, reply
    assert set(reply["error"]) == {"message", "type"}
    assert "Traceback" not in reply["error"]["message"]


def test_voice_bombs_are_refused_before_they_unpack(server):
    import zipfile

    good = make_arrays()
    bomb = io.BytesIO()  # 64 MB of zeros in a few KB
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for key in ("semantic_prompt", "coarse_prompt"):
            buf = io.BytesIO()
            np.save(buf, good[key])
            z.writestr(f"{key}.npy", buf.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False,
                                                      "shape": (8, 1 << 20)})
        z.writestr("fine_prompt.npy", header.getvalue() + bytes(64 << 20))
    liar = io.BytesIO()  # a header that declares 10^12 values over a few bytes of data
    with zipfile.ZipFile(liar, "w") as z:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<i8", "fortran_order": False,
                                                      "shape": (10**12,)})
        z.writestr("semantic_prompt.npy", header.getvalue() + b"\0" * 64)
    for body, says in ((bomb.getvalue(), "unpacks to"), (liar.getvalue(), "declares shape")):
        assert len(body) < 1 << 20
        status, _, reply = call(server, "PUT", "/v1/bark/voices/bomb", body)
        assert status == 400 and says in reply["error"]["message"], reply


def test_without_a_key_only_local_hosts_and_json_bodies_are_served(server):
    status, _, reply = call(server, "GET", "/v1/models", headers={"Host": "evil.example:8765"})
    assert status == 400 and "127.0.0.1 or localhost" in reply["error"]["message"]
    for host in ("localhost:1234", "127.0.0.1", "[::1]:8765"):
        assert call(server, "GET", "/v1/models", headers={"Host": host})[0] == 200, host
    status, _, reply = call(server, "POST", "/v1/audio/speech",
                            json.dumps({"model": "bark", "input": "hi"}).encode(),
                            headers={"Content-Type": "text/plain"})
    assert status == 400 and "Content-Type: application/json" in reply["error"]["message"]


def test_a_port_in_use_is_one_line(server, tiny_models):
    port = server.url.rsplit(":", 1)[1]
    done = subprocess.run(serve_cmd(tiny_models)[:-1] + [port], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"bark-tui: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another bark-tui serve? pick another --port)"]
