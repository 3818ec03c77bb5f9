"""The OpenAI speech API on top of the job board: request fields, voices, audio bytes.

`POST /v1/audio/speech` takes OpenAI's fields (`model`, `input`, `voice`,
`response_format`, `speed`, `stream_format`) and Bark's own in an optional
`bark` object. Its input is cut into segments exactly as `bark-tui render`
cuts a script, so a long text works and its first segment can stream while
the rest is made.

OpenAI's voice names map to presets by `OPENAI_VOICES` (the server's
`--voice-map F.json` overrides any of them); a preset id or a My-voices name
on the server works as it is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bark_engine.audio import pcm16_bytes, segment_piece, wav_header
from bark_engine.config import SAMPLE_RATE
from bark_engine.errors import BadInputError
from bark_engine.scripts.render import FADE_S

from .config import MAX_INPUT_CHARS
from .work import ScriptWork, SegmentResult, work_from_body

# The model names a request may give. One server runs one model size; these
# are all accepted so that clients written for OpenAI work unchanged.
MODEL_NAMES = ("bark", "bark-small", "bark-large", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")

# OpenAI's voices → Bark presets. The English presets are nine male voices and
# one female one (en_speaker_9), so OpenAI's female voices share it; a
# `--voice-map` file can point any of them at another preset or a My-voices name.
OPENAI_VOICES: dict[str, str] = {
    "alloy": "v2/en_speaker_6", "ash": "v2/en_speaker_1", "ballad": "v2/en_speaker_2",
    "cedar": "v2/en_speaker_8", "coral": "v2/en_speaker_9", "echo": "v2/en_speaker_3",
    "fable": "v2/en_speaker_5", "marin": "v2/en_speaker_9", "nova": "v2/en_speaker_9",
    "onyx": "v2/en_speaker_0", "sage": "v2/en_speaker_9", "shimmer": "v2/en_speaker_9",
    "verse": "v2/en_speaker_4",
}

FORMATS = ("wav", "pcm", "mp3", "opus", "flac")  # what this server encodes
STREAMED_FORMATS = ("wav", "pcm")  # what it sends segment by segment
LATER_FORMATS = ("aac",)  # OpenAI's others: refused with a hint
# Encoded whole files: the extension that picks `bark_tui.finish.formats`' writer.
ENCODED = {"mp3": ".mp3", "opus": ".opus", "flac": ".flac"}
DEFAULT_FORMAT = "wav"  # OpenAI's default is mp3, which this server cannot write
CONTENT_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "mp3": "audio/mpeg",
                 "opus": "audio/ogg", "flac": "audio/flac"}
STREAM_FORMATS = ("audio", "sse")
BARK_FIELDS = ("seed", "long_form", "chain", "reset_every", "batch", "options", "speakers",
               "normalize")


def load_voice_map(path: Path) -> dict[str, str]:
    """An override table `{"nova": "v2/en_speaker_9", …}` from a JSON file."""
    try:
        table = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot read the voice map {path}: {exc}") from None
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in table.items()):
        raise BadInputError(f"the voice map {path} must be a JSON object of names to voices")
    return {k.lower(): v.strip() for k, v in table.items()}


@dataclass(frozen=True)
class SpeechRequest:
    work: ScriptWork
    response_format: str
    stream_format: str | None  # None: the whole file in one response
    input_chars: int


def parse_speech(body: Any, voice_map: Mapping[str, str]) -> SpeechRequest:
    """An OpenAI speech request body → the job it is; BadInputError names a bad field."""
    if not isinstance(body, Mapping):
        raise BadInputError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or model not in MODEL_NAMES:
        raise BadInputError(f"unknown model {model!r}: use one of {', '.join(MODEL_NAMES)}")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise BadInputError("input must be non-empty text")
    if len(text) > MAX_INPUT_CHARS:
        raise BadInputError(f"input is {len(text)} characters; at most {MAX_INPUT_CHARS}")
    fmt = body.get("response_format") or DEFAULT_FORMAT
    if fmt in LATER_FORMATS:
        raise BadInputError(f"response_format {fmt!r} is not supported by this server yet: "
                            f"use {' or '.join(FORMATS)}")
    if fmt not in FORMATS:
        raise BadInputError(f"unknown response_format {fmt!r}: use {' or '.join(FORMATS)}")
    speed = body.get("speed", 1.0)
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, int | float)
                              or speed != 1.0):
        raise BadInputError("speed other than 1.0 is not supported (Bark has no time-stretch "
                            "yet); leave it out")
    stream = body.get("stream_format")
    if stream is not None and stream not in STREAM_FORMATS:
        raise BadInputError(f"unknown stream_format {stream!r}: use audio or sse")
    if stream is not None and fmt not in STREAMED_FORMATS:
        raise BadInputError(f"response_format {fmt!r} comes as a whole file only: stream "
                            f"{' or '.join(STREAMED_FORMATS)}, or leave stream_format out")
    bark = body.get("bark") or {}
    if not isinstance(bark, Mapping):
        raise BadInputError("bark must be an object of Bark's own settings")
    unknown = sorted(set(bark) - set(BARK_FIELDS))
    if unknown:
        raise BadInputError(f"unknown bark setting {unknown[0]!r}; known: {', '.join(BARK_FIELDS)}")
    work = work_from_body({**bark, "text": text, "voice": _voice(body.get("voice"), voice_map)})
    assert isinstance(work, ScriptWork)  # no takes or rows among BARK_FIELDS
    return SpeechRequest(work, fmt, stream, len(text))


def _voice(value: Any, voice_map: Mapping[str, str]) -> Any:
    """A request's `voice` with OpenAI's names mapped to ours (`voice_map`: the table
    with the server's overrides, `voice_map_table`); `{"id": …}` names a
    voice too, and `{"npz": …}` (an inline prompt) passes as it is."""
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        value = value["id"]
    if isinstance(value, str) and value.strip():
        name = value.strip()
        return voice_map.get(name.lower(), name)
    return value


def voice_map_table(overrides: Mapping[str, str]) -> dict[str, str]:
    return {**OPENAI_VOICES, **{k.lower(): v for k, v in overrides.items()}}


# ---- audio bytes --------------------------------------------------------------------


def piece_bytes(seg: SegmentResult) -> bytes:
    """The segment as it sits in the joined audio (its pause, faded edges), as PCM."""
    return pcm16_bytes(segment_piece(seg.audio, seg.pause_before_s, SAMPLE_RATE, FADE_S))


def stream_chunks(fmt: str, pieces: Iterator[bytes]) -> Iterator[bytes]:
    """A WAV (header of unknown length first) or raw PCM, piece by piece."""
    if fmt == "wav":
        yield wav_header(SAMPLE_RATE, None)
    yield from pieces


def whole_file(fmt: str, audio) -> bytes:
    """The whole answer: WAV or raw PCM as made (24 kHz), or an encoded file at the
    format's usual rate (MP3 44.1 kHz 192k CBR, Opus 48 kHz, FLAC 24 kHz)."""
    if fmt in ENCODED:
        import tempfile
        from pathlib import Path

        from ..finish.formats import choose_encoding, write_audio
        from ..finish.resample import resample

        with tempfile.TemporaryDirectory(prefix="bark-speech-") as folder:
            path = Path(folder) / f"speech{ENCODED[fmt]}"
            encoding = choose_encoding(path)
            write_audio(path, resample(audio, SAMPLE_RATE, encoding.rate), encoding)
            return path.read_bytes()
    pcm = pcm16_bytes(audio)
    return wav_header(SAMPLE_RATE, len(pcm)) + pcm if fmt == "wav" else pcm


def sse_delta(chunk: bytes) -> str:
    body = {"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")}
    return f"event: speech.audio.delta\ndata: {json.dumps(body)}\n\n"


def sse_done(input_chars: int, samples: int) -> str:
    usage = {"input_tokens": input_chars, "output_tokens": samples,
             "total_tokens": input_chars + samples}
    body = {"type": "speech.audio.done", "usage": usage}
    return f"event: speech.audio.done\ndata: {json.dumps(body)}\n\n"
