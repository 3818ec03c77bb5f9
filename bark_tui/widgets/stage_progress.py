"""One row per engine stage: a bar, the count, the speed and an ETA.

The row is dumb: the app hands it numbers from ``StageUpdate`` messages and it
draws them. Its state is written out ("waiting", "running", "done",
"cancelled") next to the bar, so it reads the same without colour.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from bark_engine.config import SAMPLE_RATE

from ..core.guard import GuardedHandlers

STATES = ("waiting", "running", "done", "cancelled", "failed")


def format_eta(step: int, total: int | None, tokens_per_s: float) -> str:
    """"ETA 7 s" when it can be known, else ""."""
    if total is None or tokens_per_s <= 0 or step >= total:
        return ""
    seconds = (total - step) / tokens_per_s
    return f"ETA {seconds:.0f} s" if seconds < 90 else f"ETA {seconds / 60:.0f} min"


# What one progress step of each stage is, and what a finished stage reports.
STEP_UNITS = {"semantic": "tok", "coarse": "tok", "fine": "passes", "decode": ""}
DONE_UNITS = {"semantic": "tok", "coarse": "frames", "fine": "frames", "decode": "samples"}


def describe_stage(
    stage: str,
    state: str,
    step: int,
    total: int | None,
    rate: float,
    elapsed_s: float | None = None,
) -> str:
    """The words right of the bar. ``rate`` is steps per second (0 = unknown)."""
    unit = STEP_UNITS.get(stage, "")
    speed = f"{rate:,.0f} {unit}/s" if rate > 0 and unit else ""
    if state == "waiting":
        return "waiting"
    if state == "cancelled":
        return f"cancelled at {step}/{total}" if total else f"cancelled at {step}"
    if state == "failed":
        return "failed"
    if state == "done":
        if stage == "decode":
            made = f"{step / SAMPLE_RATE:.1f} s of audio"
        else:
            made = f"{step} {DONE_UNITS.get(stage, 'tok')}"
        took = "" if elapsed_s is None else f"in {elapsed_s:.1f} s"
        return "  ".join(x for x in (f"done · {made}", took, speed) if x)
    count = f"{step}/{total} {unit}".rstrip() if total else f"{step} {unit}".rstrip()
    return "  ".join(x for x in (count, speed, format_eta(step, total, rate)) if x)


class StageRow(GuardedHandlers, Horizontal):
    """``name  [bar] 57%  362/636  39 tok/s  ETA 7 s``."""

    def __init__(self, stage: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.state = "waiting"
        self.step = 0
        self.total: int | None = None
        self.rate = 0.0  # steps per second while running (kept when the stage ends)

    def compose(self) -> ComposeResult:
        yield Label(self.stage, classes="stage-name")
        yield ProgressBar(total=100, show_eta=False, classes="stage-bar")
        yield Label("waiting", classes="stage-detail", markup=False)

    def show(
        self,
        state: str,
        step: int = 0,
        total: int | None = None,
        rate: float | None = None,
        elapsed_s: float | None = None,
    ) -> None:
        """Draw a new state; the bar fills to 100 % when the stage is done.

        ``rate`` (steps/s) None keeps the last known one, so a finished stage
        still says how fast it ran.
        """
        if state == "waiting":
            self.rate = 0.0
        elif rate is not None:
            self.rate = rate
        self.state, self.step, self.total = state, step, total
        bar = self.query_one(ProgressBar)
        if state == "done":
            bar.update(total=100, progress=100)
        elif state == "waiting":
            bar.update(total=100, progress=0)
        elif state == "running" and total:
            bar.update(total=total, progress=min(step, total))
        elif state == "running":
            bar.update(total=None)  # unknown length: an indeterminate bar
        for name in STATES:
            self.set_class(state == name, f"-{name}")
        detail = describe_stage(self.stage, state, step, total, self.rate, elapsed_s)
        self.query_one(".stage-detail", Label).update(detail)

    @property
    def percent(self) -> float:
        """What the bar shows, 0–100 (tests read this)."""
        bar = self.query_one(ProgressBar)
        return 0.0 if bar.percentage is None else bar.percentage * 100
