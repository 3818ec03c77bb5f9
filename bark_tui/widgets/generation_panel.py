"""What the engine is doing: the job in hand, four stage rows, settings, queue.

Everything a person needs to trust a take is on one panel: which voice, seed,
temperatures, size and device are in force, how far each stage is, and what
waits behind it.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from bark_engine.events import STAGES
from bark_engine.options import GenerationOptions

from ..core.guard import GuardedHandlers
from ..core.job import Job
from .stage_progress import StageRow


def describe_options(
    options: GenerationOptions, voice_label: str, size: str, device: str, seed: str = ""
) -> str:
    """``seed 77 · v2/en_speaker_6 · T 0.7/0.7/0.5 · min_eos_p 0.2 · small · cpu``."""
    o = options
    fine = "argmax" if not o.fine_temp else f"{o.fine_temp:g}"
    eos = "off" if o.min_eos_p is None else f"{o.min_eos_p:g}"
    seed = seed or ("random" if o.seed is None else str(o.seed))
    return (
        f"seed {seed} · voice {voice_label} · T {o.text_temp:g}/{o.waveform_temp:g}/{fine} · "
        f"min_eos_p {eos} · {size} · {device}"
    )


def describe_queue(waiting: Iterable[Job], capacity: int) -> str:
    jobs = list(waiting)
    if not jobs:
        return f"Queue: empty (up to {capacity} can wait)"
    names = " · ".join(f"job {j.id} “{j.snippet}”" for j in jobs)
    return f"Queue: {len(jobs)}/{capacity} waiting — {names}"


class GenerationPanel(GuardedHandlers, Vertical):
    """Title line, one :class:`StageRow` per stage, the settings line, the queue line."""

    def compose(self) -> ComposeResult:
        yield Label("Idle — ctrl+g generates the script", id="gen-title", markup=False)
        for stage in STAGES:
            yield StageRow(stage, id=f"stage-{stage}")
        yield Label("", id="gen-settings", markup=False)
        yield Label("", id="gen-queue", markup=False)

    def row(self, stage: str) -> StageRow:
        return self.query_one(f"#stage-{stage}", StageRow)

    def set_title(self, text: str, busy: bool = False) -> None:
        self.query_one("#gen-title", Label).update(text)
        self.set_class(busy, "-busy")

    def set_settings(self, text: str) -> None:
        self.query_one("#gen-settings", Label).update(text)

    def set_queue(self, waiting: Iterable[Job], capacity: int) -> None:
        waiting = list(waiting)
        label = self.query_one("#gen-queue", Label)
        label.update(describe_queue(waiting, capacity))
        label.set_class(not waiting, "-empty")  # the compact layout leaves an empty queue out

    def start_job(self, job: Job) -> None:
        self.set_title(f"{job.doing} · esc cancels", busy=True)
        self.set_settings(
            "In force: " + describe_options(job.options, job.voice_label, job.size, job.device)
        )
        for stage in STAGES:
            self.row(stage).show("waiting")

    def stop_running_rows(self, state: str) -> None:
        """Mark the rows that had not finished as cancelled or failed."""
        for stage in STAGES:
            row = self.row(stage)
            if row.state == "running":
                row.show(state, row.step, row.total)
