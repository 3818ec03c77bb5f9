"""The bark-tui studio app: settings, stores, the engine host, workers and playback.

The app draws its first screen without importing torch: the engine is built
in the first worker that needs it (see ``jobs.EngineHost``). Every blocking
call runs in a thread worker that reports through messages; the UI thread
only draws, reads small files and talks to SQLite.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
from functools import partial
from pathlib import Path

import numpy as np
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from bark_engine.config import MAX_TEXT_TOKENS
from bark_engine.options import EngineConfig, GenerationOptions
from bark_engine.voices import PRESETS, UserVoices

from . import locations
from .commands import StudioCommands
from .guard import GuardedHandlers, format_traceback, log_error, one_line
from .history import HistoryStore, Take, TakeFileMissing
from .jobs import (
    EngineHost,
    GenerationQueue,
    Job,
    local_random_weights,
    run_audition,
    run_count,
    run_generation,
)
from .longscript import ScriptJob, run_script_job
from .longscript_app import LongScriptMixin
from .messages import (
    AuditionReady,
    EngineLoading,
    EngineReady,
    JobEnded,
    JobStarted,
    PlaybackEnded,
    Problem,
    StageUpdate,
    TokenCount,
)
from .screens.error import ErrorScreen
from .screens.help import HelpScreen
from .screens.main import MainScreen
from .screens.settings import SettingsScreen
from .settings import Settings, generation_options, load_settings, save_settings
from .several_takes import TakesJob, run_takes_job
from .several_takes_app import SeveralTakesMixin
from .widgets.generation_panel import describe_options
from .widgets.history_table import voice_label
from .widgets.voice_browser import NO_VOICE, VoiceEntry

AUDIO_CACHE = 16  # decoded takes / auditions kept in memory


def merge_engine_config(cli: EngineConfig, settings: Settings) -> EngineConfig:
    """Command-line choices win; what the command line left at its default comes from settings."""
    default = EngineConfig()
    return dataclasses.replace(
        cli,
        models=cli.models if cli.models is not None else settings.models,
        size=cli.size if cli.size != default.size else settings.size,  # type: ignore[arg-type]
        device=cli.device if cli.device != default.device else settings.device,
    )


class BarkApp(GuardedHandlers, LongScriptMixin, SeveralTakesMixin, App[None]):
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
        Binding("ctrl+s", "save_wav", "Save WAV", id="save-wav",
                tooltip="Save the selected take as a WAV file"),
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
    ) -> None:
        """``max_duration_s`` caps every take's audio (the engine stops the semantic
        stage there): quick drafts, and tests that must not wait for 15 s takes."""
        super().__init__()
        self.max_duration_s = max_duration_s
        self.settings, self._startup_notes = load_settings(locations.settings_path())
        self.host = EngineHost(merge_engine_config(engine_config or EngineConfig(), self.settings))
        self.queue = GenerationQueue() if max_waiting is None else GenerationQueue(max_waiting)
        self.user_voices = UserVoices(locations.user_voices_dir())
        self.cursor_blink = cursor_blink
        self.store: HistoryStore | None = None
        try:
            self.store = HistoryStore(locations.history_db_path(), locations.takes_dir())
        except Exception as exc:  # noqa: BLE001 - the app still opens; takes can't be kept
            self._startup_notes.append(f"History unavailable, takes will not be kept: {exc}")
        self.device_label = self.host.config.device
        self.random_weights = local_random_weights(self.host.config.models)
        self.playing_take: int | None = None
        self._player = None
        self._playback_refused = False
        self._play_token = 0
        self._job_ids = itertools.count(1)
        self._audio: dict[object, np.ndarray] = {}
        self.handler_errors: list[Exception] = []  # caught by the guard (tests read it)
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme

    def get_default_screen(self) -> Screen:
        return MainScreen(initial_voice=self.settings.default_voice,
                          cursor_blink=self.cursor_blink)

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

    # --- status -------------------------------------------------------------------

    def refresh_status(self) -> None:
        """Header facts, and the settings the next take would use."""
        main = self.main
        header = main.header
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

    # --- generation ---------------------------------------------------------------------

    def _new_job(self, text: str, voice: str | None, label: str, options: GenerationOptions,
                 regenerates: int | None = None) -> Job:
        return Job(text, voice, options, label, self.host.config.size, self.device_label,
                   regenerates=regenerates, id=next(self._job_ids))

    def action_generate(self) -> None:
        main = self.main
        text = main.editor.text
        if not text.strip():
            self.notify("The script is empty — type what the voice should say.",
                        severity="warning", markup=False)
            return
        if self.generate_script():  # several segments, speakers or voice switches
            return
        if main.editor.exact and main.editor.tokens > MAX_TEXT_TOKENS:
            self.notify(f"The script is {main.editor.tokens} tokens; Bark reads at most "
                        f"{MAX_TEXT_TOKENS} per take. Shorten it — your text stays in the editor.",
                        severity="error", markup=False)
            return
        entry = main.voices.selected
        seed = None if self.settings.seed_mode == "fixed" else random.randrange(2**31)
        options = generation_options(self.settings, seed)
        if self.max_duration_s is not None:
            options = dataclasses.replace(options, max_duration_s=self.max_duration_s)
        self.submit(self._new_job(text, entry.key or None, entry.name, options))

    def regenerate(self, take: Take) -> None:
        """Queue the take's text again with its exact seed, voice and sampling options."""
        if take.segments:  # a script take: every segment again, same seeds and voices
            self.regenerate_script(take)
            return
        options = take.generation_options()
        if take.seed is not None:
            options = dataclasses.replace(options, seed=int(take.seed))
        self.submit(self._new_job(take.text, take.voice, voice_label(take.voice), options,
                                  regenerates=take.id))

    def submit(self, job: Job) -> bool:
        verdict = self.queue.submit(job)
        if verdict == "full":
            self.notify(f"The queue is full ({self.queue.capacity} takes waiting). Wait for one "
                        "to finish, or clear the queue from ctrl+p.", severity="warning",
                        markup=False)
            return False
        if verdict == "start":
            self._start(job)
        else:
            self.notify(f"Queued job {job.id}: {len(self.queue.waiting)} waiting.", markup=False)
        self.refresh_status()
        return True

    def _start(self, job: Job) -> None:
        self.main.generation.start_job(job)
        runner = (run_script_job if isinstance(job, ScriptJob)
                  else run_takes_job if isinstance(job, TakesJob) else run_generation)
        self.run_worker(
            partial(runner, self.host, job, self.post_message, self.store),
            name=f"generate job {job.id}",
            group="generate",
            description=f"generate “{job.snippet}”",
            thread=True,
            exit_on_error=False,
        )

    def action_cancel(self) -> None:
        job = self.queue.cancel_running()
        if job is not None:
            self.main.generation.set_title(f"Cancelling job {job.id}…", busy=True)
        elif self._player is not None and self._player.is_playing:
            self.stop_playback()

    def action_clear_queue(self) -> None:
        dropped = self.queue.clear_waiting()
        self.notify(f"Removed {dropped} waiting take(s) from the queue.", markup=False)
        self.refresh_status()

    def on_job_started(self, message: JobStarted) -> None:
        self.main.header.engine_state = "busy" if self.host.loaded else "loading models…"

    def on_engine_loading(self, message: EngineLoading) -> None:
        if message.total and message.total > 1:
            what = f"downloading {message.what} {100 * message.done / message.total:.0f}%"
        else:
            what = message.message or f"loading {message.what}"
        self.main.header.engine_state = what
        if self.queue.busy:
            self.main.generation.set_title(f"Loading models: {what}", busy=True)

    def on_engine_ready(self, message: EngineReady) -> None:
        self.device_label = message.device
        self.random_weights = message.random_weights
        self.main.header.engine_state = "models loaded"
        self.refresh_status()
        self.count_tokens()

    def on_stage_update(self, message: StageUpdate) -> None:
        job = self.queue.running
        if job is None or job.id != message.job_id:
            return
        panel = self.main.generation
        if message.stage == "semantic" and message.step == 0:
            panel.set_title(f"Generating job {job.id} “{job.snippet}” · esc cancels", busy=True)
        row = panel.row(message.stage)
        if message.state == "done":  # keep the running speed; add how long it took
            row.show("done", message.step, message.total, None, message.elapsed_s)
        else:
            row.show(message.state, message.step, message.total, message.tokens_per_s)

    def on_job_ended(self, message: JobEnded) -> None:
        outcome = message.outcome
        job = outcome.job
        main = self.main
        panel = main.generation
        main.header.engine_state = "models loaded" if self.host.loaded else "models not loaded"
        if outcome.take is not None:
            take = outcome.take
            panel.set_title(f"Take {take.id} done · {take.duration_s:.1f} s · seed {take.seed}"
                            " · ctrl+r plays it")
            main.refresh_history(select=take.id)
            self.notify(f"Take {take.id} saved ({take.duration_s:.1f} s, seed {take.seed}).",
                        markup=False)
        elif outcome.cancelled and outcome.kept:  # a script: its finished segments wait
            panel.stop_running_rows("cancelled")
            kept = f"{outcome.kept} of {getattr(job, 'count', '?')} segments kept"
            panel.set_title(f"Cancelled job {job.id} · {kept}; render again (ctrl+g) to continue")
            self.notify(f"Cancelled job {job.id}: {kept}; render the same script again to "
                        "continue from there.", markup=False, timeout=10)
        elif outcome.cancelled:
            panel.stop_running_rows("cancelled")
            panel.set_title(f"Cancelled job {job.id} “{job.snippet}”")
            self.notify(f"Cancelled job {job.id}; nothing was saved.", markup=False)
        elif outcome.error is not None:  # (no take and no error: several takes, compared next)
            panel.stop_running_rows("failed")
            panel.set_title(f"Job {job.id} failed — see the notice")
            self.notify(f"Generation failed: {outcome.error}", severity="error", markup=False,
                        timeout=10)
            if outcome.traceback:
                self.show_unexpected("Generation failed", outcome.error or "",
                                     outcome.traceback)
        following = self.queue.finish(job)
        if following is not None:
            self._start(following)
        self.refresh_status()

    # --- tokens ---------------------------------------------------------------------------

    def count_tokens(self) -> None:
        """Real count in a worker once the engine (and so its tokenizer) is loaded."""
        if not self.host.loaded:
            return
        self.run_worker(
            partial(run_count, self.host, self.main.editor.text, self.post_message),
            name="count tokens", group="count", exclusive=True, thread=True,
            exit_on_error=False,
        )

    def on_token_count(self, message: TokenCount) -> None:
        self.main.editor.show_count(message.text, message.tokens, exact=True)

    # --- voices and audition ----------------------------------------------------------------

    def voice_entries(self) -> tuple[list[VoiceEntry], list[VoiceEntry], list[str]]:
        """Presets (v2 and the announcer; the v1 aliases repeat v2) and My voices."""
        presets = [
            VoiceEntry(p.name, p.name, p.language, p.gender or "—", p.prompt_seconds)
            for p in PRESETS
            if p.version != "v1"
        ]
        scan = self.user_voices.scan()
        mine = [VoiceEntry(str(v.path), v.name, "—", "—", v.duration_s, mine=True)
                for v in scan.voices]
        return presets, mine, list(scan.problems)

    def action_audition(self) -> None:
        entry = self.main.voices.highlighted
        if entry is None or entry.key == NO_VOICE:
            self.notify("Highlight a voice in the Voices list to audition it.",
                        severity="warning")
            return
        cached = self._audio.get(("voice", entry.key))
        if cached is not None:
            self._play_audio(cached, 24_000, None, f"Auditioning {entry.name}")
            return
        self.notify(f"Decoding {entry.name}'s own sample…", markup=False, timeout=2)
        self.run_worker(
            partial(run_audition, self.host, entry.key, self.post_message),
            name=f"audition {entry.name}", group="audition", exclusive=True, thread=True,
            exit_on_error=False,
        )

    def on_audition_ready(self, message: AuditionReady) -> None:
        self._remember(("voice", message.voice), message.audio)
        entry = self.main.voices.entry(message.voice)
        name = entry.name if entry else message.voice
        self._play_audio(message.audio, message.sample_rate, None, f"Auditioning {name}")

    def on_problem(self, message: Problem) -> None:
        self.notify(message.text, severity="error", markup=False, timeout=8)

    # --- takes and playback ------------------------------------------------------------------

    def _remember(self, key: object, audio: np.ndarray) -> None:
        self._audio[key] = audio
        while len(self._audio) > AUDIO_CACHE:
            self._audio.pop(next(iter(self._audio)))

    def take_audio(self, take: Take, quiet: bool = False) -> np.ndarray | None:
        """The take's samples (cached), or None with a notice when its WAV is gone."""
        cached = self._audio.get(("take", take.id))
        if cached is not None:
            return cached
        try:
            audio, _rate = take.load_audio()
        except (TakeFileMissing, OSError, ValueError) as exc:
            if not quiet:
                self.notify(str(exc), severity="error", markup=False)
            return None
        self._remember(("take", take.id), audio)
        return audio

    @property
    def player_if_started(self):
        return self._player

    def _player_ready(self):
        if self._player is None:
            from .player import Player

            self._player = Player()
        reason = self._player.unavailable_reason
        if reason is not None:
            if not self._playback_refused:
                self._playback_refused = True
                self.notify(reason, severity="warning", markup=False, timeout=8)
            return None
        return self._player

    def _play_audio(self, audio: np.ndarray, rate: int, take_id: int | None, what: str) -> bool:
        from .player import PlaybackUnavailable

        player = self._player_ready()
        if player is None:
            return False
        self._play_token += 1
        token = self._play_token
        try:
            player.play(audio, rate, on_done=lambda: self.post_message(PlaybackEnded(token)))
        except PlaybackUnavailable as exc:
            self.notify(exc.reason, severity="warning", markup=False)
            return False
        self.playing_take = take_id
        self.main.header.engine_state = f"▶ {what}"
        return True

    def play_take(self, take: Take) -> None:
        audio = self.take_audio(take)
        if audio is not None:
            self._play_audio(audio, take.sample_rate, take.id, f"playing take {take.id}")

    def stop_playback(self) -> None:
        if self._player is not None:
            self._player.stop()
        self.playing_take = None
        self.stop_segment_playback()  # a script being made stays quiet from here on
        self.main.header.engine_state = "stopped"

    def on_playback_ended(self, message: PlaybackEnded) -> None:
        if message.token == self._play_token:
            self.playing_take = None
            self.main.header.engine_state = "played"

    def action_play(self) -> None:
        if self._player is not None and self._player.is_playing:
            self.stop_playback()
        else:
            self.main.take_action("play")

    def action_save_wav(self) -> None:
        self.main.take_action("save_wav")

    def action_take(self, action: str) -> None:
        self.main.take_action(action)

    def output_dir(self, create_default: bool = False) -> Path:
        """The folder Save WAV suggests; the default one is created, a chosen one never."""
        if self.settings.output_dir:
            return Path(self.settings.output_dir).expanduser()
        folder = locations.default_output_dir()
        if create_default:
            with contextlib.suppress(OSError):  # the save dialog says what is wrong
                locations.ensure_dir(folder)
        return folder

    # --- voices from files -------------------------------------------------------------------

    def action_import_voice(self) -> None:
        from .screens.prompt import PromptScreen
        from .widgets.voice_browser import VoiceBrowser

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
        shown = dataclasses.replace(self.settings, models=cfg.models, size=cfg.size,
                                    device=cfg.device)
        themes = sorted(self.available_themes)
        self.push_screen(SettingsScreen(shown, themes, str(locations.default_output_dir())),
                         self._apply_settings)

    def _apply_settings(self, new: Settings | None) -> None:
        if new is None:
            return
        try:
            save_settings(new, locations.settings_path())
        except OSError as exc:
            self.notify(f"Settings are in use but could not be saved: {exc}", severity="error",
                        markup=False)
        self.settings = new
        if new.theme in self.available_themes:
            self.theme = new.theme
        config = dataclasses.replace(self.host.config, models=new.models, size=new.size,
                                     device=new.device)  # type: ignore[arg-type]
        if self.host.reconfigure(config):
            self.device_label = config.device
            self.random_weights = local_random_weights(config.models)
            self.main.header.engine_state = "models not loaded"
            self.notify("Settings saved. The models reload at the next generation.")
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

    # --- quitting ------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Stop generation (the worker sees its cancel event within a token) and leave."""
        self.queue.cancel_all()
        if self._player is not None:
            self._player.stop()
        self.exit()

    def on_unmount(self) -> None:
        busy = self.queue.busy
        self.queue.cancel_all()
        if self.store is not None and not busy:
            self.store.close()  # a worker still saving keeps it; the process end closes it


def run_app(engine_config: EngineConfig, home: Path | None = None) -> int:
    """Entry point for ``bark-tui`` without a command; returns the exit status."""
    import os

    if home is not None:
        os.environ[locations.HOME_ENV] = str(Path(home).expanduser())
    app = BarkApp(engine_config)
    app.run()
    return app.return_code or 0
