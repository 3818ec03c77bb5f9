"""The bridge between the engine (worker threads) and the app (UI thread).

Three small pieces, none of which touches a widget:

- :class:`EngineHost` owns the one engine. It imports ``bark_engine.engine``
  (and with it torch) only when a worker first asks for the engine, so the
  first screen draws without torch; a lock makes concurrent workers (a
  generation and an audition) load the models once.
- :class:`EventBridge` turns the engine's callback events into app messages,
  throttled per stage so a fast token loop cannot flood the message queue.
- :class:`GenerationQueue` holds the job that runs and the capped list of jobs
  that wait, so the panel can show both and a full queue can say so.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from bark_engine.events import LoadProgress, StageFinished, StageProgress, StageStarted
from bark_engine.options import EngineConfig, GenerationOptions

from ...remote.choice import ServerChoice
from ..messages import EngineLoading, StageUpdate

if TYPE_CHECKING:
    from bark_engine.engine import Engine

RANDOM_WEIGHTS_MARKER = "RANDOM_WEIGHTS"  # file in a local model folder with test weights
MAX_WAITING = 4  # generate requests that may wait behind the running one
PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress repaints per second per stage

Post = Callable[[Message], Any]


@dataclass
class Job:
    """One requested take: what to say, in which voice, with which options."""

    text: str
    voice: str | None  # preset name, path of a user voice .npz, or None
    options: GenerationOptions
    voice_label: str = "no voice"
    size: str = "small"
    device: str = "auto"
    regenerates: int | None = None  # id of the take this one repeats, if any
    id: int = 0  # numbered by the app, 1, 2, … per session ("job 3"; takes have their own ids)
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def snippet(self) -> str:
        """The first words, for the queue line and notices."""
        flat = " ".join(self.text.split())
        return flat if len(flat) <= 24 else flat[:23] + "…"

    @property
    def doing(self) -> str:
        """What the panel's title says while the job runs."""
        return f"Generating job {self.id} “{self.snippet}”"


def job_record(job: Job) -> dict[str, Any]:
    """A plain take's job as JSON-ready data (the session keeps unsent takes with it)."""
    return {"text": job.text, "voice": job.voice, "voice_label": job.voice_label,
            "options": dataclasses.asdict(job.options), "regenerates": job.regenerates}


def job_from_record(record: dict[str, Any], size: str, device: str, id: int) -> Job | None:
    """The job `job_record` wrote, or None for a record this version cannot read."""
    voice, label, options = record.get("voice"), record.get("voice_label"), record.get("options")
    regenerates = record.get("regenerates")
    if not isinstance(record.get("text"), str) or not isinstance(options, dict) \
            or not (voice is None or isinstance(voice, str)):
        return None
    return Job(record["text"], voice, GenerationOptions.from_mapping(options),
               label if isinstance(label, str) else "no voice", size, device,
               regenerates=regenerates if isinstance(regenerates, int) else None, id=id)


def local_random_weights(models: str | None) -> bool | None:
    """Whether a local model folder carries the test-weights marker.

    Cheap enough for the first screen (one ``stat``); None when the source is a
    hub repo, which is only known after loading.
    """
    if not models:
        return None
    folder = Path(models).expanduser()
    if not folder.is_dir():
        return None
    return (folder / RANDOM_WEIGHTS_MARKER).exists()


class _Slot:
    """One engine and what of it is loaded; replaced whole when the config changes."""

    def __init__(self, config: EngineConfig, server: ServerChoice | None = None) -> None:
        self.config = config
        self.server = server
        self.engine: Engine | None = None
        self.loaded = False
        self.codec_loaded = False


def config_device_label(config: EngineConfig, server: ServerChoice | None = None) -> str:
    """Device (and precision, when one was asked for) as shown before the engine loads;
    once loaded, the engine's own device and dtype are shown instead."""
    if server is not None:
        return f"server {server.label}"
    return config.device if config.dtype is None else f"{config.device} · {config.dtype}"


class EngineHost:
    """Builds the engine on first use (in a worker) and loads it once."""

    def __init__(self, config: EngineConfig, server: ServerChoice | None = None) -> None:
        self._slot = _Slot(config, server)
        self._lock = threading.Lock()

    @property
    def config(self) -> EngineConfig:
        return self._slot.config

    @property
    def server(self) -> ServerChoice | None:
        """The `bark-tui serve` the engine runs on, or None: in this process."""
        return self._slot.server

    @property
    def engine(self) -> Engine | None:
        """The engine if a worker has built it already (never builds one)."""
        return self._slot.engine

    @property
    def loaded(self) -> bool:
        return self._slot.loaded

    def reconfigure(self, config: EngineConfig, server: ServerChoice | None = None) -> bool:
        """Use ``config`` (and ``server``) from the next job on; True when that means a
        reload (or a new connection).

        Never blocks: a running job keeps the engine it already holds.
        """
        if config == self._slot.config and server == self._slot.server:
            return False
        self._slot = _Slot(config, server)
        return True

    def _build(self, slot: _Slot) -> Engine:
        if slot.engine is None:
            from ...core.engines import build_engine  # torch loads here, in a worker

            slot.engine = build_engine(slot.config, slot.server)
        return slot.engine

    def ensure_loaded(self, on_event: Callable[[Any], None]) -> tuple[Engine, bool]:
        """All models loaded; returns the engine and whether this call loaded them."""
        slot = self._slot
        with self._lock:
            engine = self._build(slot)
            if slot.loaded:
                return engine, False
            engine.load(on_event=on_event)
            slot.loaded = slot.codec_loaded = True
            return engine, True

    def ensure_codec(self, on_event: Callable[[Any], None]) -> Engine:
        """The codec loaded (enough for auditions)."""
        slot = self._slot
        with self._lock:
            engine = self._build(slot)
            if not slot.codec_loaded:
                engine.load_codec(on_event=on_event)
                slot.codec_loaded = True
            return engine

    def ensure_built(self) -> Engine:
        """The engine object, built but not loaded (for the tokenizer)."""
        slot = self._slot
        with self._lock:
            return self._build(slot)


class EventBridge:
    """Engine callback → app messages, at most one progress message per interval."""

    def __init__(
        self,
        post: Post,
        job_id: int,
        interval_s: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self._job_id = job_id
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self.posted = 0  # how many messages went out (tests check the throttle)

    def _send(self, message: Message) -> None:
        self.posted += 1
        self._post(message)

    def _due(self, key: str, final: bool) -> bool:
        now = self._clock()
        if final or now - self._last.get(key, float("-inf")) >= self._interval:
            self._last[key] = now
            return True
        return False

    def __call__(self, event: Any) -> None:
        if isinstance(event, LoadProgress):
            final = event.total is not None and event.done >= event.total
            if self._due("load:" + event.what, final):
                self._send(EngineLoading(event.what, event.done, event.total, event.message))
        elif isinstance(event, StageStarted):
            self._last.pop(event.stage, None)
            self._send(StageUpdate(self._job_id, event.stage, 0, event.total))
        elif isinstance(event, StageProgress):
            final = event.total is not None and event.step >= event.total
            if self._due(event.stage, final):
                self._send(
                    StageUpdate(
                        self._job_id,
                        event.stage,
                        event.step,
                        event.total,
                        event.tokens_per_s,
                        event.elapsed_s,
                    )
                )
        elif isinstance(event, StageFinished):
            rate = event.tokens / event.seconds if event.seconds > 0 else 0.0
            self._send(
                StageUpdate(
                    self._job_id,
                    event.stage,
                    event.tokens,
                    event.tokens,
                    rate,
                    event.seconds,
                    state="done",
                )
            )


class GenerationQueue:
    """The running job plus up to ``capacity`` waiting ones, first in first out."""

    def __init__(self, capacity: int = MAX_WAITING) -> None:
        self.capacity = capacity
        self.running: Job | None = None
        self.waiting: deque[Job] = deque()

    @property
    def full(self) -> bool:
        return len(self.waiting) >= self.capacity

    @property
    def busy(self) -> bool:
        return self.running is not None

    def submit(self, job: Job) -> str:
        """"start" (nothing runs: caller starts ``self.running``), "queued", or "full"
        (refused). A held queue goes on with its oldest job; ``job`` waits behind it."""
        if self.resume() is not None:  # held: its oldest job starts, so ``job`` has room
            self.waiting.append(job)
            return "start"
        if self.running is None:
            self.running = job
            return "start"
        if self.full:
            return "full"
        self.waiting.append(job)
        return "queued"

    @property
    def held(self) -> bool:
        """Jobs wait but none runs: after a take that could not be stored, or put back
        from the last session. `resume` (ctrl+g) goes on with them."""
        return self.running is None and bool(self.waiting)

    def resume(self) -> Job | None:
        """Start the oldest waiting job of a held queue (now running); None if not held."""
        if not self.held:
            return None
        self.running = self.waiting.popleft()
        return self.running

    def finish(self, job: Job, hold: bool = False) -> Job | None:
        """Mark ``job`` done; return the next job to start (now running), if any. With
        ``hold`` (a take could not be stored: the disk is full) the waiting jobs stay
        where they are until the next `submit`."""
        if self.running is job:
            self.running = None
        if self.running is None and self.waiting and not hold:
            self.running = self.waiting.popleft()
            return self.running
        return None

    def cancel_running(self) -> Job | None:
        """Ask the running job to stop; waiting jobs stay."""
        if self.running is not None:
            self.running.cancel.set()
        return self.running

    def clear_waiting(self) -> int:
        """Drop every waiting job; returns how many."""
        count = len(self.waiting)
        self.waiting.clear()
        return count

    def cancel_all(self) -> None:
        """Stop everything (quitting): the worker sees its event within a token."""
        for job in self.waiting:
            job.cancel.set()
        self.waiting.clear()
        self.cancel_running()


# --- the work each worker thread does --------------------------------------------------
# Plain functions of plain objects: the app runs them with ``run_worker(thread=True)``.
# They talk back only through ``post`` (the app's thread-safe ``post_message``).


def generation_thread_name(job: Job) -> str:
    """The worker thread's name while it runs ``job`` (for debuggers, and quit tests)."""
    return f"bark-tui generate job {job.id}"


def run_generation(host: EngineHost, job: Job, post: Post, store: Any) -> None:
    """Load if needed, generate, store the take (files first, then row), report how it ended.

    Every ending is reported as a :class:`JobEnded`, so the queue always moves
    on; an unexpected exception travels with its traceback for the error modal.
    """
    thread = threading.current_thread()
    pool_name, thread.name = thread.name, generation_thread_name(job)
    try:
        _generate(host, job, post, store)
    finally:
        thread.name = pool_name


def ready_engine(host: EngineHost, job: Any, post: Post, on_event: Any) -> Any:
    """The loaded engine for a job about to run, announcing a load it had to do.

    Raises `Cancelled` when the job was cancelled while it waited in the queue,
    before any (slow) loading. Shared by every kind of job.
    """
    from bark_engine.errors import Cancelled

    from ..messages import EngineReady

    if job.cancel.is_set():
        raise Cancelled("cancelled before it started")
    engine, fresh = host.ensure_loaded(on_event)
    if fresh:
        device = f"{engine.device} · {engine.dtype_name}"
        post(EngineReady(engine.model_id, device, engine.random_weights, engine.precision_advice))
    return engine


def _generate(host: EngineHost, job: Job, post: Post, store: Any) -> None:

    from bark_engine.errors import BarkError, Cancelled

    from ...history import NewTake
    from ..messages import JobEnded, JobOutcome, JobStarted

    post(JobStarted(job))
    bridge = EventBridge(post, job.id)
    gen = None
    try:
        engine = ready_engine(host, job, post, bridge)
        gen = engine.generate(
            job.text, voice=job.voice, options=job.options, on_event=bridge, cancel=job.cancel
        )
        if store is None:
            raise BarkError("the history is unavailable, so the take could not be kept")
        tokens = {
            "semantic_prompt": gen.semantic,
            "coarse_prompt": gen.coarse,
            "fine_prompt": gen.fine,
        }
        new = NewTake.from_generation(gen)
        new.voice = job.voice  # what the user picked (a preset name or a voice file path)
        take = store.add_take(new, gen.audio, tokens)
    except Cancelled:
        post(JobEnded(JobOutcome(job, cancelled=True)))
    except BarkError as exc:  # made but not kept: the audio goes with it (play or save it)
        post(JobEnded(JobOutcome(job, error=str(exc), audio=gen and gen.audio)))
    except Exception as exc:  # noqa: BLE001 - shown in the error modal, never on the terminal
        post(JobEnded(dataclasses.replace(failed_outcome(job, exc), audio=gen and gen.audio)))
    else:
        post(JobEnded(JobOutcome(job, take=take, audio=gen.audio)))


MIN_FREE_BYTES = 32 * 2**20  # below this on the history's disk a take is not started


def no_room(folder: Path) -> str | None:
    """Why a new take would not fit on the disk holding ``folder`` (None: it fits)."""
    import shutil

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return None  # unknown: try, and report a failed save as such
    if free >= MIN_FREE_BYTES:
        return None
    return (f"The disk holding the history has {free / 2**20:.1f} MB free; a take needs room "
            f"to be kept. Free some space, then generate again.")


def failed_outcome(job: Any, exc: Exception, kept: int = 0) -> Any:
    """How a job that raised ends: a save that failed (a full disk named as such, and
    the queue held) or, for anything else, the error modal with its traceback."""
    import sqlite3
    import traceback

    from ...history import is_disk_full, save_problem
    from ..messages import JobOutcome

    if isinstance(exc, (OSError, sqlite3.OperationalError)) or is_disk_full(exc):
        return JobOutcome(job, error=save_problem(exc), kept=kept, disk_full=is_disk_full(exc))
    return JobOutcome(job, error=f"unexpected error: {exc}", traceback=traceback.format_exc(),
                      kept=kept)


def run_audition(host: EngineHost, voice: str, post: Post) -> None:
    """Decode a voice's own sample with the codec alone (no GPT stages)."""
    from bark_engine.config import SAMPLE_RATE
    from bark_engine.errors import BarkError

    from ..messages import AuditionReady, Problem

    bridge = EventBridge(post, job_id=0)
    try:
        engine = host.ensure_codec(bridge)
        audio = engine.audition(voice)
    except BarkError as exc:
        post(Problem(f"Cannot audition {voice}: {exc}"))
        return
    post(AuditionReady(voice, audio, SAMPLE_RATE))


def run_count(host: EngineHost, text: str, post: Post) -> None:
    """Count tokens with the engine's real tokenizer (loads only the tokenizer)."""
    from bark_engine.errors import BarkError

    from ..messages import TokenCount

    engine = host.engine
    if engine is None:
        return
    try:
        tokens = engine.count_tokens(text)
    except BarkError:
        return  # the estimate stays; generating will say what is wrong
    post(TokenCount(text, tokens))
