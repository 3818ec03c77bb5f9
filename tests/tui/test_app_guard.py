"""A bug in a handler shows the error modal and the studio keeps running.

The failures here are real: a history row whose stored options are not the
JSON object the app expects (a damaged or foreign database) reaches the
regenerate handler, from a key in History and from the command palette.
Nothing in Textual or the app is patched.
"""

from __future__ import annotations

import sqlite3

import pytest

from bark_tui.core import locations
from bark_tui.screens.error import ErrorScreen

from .test_app_support import (
    fresh_home,
    generate_take,
    make_app,
    type_text,
    wait_until,
)

pytestmark = pytest.mark.expect_handler_errors


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def damage_options(take_id: int) -> None:
    """What another tool (or a half-restored backup) might leave: a list, not an object."""
    with sqlite3.connect(locations.history_db_path()) as conn:
        conn.execute("UPDATE takes SET options = ? WHERE id = ?", ("[0.7, 0.7]", take_id))


async def close_modal(pilot, app) -> None:
    await pilot.press("escape")
    await wait_until(pilot, lambda: not isinstance(app.screen, ErrorScreen), 10, "the close")


async def test_a_failing_handler_shows_the_modal_and_the_app_goes_on(home, tiny_models):
    app = make_app(tiny_models)
    async with app.run_test(size=(120, 40)) as pilot:
        await type_text(pilot, "Keep me.")
        take = await generate_take(pilot, app)
        damage_options(take.id)
        app.main.refresh_history(select=take.id)
        # g in History: the table posts its action, the main screen's handler fails
        app.main.history.focus()
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen), 10, "the modal")
        summary = str(app.screen.query_one("#error-summary").render())
        assert "AttributeError" in summary and "items" in summary
        assert "\n" not in summary.strip()  # one line
        details = app.screen.query_one("#error-details").text
        assert "Traceback" in details and "generation_options" in details
        log = locations.data_dir() / "errors.log"
        assert log.is_file() and str(log) in details
        logged = log.read_text()
        assert "Traceback" in logged and "AttributeError" in logged
        await close_modal(pilot, app)
        assert not app.queue.busy and app.store.count() == 1
        # the same bad value through the command palette: the app's own action fails
        await pilot.press("ctrl+p")
        await type_text(pilot, "Regenerate take")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorScreen), 10, "the modal")
        await close_modal(pilot, app)
        assert len(app.handler_errors) == 2
        assert log.read_text().count("Traceback") == 2
        # ... and the studio still does its work: type, generate, a new take lands
        app.main.editor.area.focus()
        await pilot.press("end", *" Again.")
        second = await generate_take(pilot, app)
        assert second.id != take.id and second.text == "Keep me. Again."
        assert app.is_running and app.return_code is None
