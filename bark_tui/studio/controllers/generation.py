"""The app's generation side: jobs in, queue, workers, progress and endings out.

A mixin of :class:`~bark_tui.studio.app.BarkApp` (the app file keeps the layout,
settings and errors). Its parts of ``StageUpdate`` and ``JobEnded`` are
called by the app's one handler of each, before the long-script parts (which
add to the title these write).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from bark_engine.config import MAX_TEXT_TOKENS
from bark_engine.options import GenerationOptions

from ...core.job import Job
from ...core.script_text import build_script
from ...core.settings import generation_options
from ...widgets.history_table import voice_label
from ..jobs.script import RemakeJob, ScriptJob, run_remake_job, run_script_job
from ..jobs.take import run_count, run_generation
from ..jobs.takes import TakesJob, run_takes_job
from ..messages import EngineLoading, EngineReady, JobEnded, JobStarted, StageUpdate, TokenCount

if TYPE_CHECKING:
    from ...history import Take
    from ..app import BarkApp


class JobsMixin:
    """ctrl+g, the queue, cancel, and the messages workers send about a job."""

    def _new_job(self, text: str, voice: str | None, label: str, options: GenerationOptions,
                 regenerates: int | None = None) -> Job:
        app = cast("BarkApp", self)
        return Job(text, voice, options, label, app.host.config.size, app.device_label,
                   regenerates=regenerates, id=next(app._job_ids))

    def next_options(self, script: bool = False) -> GenerationOptions:
        """The options of the next take, for every generate action (a take, a script,
        several takes): the settings' sampling; a seed, the fixed one or a fresh random
        one drawn here so the job shows it and the take records it; the long-script
        profile for a script when it is on; the app's cap on audio."""
        app = cast("BarkApp", self)
        settings = app.settings
        seed = settings.fixed_seed if settings.seed_mode == "fixed" else random.randrange(2**31)
        options = generation_options(settings, seed)
        if script and settings.long_form:
            options = options.with_long_form()
        if app.max_duration_s is not None:
            options = dataclasses.replace(options, max_duration_s=app.max_duration_s)
        return options

    def action_generate(self) -> None:
        app = cast("BarkApp", self)
        job = app.queue.resume()  # a held queue's jobs go first; ctrl+g again adds text
        if job is not None:
            app.notify(f"The queue goes on with job {job.id} ({len(app.queue.waiting)} more "
                       "waiting); ctrl+g again adds the script.", markup=False)
            app._start(job)
            app.refresh_status()
            return
        main = app.main
        text = main.editor.text
        if not text.strip():
            app.notify("The script is empty — type what the voice should say.",
                       severity="warning", markup=False)
            return
        voice = main.voices.selected.key or None
        script = build_script(text, app.settings, voice, app.user_voices)  # read once
        if app.generate_script(script):  # several segments, speakers or voice switches
            return
        if main.editor.exact and main.editor.tokens > MAX_TEXT_TOKENS:
            app.notify(f"The script is {main.editor.tokens} tokens; Bark reads at most "
                       f"{MAX_TEXT_TOKENS} per take. Shorten it — your text stays in the editor.",
                       severity="error", markup=False)
            return
        # what Bark is given: the text with numbers read aloud and the lexicon applied
        # (what the preview shows as "Bark reads")
        said = script.segments[0].text if len(script.segments) == 1 and script.rewritten \
            else text
        app.submit(app._new_job(said, voice, main.voices.selected.name, app.next_options()))

    def regenerate(self, take: Take) -> None:
        """Queue the take's text again with its exact seed, voice and sampling options."""
        app = cast("BarkApp", self)
        if take.segments:  # a script take: every segment again, same seeds and voices
            app.regenerate_script(take)
            return
        options = take.generation_options()
        if take.seed is not None:
            options = dataclasses.replace(options, seed=int(take.seed))
        app.submit(app._new_job(take.text, take.voice, voice_label(take.voice), options,
                                  regenerates=take.id))

    def submit(self, job: Job) -> bool:
        from pathlib import Path

        from ..jobs.take import no_room

        app = cast("BarkApp", self)
        why = None if app.store is None else no_room(Path(app.store.takes_dir))
        if why:
            app.notify(why, severity="error", markup=False, timeout=10)
            return False
        verdict = app.queue.submit(job)
        if verdict in ("full", "resumed-full"):
            app.notify(f"The queue is full ({app.queue.capacity} jobs waiting). Wait for one "
                       "to finish, or clear the queue from ctrl+p.", severity="warning",
                       markup=False)
            if verdict == "resumed-full" and app.queue.running is not None:
                app._start(app.queue.running)  # the held queue goes on all the same
                app.refresh_status()
            return False
        running = app.queue.running
        if verdict == "start" and running is not None:
            if running is not job:  # a held queue goes on first
                app.notify(f"The queue goes on with job {running.id}; job {job.id} "
                           f"waits behind it.", markup=False)
            app._start(running)
        else:
            app.notify(f"Queued job {job.id}: {len(app.queue.waiting)} waiting.", markup=False)
        app.refresh_status()
        return True

    def _start(self, job: Job) -> None:
        app = cast("BarkApp", self)
        app.main.generation.start_job(job)
        work: Callable[[], None]
        if isinstance(job, ScriptJob):
            work = partial(run_script_job, app.host, job, app.post_message, app.store)
        elif isinstance(job, RemakeJob):
            work = partial(run_remake_job, app.host, job, app.post_message, app.store)
        elif isinstance(job, TakesJob):
            work = partial(run_takes_job, app.host, job, app.post_message, app.store)
        else:
            work = partial(run_generation, app.host, job, app.post_message, app.store)
        app.run_worker(
            work,
            name=f"generate job {job.id}",
            group="generate",
            description=f"generate “{job.snippet}”",
            thread=True,
            exit_on_error=False,
        )

    def action_cancel(self) -> None:
        app = cast("BarkApp", self)
        job = app.queue.cancel_running()
        if job is not None:
            app.main.generation.set_title(f"Cancelling job {job.id}…", busy=True)
        elif app._player is not None and app._player.is_playing:
            app.stop_playback()

    def action_clear_queue(self) -> None:
        app = cast("BarkApp", self)
        dropped = app.queue.clear_waiting()
        app.notify(f"Removed {dropped} waiting job(s) from the queue.", markup=False)
        app.refresh_status()

    def on_job_started(self, message: JobStarted) -> None:
        app = cast("BarkApp", self)
        app.main.header.engine_state = "busy" if app.host.loaded else "loading models…"

    def on_engine_loading(self, message: EngineLoading) -> None:
        app = cast("BarkApp", self)
        if message.total and message.total > 1:
            what = f"downloading {message.what} {100 * message.done / message.total:.0f}%"
        else:
            what = message.message or f"loading {message.what}"
        app.main.header.engine_state = what
        if app.queue.busy:
            app.main.generation.set_title(f"Loading models: {what}", busy=True)

    def on_engine_ready(self, message: EngineReady) -> None:
        app = cast("BarkApp", self)
        app.device_label = message.device
        app.random_weights = message.random_weights
        app.main.header.engine_state = "models loaded"
        if message.advice:
            app.notify(f"Precision: {message.advice}.", severity="warning", timeout=15,
                       markup=False)
        app.refresh_status()
        app.count_tokens()

    def jobs_stage_update(self, message: StageUpdate) -> None:
        app = cast("BarkApp", self)
        job = app.queue.running
        if job is None or job.id != message.job_id:
            return
        panel = app.main.generation
        if message.stage == "semantic" and message.step == 0:
            panel.set_title(f"{job.doing} · esc cancels", busy=True)
        row = panel.row(message.stage)
        if message.state == "done":  # keep the running speed; add how long it took
            row.show("done", message.step, message.total, None, message.elapsed_s)
        else:
            row.show(message.state, message.step, message.total, message.tokens_per_s)

    def jobs_job_ended(self, message: JobEnded) -> None:
        app = cast("BarkApp", self)
        outcome = message.outcome
        job = outcome.job
        main = app.main
        panel = main.generation
        main.header.engine_state = "models loaded" if app.host.loaded else "models not loaded"
        if outcome.take is not None:
            take = outcome.take
            if outcome.audio is not None:  # played and drawn from memory, not the new WAV
                from bark_engine.audio import as_stored

                app._remember(("take", take.id), as_stored(outcome.audio))
            panel.set_title(f"Take {take.id} done · {take.duration_s:.1f} s · seed {take.seed}"
                            " · ctrl+r plays it")
            main.refresh_history(select=take.id)
            app.notify(f"Take {take.id} saved ({take.duration_s:.1f} s, seed {take.seed}).",
                       markup=False)
        elif outcome.cancelled and outcome.kept:  # a script: its finished segments wait
            panel.stop_running_rows("cancelled")
            kept = f"{outcome.kept} of {getattr(job, 'count', '?')} segments kept"
            panel.set_title(f"Cancelled job {job.id} · {kept}; render again (ctrl+g) to continue")
            app.notify(f"Cancelled job {job.id}: {kept}; render the same script again to "
                       "continue from there.", markup=False, timeout=10)
        elif outcome.cancelled:
            panel.stop_running_rows("cancelled")
            panel.set_title(f"Cancelled job {job.id} “{job.snippet}”")
            app.notify(f"Cancelled job {job.id}; nothing was saved.", markup=False)
        elif outcome.error is not None:  # (no take and no error: several takes, compared next)
            panel.stop_running_rows("failed")
            kept = (f" · {outcome.kept} of {getattr(job, 'count', '?')} segments kept; "
                    "render again (ctrl+g) to continue") if outcome.kept else ""
            panel.set_title(f"Job {job.id} failed — see the notice{kept}")
            unsaved = ""
            if outcome.audio is not None:  # made, but the history could not keep it
                app.unsaved = (job, outcome.audio)
                unsaved = (" The take is still here: ctrl+p → Play unsaved take, or Save "
                           "unsaved take to write it elsewhere.")
            app.notify(f"Generation failed: {outcome.error}{kept.replace(' · ', '. ', 1)}"
                       f"{unsaved}", severity="error", markup=False, timeout=15)
            if outcome.traceback:
                app.show_unexpected("Generation failed", outcome.error or "",
                                    outcome.traceback)
        held = outcome.disk_full and bool(app.queue.waiting)
        following = app.queue.finish(job, hold=held)
        if following is not None:
            app._start(following)
        if held:
            waiting = len(app.queue.waiting)
            panel.set_title(f"Job {job.id} could not be kept: the disk is full · {waiting} "
                            "waiting job(s) held")
            app.notify(f"The queue is held ({waiting} waiting) so the next jobs do not run "
                       "into the same full disk: free some space, then generate (ctrl+g) to "
                       "go on.", severity="warning", markup=False, timeout=15)
        app.refresh_status()


    def count_tokens(self) -> None:
        """Real count in a worker once the engine (and so its tokenizer) is loaded."""
        app = cast("BarkApp", self)
        if not app.host.loaded:
            return
        app.run_worker(
            partial(run_count, app.host, app.main.editor.text, app.post_message),
            name="count tokens", group="count", exclusive=True, thread=True,
            exit_on_error=False,
        )

    def on_token_count(self, message: TokenCount) -> None:
        app = cast("BarkApp", self)
        app.main.editor.show_count(message.text, message.tokens, exact=True)
