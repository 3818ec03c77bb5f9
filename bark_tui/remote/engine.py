"""`RemoteEngine`: a `bark-tui serve` process behind the interface of the local `Engine`.

The studio and the CLI take either; everything above them (events, cancel,
several takes, long scripts through `ScriptRenderer`, play-while-generating)
works unchanged. What stays here: the history, My voices, settings and the
speakers; what runs there: the GPTs and the codec.

- A batch is one job of rows on the server; its events come back as the
  engine's own event dataclasses, so progress bars fill as they do locally.
- Cancelling sets the usual `threading.Event`; a watcher sends DELETE and the
  server stops at its next token. A dropped stream cancels the job there too.
- Texts are tokenized here with the server's own vocabulary (fetched once),
  so cutting a script costs no round trips.
- Presets go by name (the server has them); any other voice (a `.npz`, a My
  voice, a take's history) goes inline and is checked there like an upload.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bark_engine.audio import read_wav_bytes
from bark_engine.config import MAX_BATCH, SAMPLE_RATE
from bark_engine.errors import BadInputError, Cancelled, VoiceError
from bark_engine.events import EventCallback, LoadProgress, ignore_event
from bark_engine.options import GenerationOptions, Request, VoiceArg
from bark_engine.voices.catalog import is_preset_name, resolve_voice_arg
from bark_engine.voices.prompts import VoicePrompt

from ..service.wire import (
    event_from_wire,
    is_engine_event,
    options_to_wire,
    read_npz_bytes,
    voice_to_wire,
)
from .http import Connection, ConnectionLost, RemoteError, path_part

CANCEL_POLL_S = 0.05
_SEGMENT_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt", "audio")


class RemoteEngine:
    """The engine of a `bark-tui serve` at `url`, used as if it were local."""

    def __init__(self, url: str, key: str | None = None, *,
                 user_voices_dir: Path | None = None) -> None:
        self.connection = Connection(url, key)
        self.url = self.connection.url
        self.user_voices_dir = user_voices_dir
        self._lock = threading.RLock()
        self._info: dict[str, Any] | None = None
        self._tokenizer = None
        self._presets: dict[str, VoicePrompt] = {}

    # ---- what the server is --------------------------------------------------------
    def load(self, on_event: EventCallback = ignore_event) -> None:
        """Reach the server, check it speaks our API, read what it runs, and load its
        tokenizer here. The server loads its models on its first job (or at start)."""
        if self._info is not None and self._tokenizer is not None:
            return  # the fast path takes no lock: the UI thread asks this
        with self._lock:
            if self._info is not None and self._tokenizer is not None:
                return
            on_event(LoadProgress("server", 0, 1, f"connecting to {self.url}"))
            self.connection.health()
            info = self.connection.json("GET", "/v1/bark/info")
            self._load_tokenizer()
            self._info = info
            on_event(LoadProgress("server", 1, 1, f"connected to {self.url}"))

    def load_codec(self, on_event: EventCallback = ignore_event) -> None:
        self.load(on_event)

    def _load_tokenizer(self) -> None:
        from bark_engine.loading.checkpoints import load_tokenizer

        vocab = self.connection.request("GET", "/v1/bark/vocab.txt")
        folder = Path(tempfile.mkdtemp(prefix="bark-vocab-"))
        try:
            (folder / "vocab.txt").write_bytes(vocab)
            self._tokenizer = load_tokenizer(folder / "vocab.txt")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _engine_info(self) -> dict[str, Any]:
        self.load()
        return self._info["engine"]

    @property
    def loaded(self) -> bool:
        return self._info is not None

    @property
    def server(self) -> str:
        return self.url

    @property
    def random_weights(self) -> bool:
        return bool(self._engine_info()["random_weights"])

    @property
    def model_id(self) -> str:
        """The server's model id and the server: takes record which server made them."""
        return f"{self._engine_info()['model']} @ {self.url}"

    @property
    def device(self) -> str:
        host = self.url.split("://", 1)[1]
        return f"{self._engine_info()['device']} on {host}"

    @property
    def size(self) -> str:
        """The server's model size ("small" or "large")."""
        self.load()
        return self._info["models"]["size"]

    @property
    def dtype_name(self) -> str:
        return self._engine_info()["dtype"]

    @property
    def step_path(self) -> str:
        return f"{self._engine_info()['steps']} (server)"

    @property
    def precision_advice(self) -> str | None:
        return self._engine_info().get("advice")

    @property
    def default_batch(self) -> int:
        return int(self._engine_info()["default_batch"])

    @property
    def uses_kernels(self) -> bool:
        return False  # nothing runs here

    # ---- text and voices -----------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        from bark_engine.engine import normalize_text

        self.load()
        return list(self._tokenizer.encode(normalize_text(text), add_special_tokens=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def check_text(self, text: str) -> list[int]:
        from bark_engine.engine import checked_text_ids

        return checked_text_ids(text, self.tokenize)

    def resolve_voice(self, voice: VoiceArg) -> VoicePrompt | None:
        """A `.npz` path or a My voice of this machine; a preset (or a voice only the
        server keeps) from the server."""
        if voice is None or isinstance(voice, VoicePrompt):
            return voice
        text = str(voice).strip()
        local = text.lower().endswith(".npz") or (
            self.user_voices_dir is not None and not is_preset_name(text)
            and _has_user_voice(self.user_voices_dir, text))
        if local:
            return resolve_voice_arg(text, _no_fetch, self.user_voices_dir)
        cached = self._presets.get(text)
        if cached is not None:
            return cached
        data = self.connection.request("GET", f"/v1/bark/voices/{path_part(text)}.npz")
        try:
            prompt = VoicePrompt.from_npz_bytes(data, name=text, label=text)
        except VoiceError as exc:
            raise RemoteError(f"the server sent a bad voice: {exc}") from None
        with self._lock:
            return self._presets.setdefault(text, prompt)

    def _voice_wire(self, voice: VoiceArg) -> Any:
        """Presets by name, everything else inline (the server checks it)."""
        if isinstance(voice, VoicePrompt):
            for name, prompt in list(self._presets.items()):
                if prompt is voice:
                    return name
            return voice_to_wire(voice)
        if voice is None:
            return None
        text = str(voice).strip()
        if is_preset_name(text):
            return text
        return voice_to_wire(self.resolve_voice(text))

    # ---- generation ------------------------------------------------------------------
    def generate(self, text: str, voice: VoiceArg = None,
                 options: GenerationOptions | None = None,
                 on_event: EventCallback = ignore_event,
                 cancel: threading.Event | None = None, segment: int = 0):
        request = Request(text, voice, options or GenerationOptions(), segment)
        return self.generate_batch([request], on_event=on_event, cancel=cancel)[0]

    def generate_takes(self, text: str, voice: VoiceArg = None,
                       options: GenerationOptions | None = None, *, seeds: Sequence[int],
                       on_event: EventCallback = ignore_event,
                       cancel: threading.Event | None = None, segment: int = 0):
        if isinstance(seeds, (int, str, bytes)):
            raise BadInputError("seeds must be a sequence of integers, one per take")
        options = options or GenerationOptions()
        requests = [Request(text, voice, replace(options, seed=int(s)), segment) for s in seeds]
        return self.generate_batch(requests, on_event=on_event, cancel=cancel)

    def generate_batch(self, requests: Sequence[Request], on_event: EventCallback = ignore_event,
                       cancel: threading.Event | None = None) -> list:
        """One job of rows on the server; generation i equals the server's
        `generate` for request i (the same seed gives the same tokens)."""
        import secrets

        from bark_engine.engine import Generation, voice_label
        from bark_engine.stages.runner import StageTiming

        if not 1 <= len(requests) <= MAX_BATCH:
            raise BadInputError(f"a batch holds 1..{MAX_BATCH} takes, got {len(requests)}")
        self.load(on_event)
        seeded = [replace(r, options=replace(r.options, seed=secrets.randbelow(2**31)))
                  if r.options.seed is None else r for r in requests]
        for r in seeded:
            self.check_text(r.text)
        rows = [{"text": r.text, "voice": self._voice_wire(r.voice),
                 "options": options_to_wire(r.options), "segment": r.segment} for r in seeded]
        if cancel is not None and cancel.is_set():
            raise Cancelled("generation cancelled")
        job = self.connection.json("POST", "/v1/bark/jobs",
                                   {"rows": rows, "cancel_on_disconnect": True})
        arrays, timings, done = self._follow(job["id"], len(rows), on_event, cancel)
        model_id = self.model_id
        return [Generation(
            text=r.text, voice=voice_label(r.voice), seed=int(r.options.seed),
            options=r.options, semantic=a["semantic_prompt"], coarse=a["coarse_prompt"],
            fine=a["fine_prompt"], audio=a["audio"].astype(np.float32, copy=False),
            sample_rate=SAMPLE_RATE,
            timings={stage: StageTiming(int(x["tokens"]), float(x["seconds"]))
                     for stage, x in t.items()},
            random_weights=bool(done.get("random_weights")), model_id=model_id)
            for r, a, t in zip(seeded, arrays, timings, strict=True)]

    def _follow(self, job_id: str, n_rows: int, on_event: EventCallback,
                cancel: threading.Event | None):
        """Relay the job's events until it ends; its rows' arrays and the done event."""
        finished = threading.Event()
        watcher = None
        if cancel is not None:
            watcher = threading.Thread(target=self._cancel_when, daemon=True,
                                       args=(job_id, cancel, finished), name="bark-remote-cancel")
            watcher.start()
        arrays: dict[int, dict[str, np.ndarray]] = {}
        timings: dict[int, dict] = {}
        try:
            for event in self.connection.events(f"/v1/bark/jobs/{job_id}/events"):
                if is_engine_event(event.name):
                    on_event(event_from_wire({"event": event.name, **event.data}))
                elif event.name == "segment":
                    i = int(event.data["index"])
                    data = self.connection.request("GET", f"/v1/bark/jobs/{job_id}/segments/{i}.npz")
                    try:
                        arrays[i] = read_npz_bytes(data, _SEGMENT_KEYS, f"segment {i}")
                    except ValueError as exc:
                        raise RemoteError(f"the server sent a bad segment: {exc}") from None
                    timings[i] = event.data.get("timings") or {}
                elif event.name == "done":
                    if len(arrays) != n_rows:
                        raise RemoteError(f"the server finished with {len(arrays)} of "
                                          f"{n_rows} takes")
                    order = range(n_rows)
                    return [arrays[i] for i in order], [timings[i] for i in order], event.data
                elif event.name == "cancelled":
                    raise Cancelled("generation cancelled")
                elif event.name == "error":
                    raise RemoteError(event.data.get("message", "the job failed on the server"))
            raise ConnectionLost(f"lost the connection to {self.url} mid-job: the stream "
                                 "ended before the job did")
        except ConnectionLost:
            if cancel is not None and cancel.is_set():
                raise Cancelled("generation cancelled") from None
            raise
        finally:
            finished.set()
            if watcher is not None:
                watcher.join(1.0)

    def _cancel_when(self, job_id: str, cancel: threading.Event,
                     finished: threading.Event) -> None:
        while not finished.is_set():
            if cancel.wait(CANCEL_POLL_S):
                with contextlib.suppress(RemoteError):  # the stream's end says what happened
                    self.connection.request("DELETE", f"/v1/bark/jobs/{job_id}")
                return

    def audition(self, voice: VoiceArg, on_event: EventCallback = ignore_event) -> np.ndarray:
        """The voice's own sample, decoded by the server's codec, played here."""
        if voice is None:
            raise BadInputError("no voice to audition")
        self.load(on_event)
        data = self.connection.request("POST", "/v1/bark/audition",
                                       {"voice": self._voice_wire(voice)})
        try:
            return read_wav_bytes(data, "the server's audition")[0]
        except BadInputError as exc:
            raise RemoteError(str(exc)) from None


def _has_user_voice(folder: Path, name: str) -> bool:
    from bark_engine.voices.catalog import UserVoices, valid_user_voice_name

    return valid_user_voice_name(name) and UserVoices(folder).exists(name)


def _no_fetch(relpath: str):
    raise VoiceError(f"{relpath}: presets come from the server")
