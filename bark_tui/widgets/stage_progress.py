"""One row per engine stage: a bar, the count, the speed and an ETA.

The row is dumb: the app hands it numbers from ``StageUpdate`` messages and it
draws them. Its state is written out ("waiting", "running", "done",
"cancelled") next to the bar, so it reads the same without colour.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

STATES = ("waiting", "running", "done", "cancelled", "failed")


def format_eta(step: int, total: int | None, tokens_per_s: float) -> str:
    """"ETA 7 s" when it can be known, else ""."""
    if total is None or tokens_per_s <= 0 or step >= total:
        return ""
    seconds = (total - step) / tokens_per_s
    return f"ETA {seconds:.0f} s" if seconds < 90 else f"ETA {seconds / 60:.0f} min"


def describe_stage(
    state: str, step: int, total: int | None, tokens_per_s: float, unit: str = "tok"
) -> str:
    """The words right of the bar."""
    if state == "waiting":
        return "waiting"
    if state == "cancelled":
        return f"cancelled at {step}"
    if state == "failed":
        return "failed"
    rate = f"{tokens_per_s:,.0f} {unit}/s" if tokens_per_s > 0 else ""
    if state == "done":
        return "  ".join(x for x in (f"done · {step} {unit}", rate) if x)
    count = f"{step}/{total}" if total else f"{step}"
    return "  ".join(x for x in (count, rate, format_eta(step, total, tokens_per_s)) if x)


class StageRow(Horizontal):
    """``name  [bar] 57%  362/636  39 tok/s  ETA 7 s``."""

    def __init__(self, stage: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.unit = "samples" if stage == "decode" else "tok"
        self.state = "waiting"
        self.step = 0
        self.total: int | None = None
        self.tokens_per_s = 0.0

    def compose(self) -> ComposeResult:
        yield Label(self.stage, classes="stage-name")
        yield ProgressBar(total=100, show_eta=False, classes="stage-bar")
        yield Label("waiting", classes="stage-detail", markup=False)

    def show(
        self, state: str, step: int = 0, total: int | None = None, tokens_per_s: float = 0.0
    ) -> None:
        """Draw a new state; the bar fills to 100 % when the stage is done."""
        self.state, self.step, self.total, self.tokens_per_s = state, step, total, tokens_per_s
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
        detail = describe_stage(state, step, total, tokens_per_s, self.unit)
        self.query_one(".stage-detail", Label).update(detail)

    @property
    def percent(self) -> float:
        """What the bar shows, 0–100 (tests read this)."""
        bar = self.query_one(ProgressBar)
        return 0.0 if bar.percentage is None else bar.percentage * 100
