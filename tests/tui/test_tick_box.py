"""Checkboxes say their state in text, so it reads without colour (NO_COLOR too)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from bark_tui.widgets.tick_box import MARK_OFF, MARK_ON, TickBox


class _OneBox(App[None]):
    def compose(self) -> ComposeResult:
        yield TickBox("Trim silence", False, id="box")


def _mark(box: TickBox) -> str:
    text = box.render().plain  # "▐ ▌ Trim silence"
    return text[text.index("▐") + 1]


async def test_the_mark_follows_the_state_by_keyboard(monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = _OneBox()
    async with app.run_test() as pilot:
        box = app.query_one(TickBox)
        assert _mark(box) == MARK_OFF and not box.value
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert box.value and _mark(box) == MARK_ON
        await pilot.press("enter")
        await pilot.pause()
        assert not box.value and _mark(box) == MARK_OFF
