"""A checkbox whose state is in its text: ``▐X▌`` when on, ``▐ ▌`` when off.

Textual's own checkbox draws the same ``X`` in both states and tells them
apart by colour only, which a colour-blind user, a monochrome terminal or
``NO_COLOR`` cannot see. This one keeps Textual's look and behaviour and
only leaves the box empty when it is off.
"""

from __future__ import annotations

from textual.widgets import Checkbox

MARK_ON = "X"
MARK_OFF = " "


class TickBox(Checkbox):
    """A :class:`~textual.widgets.Checkbox` that shows its state without colour."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - Textual's name for the mark
        return MARK_ON if self.value else MARK_OFF
