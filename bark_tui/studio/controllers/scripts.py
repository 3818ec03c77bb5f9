"""The studio's long-script side: generate a script as segments, play while making, re-make one.

A mixin of :class:`~bark_tui.studio.app.BarkApp` so the app file stays small. Its
parts of ``StageUpdate``, ``JobEnded`` and ``PlaybackEnded`` are called by the
app's one handler of each, after the jobs' and the player's parts, which is
how the panel title gets "first audio after …" added once "Take 7 done" is
written.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from bark_engine.config import SAMPLE_RATE

from ...core.script_text import needs_script, ray_label, resolve_segments, voice_name
from ..jobs.script import RemakeJob, ScriptJob, remake_job
from ..messages import (
    RayWorkersChanged,
    ScriptResumed,
    SegmentReady,
    SegmentStarted,
)

if TYPE_CHECKING:
    from bark_engine.options import GenerationOptions
    from bark_engine.scripts.script import Script

    from ...core.job import Job
    from ...history import Take
    from ..app import BarkApp
    from ..messages import JobEnded, PlaybackEnded, StageUpdate



@dataclass
class SegmentPlayback:
    """The script job being made, as the UI sees it: which segments are in the works,
    which one plays, and the made segments waiting their turn to play."""

    job: int | None = None  # the script job these belong to
    queue: deque[tuple[int, np.ndarray]] = field(default_factory=deque)  # (index, clip) to play
    playing: int | None = None  # segment index now playing
    token: object | None = None  # the player's token of that clip (PlaybackEnded names it)
    making: int | None = None  # the earliest segment in the works
    making_all: tuple[int, ...] = ()  # every segment of the batch in the works
    count: int = 0  # segments in the script
    muted: int | None = None  # the job whose playback the user stopped
    log: list[tuple[str, int, float]] = field(default_factory=list)  # ("made"|"play", i, t)


class LongScriptMixin:
    """Script jobs, the segment playback queue and "re-make segment N"."""

    # set up lazily: the mixin has no __init__ of its own (App's signature stays the app's)
    _seg_state: SegmentPlayback

    @property
    def seg(self) -> SegmentPlayback:
        app = cast("BarkApp", self)
        state = app.__dict__.get("_seg_state")
        if state is None:
            state = app.__dict__["_seg_state"] = SegmentPlayback()
        return state

    @property
    def segment_log(self) -> list[tuple[str, int, float]]:
        """("made" | "play", segment index, monotonic time): when the worker finished a
        segment, and when the UI started playing one (tests compare the two)."""
        app = cast("BarkApp", self)
        return app.seg.log

    # --- generate ------------------------------------------------------------------

    def generate_script(self, script: Script) -> bool:
        """Queue the editor's script (``script``, as `build_script` read it) as a script
        job if it needs one; True when handled."""
        app = cast("BarkApp", self)
        main = app.main
        default = main.voices.selected.key or None
        if not needs_script(script, default, app.settings.long_form):
            return False
        job = app.script_job(main.editor.text, default, app.next_options(script=True), script)
        if job is not None:
            app.submit(job)
        return True

    def script_job(self, text: str, default: str | None, options: GenerationOptions,
                   script: Script) -> ScriptJob | None:
        """The script job for ``script`` (``text`` as `build_script` read it; segment i
        seeded ``options.seed`` + i) with the settings now, keyed for resuming; None,
        after saying why, when a voice is unknown."""
        app = cast("BarkApp", self)
        settings = app.settings
        script, unknown = resolve_segments(script, app.user_voices)
        if unknown:
            names = ", ".join(unknown)
            app.notify(f"Unknown voice: {names} — neither a preset nor one of My voices. Fix the "
                       "[voice] line or the speakers map (ctrl+p → Speakers); nothing was "
                       "generated.", severity="error", markup=False, timeout=10)
            return None
        seed = options.seed
        assert seed is not None  # next_options always draws one
        voices = list(dict.fromkeys(voice_name(seg.voice) for seg in script.segments))
        label = f"{len(script.segments)} segments · " + (
            voices[0] if len(voices) == 1 else f"{len(voices)} voices: {', '.join(voices)}")
        job = ScriptJob(
            text, default, options, label,
            app.host.config.size, ray_label(settings.ray) or app.device_label,
            id=next(app._job_ids), script=script,
            seed=seed, continuity=settings.continuity,
            reset_every=settings.reset_every or None,
            play_while_generating=settings.play_while_generating,
            free_seed=settings.seed_mode != "fixed", batch=settings.batch or None,
            ray=settings.ray,
        )
        return app._keyed(job)

    def _keyed(self, job: ScriptJob) -> ScriptJob:
        """``job`` with its resume fingerprint (a cancelled render of it goes on)."""
        from ...core.script_resume import fingerprint

        app = cast("BarkApp", self)
        cfg = app.host.config
        # the precision only when one was asked for, so default renders keep their keys
        model = (cfg.models, cfg.size, cfg.device) + ((cfg.dtype,) if cfg.dtype else ())
        job.resume_key = fingerprint(job, model)
        return job

    def on_script_resumed(self, message: ScriptResumed) -> None:
        app = cast("BarkApp", self)
        app.notify(f"Job {message.job_id} goes on from the unfinished render: {message.done} of "
                   f"{message.count} segments kept, seed {message.seed}.", markup=False)

    # --- progress and playback while making --------------------------------------------

    def _script_title(self) -> None:
        app = cast("BarkApp", self)
        job = app.queue.running
        if not isinstance(job, ScriptJob):
            return
        state = app.seg
        parts = [f"Script job {job.id}"]
        if state.making is not None:
            batch = state.making_all or (state.making,)
            which = (f"segment {batch[0] + 1}" if len(batch) == 1 else
                     f"segments {', '.join(str(i + 1) for i in batch)}")
            parts.append(f"making {which}/{job.count}")
        if job.ray:
            ready, total = job.ray_workers
            parts.append(f"on {total} Ray workers" if total and ready == total else
                         f"starting Ray workers ({ready}/{total} ready)" if total else
                         "starting Ray")
        if state.playing is not None:
            parts.append(f"playing segment {state.playing + 1}")
        parts.append("esc cancels")
        app.main.generation.set_title(" · ".join(parts), busy=True)

    def on_segment_started(self, message: SegmentStarted) -> None:
        app = cast("BarkApp", self)
        state = app.seg
        if state.job != message.job_id:
            state.job, state.queue, state.playing = message.job_id, deque(), None
        state.making = message.index
        state.making_all = message.indices
        state.count = message.count
        if message.index > 0:  # the rows show this segment's stages, not the last one's
            from bark_engine.events import STAGES

            panel = app.main.generation  # type: ignore[attr-defined]
            for stage in STAGES:
                panel.row(stage).show("waiting")
        app._script_title()

    def script_stage_update(self, message: StageUpdate) -> None:
        app = cast("BarkApp", self)
        app._script_title()  # after the app's handler wrote its own title

    def on_ray_workers_changed(self, message: RayWorkersChanged) -> None:
        app = cast("BarkApp", self)
        app._script_title()

    def on_segment_ready(self, message: SegmentReady) -> None:
        app = cast("BarkApp", self)
        state = app.seg
        state.log.append(("made", message.index, message.made_at))
        job = app.queue.running
        if not isinstance(job, ScriptJob) or job.id != message.job_id:
            return
        if message.index + 1 >= message.count:
            state.making = None
        if job.play_while_generating and state.muted != job.id:
            clip = message.audio
            if message.index > 0 and message.pause_before_s > 0:
                gap = np.zeros(round(message.pause_before_s * message.sample_rate), np.float32)
                clip = np.concatenate([gap, np.asarray(clip, np.float32)])
            state.queue.append((message.index, clip))
            if state.playing is None:
                app._play_next_segment()
        app._script_title()

    def _play_next_segment(self) -> None:
        app = cast("BarkApp", self)
        state = app.seg
        if not state.queue:
            state.playing = None
            return
        index, clip = state.queue.popleft()
        if app._play_audio(clip, SAMPLE_RATE, None, f"playing segment {index + 1}"):
            state.playing = index
            state.token = app._play_token
            state.log.append(("play", index, time.monotonic()))
        else:
            state.queue.clear()
            state.playing = None

    def script_playback_ended(self, message: PlaybackEnded) -> None:
        app = cast("BarkApp", self)
        state = app.seg
        if state.token is not None and message.token == state.token:
            state.playing = None
            state.token = None
            app._play_next_segment()
            app._script_title()

    def stop_segment_playback(self) -> None:
        """The user stopped playback: the script being made plays no more segments."""
        app = cast("BarkApp", self)
        state = app.seg
        state.queue.clear()
        state.playing = state.token = None
        job = app.queue.running
        if isinstance(job, ScriptJob):
            state.muted = job.id

    def script_job_ended(self, message: JobEnded) -> None:
        app = cast("BarkApp", self)
        outcome = message.outcome
        state = app.seg
        state.making = None
        if outcome.remade is not None:
            if isinstance(outcome.job, RemakeJob):
                app._segment_remade(outcome.remade, outcome.job.index)
            return
        if not isinstance(outcome.job, ScriptJob):
            return
        if outcome.take is None:
            if state.playing is not None and app.player_if_started is not None:
                app.player_if_started.stop()
            state.queue.clear()
            state.playing = state.token = None
            return
        take = outcome.take
        first = take.timings.get("first_audio_s")
        total = take.timings.get("total_s")
        segments = take.segments or []
        # a resumed render's kept segments cost nothing now: say so beside the timings
        reused = sum(1 for r in segments if not r.get("seconds"))
        made = f" ({reused} reused)" if reused else ""
        app.main.generation.set_title(
            f"Take {take.id} done · {len(segments)} segments{made} · "
            f"{take.duration_s:.1f} s · first audio after {first:.1f} s of {total:.1f} s · "
            "ctrl+p → Re-make segment")


    def regenerate_script(self, take: Take) -> None:
        """Queue the render of a script take again (see `regenerate_script_job`)."""
        app = cast("BarkApp", self)
        app.submit(app.regenerate_script_job(take))

    def regenerate_script_job(self, take: Take) -> ScriptJob:
        """The job that renders a script take again with its seeds, voices and pauses
        (the same take).

        Each segment gets the seed it was made with: base + index, or the seed
        of a "re-make segment" (kept in its record).
        """
        from bark_engine.scripts.script import Script, Segment

        app = cast("BarkApp", self)
        segs = tuple(Segment(int(r["index"]), r["text"], r.get("voice"), r.get("speaker"),
                             float(r["pause_before_s"]), int(r.get("line_no") or 1))
                     for r in take.segments or [])
        script = Script(segs, tuple(dict.fromkeys(s.speaker for s in segs if s.speaker)), ())
        base = int(take.seed) if take.seed is not None else int(segs[0].index)
        options = dataclasses.replace(take.generation_options(), seed=None)
        timings = take.timings or {}
        seeds = {int(r["index"]): int(r["seed"]) for r in take.segments or []
                 if r.get("seed") is not None and int(r["seed"]) != base + int(r["index"])}
        job = ScriptJob(
            take.text, take.voice, options, f"{len(segs)} segments of take {take.id}",
            app.host.config.size, ray_label(app.settings.ray) or app.device_label,
            regenerates=take.id, id=next(app._job_ids),
            script=script, seed=base, continuity=str(timings.get("continuity") or "fixed"),
            reset_every=timings.get("reset_every"),
            play_while_generating=app.settings.play_while_generating, seeds=seeds,
            ray=app.settings.ray,
        )
        return app._keyed(job)

    # --- re-make one segment -------------------------------------------------------------

    def action_remake_segment(self) -> None:
        """Ask which segment of the selected script take to re-make (with a new seed)."""
        from ...screens.prompt import PromptScreen

        app = cast("BarkApp", self)
        take: Take | None = app.main.history.current
        if take is None or not take.segments:
            app.notify("Select a script take (one made of several segments) first.",
                       severity="warning", markup=False)
            return
        count = len(take.segments)

        def check(answer: str) -> str | None:
            if not answer.strip().isdigit() or not 1 <= int(answer) <= count:
                return f"Type a segment number from 1 to {count}."
            return None

        def done(answer: str | None) -> None:
            if answer is not None:
                app.remake_segment(take, int(answer) - 1)

        app.push_screen(PromptScreen(f"Re-make a segment of take {take.id}",
                                     f"Segment number (1–{count}); it gets a new seed:", "",
                                     check, "Re-make"), done)

    def remake_segment(self, take: Take, index: int, seed: int | None = None) -> None:
        """Queue the re-make: it waits its turn, shows its stages, and esc cancels it."""
        app = cast("BarkApp", self)
        if seed is None:
            seed = random.randrange(2**31)
        app.submit(remake_job(take, index, seed, app.host.config.size, app.device_label,
                              next(app._job_ids)))

    # --- jobs put back from the last session --------------------------------------------

    def job_from_take_record(self, record: dict[str, Any]) -> Job | None:
        """A re-render or re-make job (`records.NEEDS_TAKE`) that `job_record` kept at
        quit, built anew from the take it names, which must still be in the history;
        None when that take is gone or the record is unreadable."""
        from ..jobs.records import whole

        app = cast("BarkApp", self)
        take_id = whole(record.get("take"), 1, 2**62)
        take = app.store.get(take_id) if take_id is not None and app.store else None
        if take is None or take.is_deleted or not take.segments:
            return None
        if record.get("kind") == "rescript":
            return app.regenerate_script_job(take)
        index, seed = whole(record.get("index"), 0, len(take.segments) - 1), whole(record.get("seed"))
        if index is None or seed is None:
            return None
        return remake_job(take, index, seed, app.host.config.size, app.device_label,
                          next(app._job_ids))

    def _segment_remade(self, take: Take, index: int) -> None:
        app = cast("BarkApp", self)
        app._audio.pop(("take", take.id), None)
        if not app.queue.busy:  # else the next job's title stays
            app.main.generation.set_title(
                f"Segment {index + 1} of take {take.id} re-made · take re-stitched, "
                f"{take.duration_s:.1f} s · ctrl+r plays it")
        app.main.refresh_history(select=take.id)
        app.notify(f"Segment {index + 1} of take {take.id} re-made; the take is "
                   f"re-stitched ({take.duration_s:.1f} s).", markup=False)
