"""What travels between `bark-tui serve` and its clients, in one place.

The server and the remote client both import this module (numpy and the
engine's plain dataclasses only: no web framework), so an event, a voice or
a set of options is written one way and read back the same way.

- Events: the engine's frozen dataclasses as JSON objects, `{"event": name, …fields}`.
- Voices: a name (a preset, a My-voices name on the server) or an inline
  `.npz` (`{"npz": base64}`), read back with the strict loader.
- Options: `GenerationOptions` fields, each checked for type and range.
- Errors: `{"error": {"message", "type"}}` with the HTTP status in `ERROR_TYPES`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from bark_engine.config import MAX_SEMANTIC_STEPS
from bark_engine.errors import BadInputError, VoiceError
from bark_engine.events import Event, LoadProgress, StageFinished, StageProgress, StageStarted
from bark_engine.options import GenerationOptions
from bark_engine.voices.prompts import VoicePrompt

# Raised whenever the wire format changes in a way an older peer misreads;
# `/health` says it and the client refuses a server with another one.
API_VERSION = 1
DEFAULT_PORT = 8765
MAX_VOICE_BYTES = 4 * 1024 * 1024  # an inline or uploaded voice .npz (a preset is ~60 KB)

_EVENT_NAMES: dict[type, str] = {
    LoadProgress: "load",
    StageStarted: "stage_started",
    StageProgress: "stage_progress",
    StageFinished: "stage_finished",
}
_EVENT_TYPES = {name: cls for cls, name in _EVENT_NAMES.items()}

# HTTP status → the `type` of an error body (OpenAI's names where it has one).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    500: "server_error",
    503: "server_busy",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error")}}


# ---- events -------------------------------------------------------------------------


def event_to_wire(event: Event) -> dict[str, Any]:
    """An engine event as a JSON object (tuples become lists)."""
    name = _EVENT_NAMES.get(type(event))
    if name is None:
        raise TypeError(f"not an engine event: {type(event).__name__}")
    body = asdict(event)
    for key, value in body.items():
        if isinstance(value, tuple):
            body[key] = list(value)
    return {"event": name, **body}


def is_engine_event(name: str) -> bool:
    return name in _EVENT_TYPES


def event_from_wire(body: Mapping[str, Any]) -> Event:
    """The dataclass back from `event_to_wire`'s object (unknown keys are dropped,
    so a newer server's extra fields do not break an older client)."""
    cls = _EVENT_TYPES.get(body.get("event", ""))
    if cls is None:
        raise ValueError(f"not an engine event: {body.get('event')!r}")
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in body.items() if k in names}
    if "segments" in values:
        values["segments"] = tuple(values["segments"])
    return cls(**values)


# ---- arrays and voices ------------------------------------------------------------


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """An uncompressed `.npz` in memory (what `np.savez` writes to a file)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def read_npz_bytes(data: bytes, keys: tuple[str, ...], label: str) -> dict[str, np.ndarray]:
    """Named arrays of an in-memory `.npz`, never unpickling; ValueError names what is wrong."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise ValueError(f"{label}: missing {', '.join(missing)}")
            return {k: npz[k] for k in keys}
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{label}: not a readable .npz: {exc}") from exc


def voice_to_wire(voice: VoicePrompt | str | None) -> str | dict[str, str] | None:
    """A voice for a request: names go as they are, a prompt goes inline."""
    if voice is None or isinstance(voice, str):
        return voice
    return {"npz": base64.b64encode(npz_bytes(**voice.as_dict())).decode("ascii"),
            "name": voice.name or ""}


def voice_from_wire(value: Any, label: str = "voice") -> VoicePrompt | str | None:
    """A request's voice: None, a name (checked by the caller against its folders), or
    an inline `.npz` loaded strictly (size, zip header, no pickle, shapes, ranges)."""
    if value is None or isinstance(value, str):
        return value or None
    if not isinstance(value, Mapping) or not isinstance(value.get("npz"), str):
        raise VoiceError(f"{label}: give a voice name or {{\"npz\": base64}}")
    text = value["npz"]
    if len(text) > MAX_VOICE_BYTES * 4 // 3 + 4:
        raise VoiceError(f"{label}: the voice is over {MAX_VOICE_BYTES // 1024} KB")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VoiceError(f"{label}: the npz field is not base64") from None
    name = value.get("name") if isinstance(value.get("name"), str) else ""
    return VoicePrompt.from_npz_bytes(data, name=name[:64], label=label,
                                      max_bytes=MAX_VOICE_BYTES)


# ---- options ------------------------------------------------------------------------

_FLOAT_OR_NONE = ("text_temp", "waveform_temp", "fine_temp", "top_p", "min_eos_p",
                  "max_duration_s")
_PROBABILITIES = ("top_p", "min_eos_p")


def options_to_wire(options: GenerationOptions) -> dict[str, Any]:
    return asdict(options)


def options_from_wire(values: Any, base: GenerationOptions | None = None) -> GenerationOptions:
    """`GenerationOptions` from a request's object, every field checked: an unknown
    key, a wrong type or a value out of range is a BadInputError naming it."""
    base = base or GenerationOptions()
    if values is None:
        return base
    if not isinstance(values, Mapping):
        raise BadInputError("options must be an object")
    known = {f.name for f in fields(GenerationOptions)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise BadInputError(f"unknown option {unknown[0]!r}; known: {', '.join(sorted(known))}")
    out = asdict(base)
    for key, value in values.items():
        if key in _FLOAT_OR_NONE:
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) \
                        or not math.isfinite(value) or value < 0:
                    raise BadInputError(f"{key} must be a number ≥ 0 or null")
                if key in _PROBABILITIES and value > 1:
                    raise BadInputError(f"{key} must be between 0 and 1")
                value = float(value)
        elif key == "top_k":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise BadInputError("top_k must be an integer ≥ 1 or null")
        elif key == "max_semantic_steps":
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 1 <= value <= MAX_SEMANTIC_STEPS:
                raise BadInputError(f"max_semantic_steps must be 1..{MAX_SEMANTIC_STEPS}")
        elif key == "seed":
            value = seed_from_wire(value)
        elif key == "allow_early_stop" and not isinstance(value, bool):
            raise BadInputError("allow_early_stop must be true or false")
        out[key] = value
    return GenerationOptions(**out)


def seed_from_wire(value: Any, key: str = "seed") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise BadInputError(f"{key} must be an integer ≥ 0 or null")
    return value


def positive_int(body: Mapping[str, Any], key: str) -> int | None:
    """An optional integer ≥ 1 of a request (`batch`, `reset_every`)."""
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise BadInputError(f"{key} must be an integer ≥ 1")
    return value
