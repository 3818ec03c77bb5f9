"""The bark-tui studio app: its state, layout, settings, screens and errors.

What it does is spread over controllers (``controllers/``), mixins with one
job each: ``generation`` (jobs and the queue), ``playback`` (auditions and the
player), ``scripts`` (scripts, segments, re-makes), ``script_editing`` (open,
lexicon, speakers), ``takes`` (batches to compare), ``session`` (tidying,
quitting, the queue put back); ``core.guard`` comes first so an exception in
any handler becomes the error modal. Textual would call every base's handler
of a message along the MRO, so a message more than one of them reacts to has
one handler here that calls theirs in a stated order; the controllers define
no handler of their own for it (a test checks). Each controller types the app
it serves (``cast("BarkApp", self)``), and mypy checks them (tests/test_typing.py).

The app draws its first screen without importing torch: the engine is built
in the first worker that needs it (see ``jobs.host.EngineHost``). Every blocking
call runs in a thread worker that reports through messages; the UI thread
only draws, reads small files and talks to SQLite.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from pathlib import Path

import numpy as np
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from bark_engine.options import EngineConfig
from bark_engine.voices.catalog import UserVoices

from ..core import locations
from ..core.guard import GuardedHandlers, format_traceback, log_error, one_line
from ..core.job import Job
from ..core.session import load_session
from ..core.settings import (
    Settings,
    engine_dtype,
    generation_options,
    load_settings,
    merge_engine_config,
    save_settings,
)
from ..history import HistoryStore
from ..remote.choice import ServerChoice
from ..remote.engine import RemoteEngine
from ..screens.error import ErrorScreen
from ..screens.help import HelpScreen
from ..screens.main import MainScreen
from ..screens.settings import SettingsScreen
from ..widgets.generation_panel import describe_options
from .commands import StudioCommands
from .controllers.generation import JobsMixin
from .controllers.playback import PlaybackMixin
from .controllers.script_editing import ScriptEditingMixin
from .controllers.scripts import LongScriptMixin
from .controllers.session import SessionMixin
from .controllers.takes import SeveralTakesMixin
from .jobs.host import EngineHost, config_device_label, local_random_weights
from .jobs.queue import GenerationQueue
from .messages import JobEnded, PlaybackEnded, StageUpdate

# Settings fields the command line or the environment can set for one run: saved only
# when the user changes them in the form.
ONE_OFF_FIELDS = ("models", "size", "device", "dtype", "server")


class BarkApp(GuardedHandlers, SessionMixin, JobsMixin, PlaybackMixin, LongScriptMixin,
              ScriptEditingMixin, SeveralTakesMixin, App[None]):
    """The studio. Tests build it directly; the CLI goes through :func:`run_app`."""

    CSS_PATH = "app.tcss"
    TITLE = "bark-tui"
    COMMANDS = App.COMMANDS | {StudioCommands}
    BINDINGS = [  # the tooltips are the help screen's text (screens/help.py reads them)
        Binding("ctrl+g", "generate", "Generate", id="generate",
                tooltip="Generate a take from the script (queues it when one is running)"),
        Binding("escape", "cancel", "Cancel", id="cancel",
                tooltip="Cancel the take being generated (or stop playback)"),
        Binding("ctrl+r", "play", "Play/Stop", id="play",
                tooltip="Play / stop the take selected in History"),
        Binding("ctrl+o", "audition", "Audition", id="audition",
                tooltip="Audition the highlighted voice (its own sample, no generation)"),
        Binding("ctrl+s", "save_wav", "Save", id="save-wav",
                tooltip="Save the selected take: WAV, FLAC, MP3, Ogg, Opus or M4B, mastered if asked"),
        Binding("ctrl+t", "generate_takes", "Takes", id="takes", show=False,
                tooltip="Make 2–4 takes of the script as one batch, compare them, keep the best"),
        Binding("f1", "help", "Help", id="help", tooltip="This help"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True,
                tooltip="Quit (a running generation is cancelled)"),
    ]

    def __init__(
        self,
        engine_config: EngineConfig | None = None,
        *,
        cursor_blink: bool = True,
        max_waiting: int | None = None,
        max_duration_s: float | None = None,
        server: ServerChoice | None = None,
    ) -> None:
        """``max_duration_s`` caps every take's audio (the engine stops the semantic
        stage there): quick drafts, and tests that must not wait for 15 s takes.
        ``server``: a `bark-tui serve` to use (else the environment's or the saved one,
        else the engine runs in this process)."""
        super().__init__()
        self.max_duration_s = max_duration_s
        self.settings, self._startup_notes = load_settings(locations.settings_path())
        self.session = load_session(locations.session_path())
        if server is None:
            server = self._saved_server(self.settings)
        self.host = EngineHost(merge_engine_config(engine_config or EngineConfig(), self.settings),
                               server)
        self.queue = GenerationQueue() if max_waiting is None else GenerationQueue(max_waiting)
        self.user_voices = UserVoices(locations.user_voices_dir())
        self.cursor_blink = cursor_blink
        self.store: HistoryStore | None = None
        try:
            self.store = HistoryStore(locations.history_db_path(), locations.takes_dir())
        except Exception as exc:  # noqa: BLE001 - the app still opens; takes can't be kept
            self._startup_notes.append(f"History unavailable, takes will not be kept: {exc}")
        self.device_label = config_device_label(self.host.config, server)
        self.random_weights = None if server else local_random_weights(self.host.config.models)
        self.playing_take: int | None = None
        self.unsaved: tuple[Job, np.ndarray] | None = None  # (job, audio): made, not kept
        self._player = None
        self._playback_refused = False
        self._play_token = 0
        self._job_ids = itertools.count(1)
        self._audio: dict[object, np.ndarray] = {}
        self.handler_errors: list[Exception] = []  # caught by the guard (tests read it)
        self.tidied: tuple[int, int] | None = None  # (orphan files, purged takes) at start-up
        self.quit_note: str | None = None  # said on the terminal after the studio closes
        self._unsent: tuple[dict, ...] | None = None  # action_quit: the jobs not done yet
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme

    def _chosen_server(self, new: Settings, shown: Settings) -> ServerChoice | None:
        """The server after Save: the one in use (with the key it came with) while the
        form's URL and key file are as shown, else what the form says, whatever the
        environment says."""
        if new.server == shown.server and new.server_key_file == shown.server_key_file:
            return self.host.server
        return self._saved_server(new, env={})

    def _saved_server(self, settings: Settings, env=None) -> ServerChoice | None:
        """The environment's (unless `env` says otherwise) or the settings' server; a bad
        one is a notice, and the engine runs here."""
        from bark_engine.errors import BarkError

        from ..remote.choice import choose_server

        try:
            return choose_server(saved_url=settings.server,
                                 saved_key_file=settings.server_key_file, env=env)
        except BarkError as exc:
            if self.is_running:
                self.notify(f"Engine server not used: {exc}", severity="error", markup=False)
            else:
                self._startup_notes.append(f"Engine server not used: {exc}")
            return None

    def get_default_screen(self) -> Screen:
        self._main_screen = MainScreen(  # the script and voice as the studio closed
            initial_voice=self.session.voice or self.settings.default_voice,
            initial_script=self.session.script, cursor_blink=self.cursor_blink)
        return self._main_screen

    @property
    def main(self) -> MainScreen:
        """The studio screen, whichever modal is on top of it."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise RuntimeError("the main screen is not mounted")

    def on_mount(self) -> None:
        for note in self._startup_notes:
            self.notify(note, severity="warning", markup=False, timeout=10)
        if self.store is not None:
            self.run_worker(self._tidy_history, thread=True, name="tidy history",
                            exclusive=False, group="tidy")


    # --- one handler per message --------------------------------------------------------
    # The controllers (jobs, playback, long scripts) each react to these; the app calls
    # them in the order written here, not in the bases' method-resolution order.

    def on_stage_update(self, message: StageUpdate) -> None:
        self.jobs_stage_update(message)  # the stage rows and the job's title
        self.script_stage_update(message)  # then a script's title over it

    def on_job_ended(self, message: JobEnded) -> None:
        self.jobs_job_ended(message)  # the take, the history, the queue's next job
        self.script_job_ended(message)  # then a script's segment playback is settled

    def on_playback_ended(self, message: PlaybackEnded) -> None:
        self.playback_playback_ended(message)  # a take or an audition ended
        self.script_playback_ended(message)  # or a segment: the next one plays

    # --- status -------------------------------------------------------------------

    def refresh_status(self) -> None:
        """Header facts, and the settings the next take would use."""
        main = self.main
        header = main.header
        engine = self.host.engine
        if isinstance(engine, RemoteEngine) and self.host.loaded:
            header.model_size = engine.size  # the server's models, not the settings'
        else:
            header.model_size = self.host.config.size
        header.device = self.device_label
        header.random_weights = self.random_weights
        if not self.queue.busy:
            entry = main.voices.selected
            options = generation_options(self.settings)
            main.generation.set_settings(
                "Next take: "
                + describe_options(options, entry.name, self.host.config.size, self.device_label)
            )
        main.generation.set_queue(self.queue.waiting, self.queue.capacity)

    # --- voices from files -------------------------------------------------------------------

    def action_import_voice(self) -> None:
        from ..screens.prompt import PromptScreen
        from ..widgets.voice_browser import VoiceBrowser

        def check(answer: str) -> str | None:
            from bark_engine.errors import VoiceError

            try:
                self.user_voices.import_file(Path(answer).expanduser())
            except (VoiceError, OSError) as exc:
                return str(exc)
            return None

        def done(answer: str | None) -> None:
            if answer is not None:
                self.main.refresh_voices()
                self.notify(f"Imported {Path(answer).name} into My voices.", markup=False)
                self.main.query_one(VoiceBrowser).focus()

        self.push_screen(PromptScreen("Import voice", "Path of a Bark voice file (.npz):", "",
                                      check, "Import"), done)

    # --- screens ----------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_settings(self) -> None:
        cfg = self.host.config
        server = self.host.server
        shown = dataclasses.replace(self.settings, models=cfg.models, size=cfg.size,
                                    device=cfg.device, dtype=cfg.dtype or "auto",
                                    server=server.url if server else None)
        themes = sorted(self.available_themes)
        self._shown_settings = shown
        self.push_screen(SettingsScreen(shown, themes, str(locations.default_output_dir())),
                         self._apply_settings)

    def remember_save_choice(self, ext: str, master: str, trim: bool) -> None:
        """The Save dialog offers its last choice again, in this run and the next."""
        new = dataclasses.replace(self.settings, save_format=ext, save_master=master,
                                  save_trim=trim)
        if new == self.settings:
            return
        self.settings = new
        try:
            save_settings(new, locations.settings_path())
        except OSError as exc:
            self.notify(f"The file was saved, but its type could not be remembered: {exc}",
                        severity="warning", markup=False)

    def _apply_settings(self, new: Settings | None) -> None:
        """The form's values are used at once; only what the user changed in the form is
        saved (a field the command line or the environment set, left as it was shown,
        keeps its saved value: one-off flags never become settings)."""
        if new is None:
            return
        shown = self._shown_settings
        server = self._chosen_server(new, shown)
        kept = {name: getattr(self.settings, name) for name in ONE_OFF_FIELDS
                if getattr(new, name) == getattr(shown, name)}
        saved = dataclasses.replace(new, **kept)
        try:
            save_settings(saved, locations.settings_path())
        except OSError as exc:
            self.notify(f"Settings are in use but could not be saved: {exc}", severity="error",
                        markup=False)
        self.settings = saved
        if new.theme in self.available_themes:
            self.theme = new.theme
        config = dataclasses.replace(  # the form offers only valid sizes and devices
            self.host.config, models=new.models, size=new.size, device=new.device,  # type: ignore[arg-type]
            dtype=engine_dtype(new))
        if self.host.reconfigure(config, server):
            self.device_label = config_device_label(config, server)
            self.random_weights = None if server else local_random_weights(config.models)
            self.main.header.engine_state = "models not loaded"
            where = f"the server {server.label}" if server else "this machine"
            self.notify(f"Settings saved. The engine on {where} is used from the next "
                        "generation.")
        else:
            self.notify("Settings saved.")
        self.refresh_status()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Unexpected failures of any worker end in the error modal, never on the terminal."""
        worker = event.worker
        if event.state == WorkerState.ERROR and worker.error is not None:
            error = worker.error
            self.show_unexpected(f"{worker.name} failed", str(error), format_traceback(error))

    def handler_failed(self, error: Exception, what: str) -> None:
        """A handler, action or callback raised (see ``guard``): say so and keep running."""
        self.handler_errors.append(error)
        self.show_unexpected(f"Unexpected error in {what} — the studio keeps running",
                             one_line(error), format_traceback(error))

    def show_unexpected(self, title: str, summary: str, details: str) -> None:
        """Log the traceback, then show it in the error modal (once while it stays open)."""
        path = log_error(f"{title}: {summary}", details)
        where = f"Logged to {path}" if path else "The error log could not be written."
        if getattr(self, "_exit", False) or not self.screen_stack:
            return  # quitting: the log has it
        top = self.screen_stack[-1]
        if isinstance(top, ErrorScreen) and top.summary == summary:
            return  # the same failure again (a timer): one modal is enough
        self.push_screen(ErrorScreen(title, summary, f"{where}\n\n{details}"))

    def _handle_exception(self, error: Exception) -> None:
        """What escaped the guard (Textual's own code) still ends the app, logged first."""
        log_error(f"fatal: {one_line(error)}", format_traceback(error))
        super()._handle_exception(error)







def run_app(engine_config: EngineConfig, home: Path | None = None,
            server: ServerChoice | None = None) -> int:
    """Entry point for ``bark-tui`` without a command; returns the exit status."""

    if home is not None:
        os.environ[locations.HOME_ENV] = str(Path(home).expanduser())
    app = BarkApp(engine_config, server=server)
    app.run()
    if app.quit_note:
        import sys

        print(app.quit_note, file=sys.stderr)
    return app.return_code or 0
