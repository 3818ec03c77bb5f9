"""OpenAI's speech API on a real server, through the official `openai` client."""

from __future__ import annotations

import base64
import json
import urllib.request

import numpy as np
import pytest

from bark_engine.audio import pcm16_bytes
from bark_engine.options import GenerationOptions
from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.render import RenderOptions, ScriptRenderer
from bark_engine.scripts.script import ScriptOptions
from bark_tui.service.speech import OPENAI_VOICES

from .conftest import SHORT

openai = pytest.importorskip("openai")

TWO_SEGMENTS = "Hello there, this is the first part.\n\nAnd after a pause, the second part."


def client(server, key: str = "unused"):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=60)


def local_render(engine, text: str, voice: str | None, seed: int) -> np.ndarray:
    """What `bark-tui render` makes of the text on this machine."""
    script = parse_script(text, ScriptOptions(default_voice=voice), engine.count_tokens)
    renderer = ScriptRenderer(engine, RenderOptions(
        generation=GenerationOptions(**SHORT), seed=seed, default_voice=voice))
    return renderer.render(script).audio


def test_wav_from_the_openai_client_equals_a_local_render(server, local_engine):
    response = client(server).audio.speech.create(
        model="tts-1", voice="alloy", input=TWO_SEGMENTS, response_format="wav",
        extra_body={"bark": {"seed": 11, "options": SHORT}})
    data = response.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert int.from_bytes(data[40:44], "little") == len(data) - 44
    expected = local_render(local_engine, TWO_SEGMENTS, OPENAI_VOICES["alloy"], 11)
    assert data[44:] == pcm16_bytes(expected)


def test_streamed_pcm_is_samples_times_two_and_equals_a_local_render(server, local_engine):
    chunks = []
    with client(server).audio.speech.with_streaming_response.create(
            model="bark", voice="v2/en_speaker_6", input=TWO_SEGMENTS, response_format="pcm",
            stream_format="audio", extra_body={"bark": {"seed": 5, "options": SHORT}}) as r:
        assert r.headers["content-type"].startswith("audio/pcm")
        chunks = list(r.iter_bytes())
    pcm = b"".join(chunks)
    expected = local_render(local_engine, TWO_SEGMENTS, "v2/en_speaker_6", 5)
    assert len(pcm) == len(expected) * 2
    assert pcm == pcm16_bytes(expected)


def test_sse_deltas_rebuild_the_audio_and_end_with_done(server, local_engine):
    body = json.dumps({"model": "bark", "input": TWO_SEGMENTS, "voice": "v2/en_speaker_6",
                       "response_format": "pcm", "stream_format": "sse",
                       "bark": {"seed": 5, "options": SHORT}}).encode()
    req = urllib.request.Request(f"{server.url}/v1/audio/speech", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        text = resp.read().decode()
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert pcm == pcm16_bytes(local_render(local_engine, TWO_SEGMENTS, "v2/en_speaker_6", 5))
    assert events[-1]["usage"]["output_tokens"] == len(pcm) // 2


@pytest.mark.parametrize(("fmt", "rate", "mime"), [
    ("mp3", 44100, "audio/mpeg"), ("opus", 48000, "audio/ogg"), ("flac", 24000, "audio/flac")])
def test_encoded_formats_decode_to_the_local_render(server, local_engine, fmt, rate, mime):
    import io

    import soundfile as sf

    from bark_tui.finish.resample import resample

    r = client(server).audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input="Just 3 words.", response_format=fmt,
        extra_body={"bark": {"seed": 4, "options": SHORT}})
    assert r.headers["content-type"].startswith(mime)
    audio, got_rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert got_rate == rate
    # the words were read aloud before Bark got them: "three", as a local render with it
    from bark_tui.text.rewrite import Rewriter

    script = parse_script("Just 3 words.", ScriptOptions(default_voice=OPENAI_VOICES["alloy"],
                                                         rewrite=Rewriter()))
    assert script.segments[0].text == "Just three words."
    expected = resample(local_render(local_engine, "Just three words.",
                                     OPENAI_VOICES["alloy"], 4), 24000, rate)
    if fmt == "flac":
        assert np.max(np.abs(audio - np.clip(expected, -1, 1))) < 1e-4
    else:
        assert len(expected) <= len(audio) <= len(expected) + 4000  # encoder delay


def test_encoded_formats_do_not_stream(server):
    with pytest.raises(openai.BadRequestError) as info:
        client(server).audio.speech.create(model="bark", voice="alloy", input="Hi.",
                                           response_format="mp3", stream_format="audio")
    assert "whole file only" in info.value.body["message"]


def test_models_and_voices_lists(server):
    names = {m.id for m in client(server).models.list()}
    assert {"bark", "bark-small", "tts-1", "tts-1-hd"} <= names
    with urllib.request.urlopen(f"{server.url}/v1/audio/voices", timeout=30) as resp:
        voices = json.load(resp)["voices"]
    kinds = {v["id"]: v["kind"] for v in voices}
    assert kinds["v2/en_speaker_6"] == "preset"
    assert kinds["nova"] == "openai"


@pytest.mark.parametrize(("field", "value", "says"), [
    ("response_format", "aac", "not supported by this server yet"),
    ("speed", 1.5, "speed other than 1.0"),
    ("model", "whisper-1", "unknown model"),
    ("voice", "../../etc/passwd", "unsafe voice name"),
    ("voice", "/etc/hosts.npz", "unsafe voice name"),
    ("voice", "notes.npz", "reads no voice files by path"),
    ("stream_format", "chunks", "unknown stream_format"),
])
def test_bad_requests_get_one_json_line(server, field, value, says):
    request = {"model": "bark", "input": "Hello.", "voice": "alloy", field: value}
    with pytest.raises(openai.BadRequestError) as info:
        client(server).audio.speech.create(**request)
    assert info.value.status_code == 400
    error = info.value.body
    assert says in error["message"] and error["type"] == "invalid_request_error"
    assert "Traceback" not in json.dumps(error)
