"""What outlives one run of the studio: the session saved on quit (script, voice, unsent
jobs), the queue put back at the next start, and the history tidied in the background.

A mixin of :class:`~bark_tui.studio.app.BarkApp`. Nothing is lost on the way out:
quitting cancels the running job first and saves what was not sent; the next start
puts it back held, for ctrl+g to go on with.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, cast

from bark_engine.files import remove_stale_temps

from ...core import locations
from ...core.guard import format_traceback, log_error, one_line
from ...core.job import Job
from ...core.session import Session, save_session
from ..jobs.records import NEEDS_TAKE, job_from_record, job_record
from ..jobs.script import ScriptJob

if TYPE_CHECKING:
    from ..app import BarkApp
    pass

DELETED_GRACE_S = 600.0  # a take deleted by another instance stays undoable there this long


class SessionMixin:
    """Start-up tidying, quitting, and the session's queue."""

    def _tidy_history(self) -> None:
        """Start-up, in a worker: what a crash left behind (files without a row, and
        half-written exports in the output and voices folders) and the takes deleted in
        earlier sessions are removed, and their space comes back. A take deleted less
        than `DELETED_GRACE_S` ago stays, so another instance's fresh delete can still
        be undone there."""
        from datetime import datetime, timedelta, timezone

        app = cast("BarkApp", self)
        store = app.store
        if store is None:
            return
        before = (datetime.now(timezone.utc) - timedelta(seconds=DELETED_GRACE_S)).isoformat(
            timespec="milliseconds")
        try:
            orphans = store.cleanup_orphans()
            purged = store.purge_deleted(deleted_before=before)
            for folder in {app.output_dir(), locations.user_voices_dir()}:
                orphans += remove_stale_temps(folder, DELETED_GRACE_S)  # killed exports
        except Exception as exc:  # noqa: BLE001 - tidying is a courtesy; say it and go on
            app.call_from_thread(app.notify, f"Could not tidy the history folder: {exc}",
                                 severity="warning", markup=False)
            return
        app.tidied = (len(orphans), purged)

    async def action_quit(self) -> None:
        """Stop generation (the worker sees its cancel event within a token) and leave.
        Quitting during a script render says, once the terminal is back, that its
        finished segments are kept and how to go on (`run_app` prints `quit_note`)."""
        app = cast("BarkApp", self)
        running = app.queue.running
        if isinstance(running, ScriptJob) and not running.cancel.is_set():
            app.quit_note = (f"bark-tui: the script render (job {running.id}) was stopped; its "
                             "finished segments are kept, and it waits in the queue at the "
                             "next start: ctrl+g goes on from them.")
        app._unsent = app._unsent_jobs()
        app.queue.cancel_all()
        if app._player is not None:
            app._player.stop()
        app.exit()

    def _unsent_jobs(self) -> tuple[dict, ...]:
        """The jobs not done yet (the one being made, unless the user cancelled it, then
        the waiting ones: takes, several takes, scripts, re-renders and re-makes), as
        records the next start puts back in the queue. A script that was being made goes
        on from its kept segments."""
        app = cast("BarkApp", self)
        jobs = [app.queue.running, *app.queue.waiting]
        return tuple(job_record(job) for job in jobs
                     if job is not None and not job.cancel.is_set())

    def _job_from_record(self, record: dict) -> Job | None:
        """The job a record describes, or None when it cannot be put back; a record that
        trips anything unforeseen is one lost job, never the whole queue."""
        app = cast("BarkApp", self)
        try:
            if record.get("kind") in NEEDS_TAKE:
                return app.job_from_take_record(record)  # finds the take in the history
            job = job_from_record(record, app.host.config.size, app.device_label,
                                  next(app._job_ids))
            return app._keyed(job) if isinstance(job, ScriptJob) else job
        except Exception as exc:  # noqa: BLE001 - logged; the other records still come back
            log_error(f"putting back a queued job: {one_line(exc)}", format_traceback(exc))
            return None

    def restore_queue(self) -> None:
        """Jobs that were waiting when the studio closed wait again, held: the next
        ctrl+g goes on with them (ctrl+p → Clear queue drops them). Called once, by the
        main screen's mount (the panel must exist)."""
        app = cast("BarkApp", self)
        records = app.session.queued
        app.session = dataclasses.replace(app.session, queued=())  # put back once
        built = [job for record in records if (job := app._job_from_record(record)) is not None]
        # the one that was being made plus a full queue: ctrl+g starts the first of them
        jobs = built[: app.queue.capacity + 1]
        if len(built) < len(records):
            app.notify(f"{len(records) - len(built)} job(s) from last time could not be put "
                       "back: their take was deleted, or the record does not read.",
                       severity="warning", markup=False, timeout=10)
        if len(jobs) < len(built):
            dropped = ", ".join(f"“{job.snippet}”" for job in built[len(jobs):])
            app.notify(f"The queue holds {app.queue.capacity + 1} jobs; these did not fit and were "
                       f"not put back: {dropped}.", severity="warning", markup=False,
                       timeout=15)
        if not jobs:
            return
        app.queue.waiting.extend(jobs)
        app.main.generation.set_title(f"{len(jobs)} job(s) from last time wait in the queue · "
                                      "ctrl+g goes on with them")
        app.notify(f"{len(jobs)} job(s) that were waiting when the studio closed are back in "
                   "the queue, held: ctrl+g goes on with them (ctrl+p → Clear queue drops "
                   "them).", markup=False, timeout=10)
        app.refresh_status()

    def on_unmount(self) -> None:
        app = cast("BarkApp", self)
        busy = app.queue.busy
        unsent = app._unsent if app._unsent is not None else app._unsent_jobs()
        app.queue.cancel_all()
        main = getattr(self, "_main_screen", None)
        if main is not None:
            try:
                save_session(locations.session_path(), Session(
                    script=main.last_script, voice=main.last_voice, queued=unsent))
            except Exception as exc:  # noqa: BLE001 - quitting goes on; the log says why
                log_error(f"saving the session: {one_line(exc)}", format_traceback(exc))
        if app.store is not None and not busy:
            deleted = app._deleted_this_session()
            try:  # the undo window ends with the session: deleted takes free their space
                app.store.purge_deleted(ids=deleted)
            except Exception as exc:  # noqa: BLE001 - the next start tries again
                log_error(f"purging deleted takes on quit: {one_line(exc)}",
                          format_traceback(exc))
            app.store.close()  # a worker still saving keeps it; the process end closes it

    def _deleted_this_session(self) -> list[int]:
        main = getattr(self, "_main_screen", None)  # unmounting: the stack may be gone
        return list(main.undo_stack) if main is not None else []
