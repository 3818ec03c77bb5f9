"""Each message the studio reacts to has one handler in the app.

Textual calls a handler of a message in *every* class along the app's MRO
that defines one, so two mixins reacting to the same message would both run,
in an order set by the list of bases. The app keeps one handler per message
(it calls the controllers' parts in an order it states), and this test holds
it to that: any handler name defined in more than one of the studio's own
classes among the app's bases fails here.
"""

from __future__ import annotations

from bark_tui.studio.app import BarkApp


def _handler_owners() -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for cls in BarkApp.__mro__:
        if not cls.__module__.startswith("bark_tui"):
            continue  # Textual's own classes: their handlers are Textual's business
        for name in cls.__dict__:
            if name.startswith("on_") and callable(cls.__dict__[name]):
                owners.setdefault(name, []).append(cls.__qualname__)
    return owners


def test_every_message_has_one_handler_in_the_app() -> None:
    owners = _handler_owners()
    # the messages more than one controller reacts to are among those checked
    for name in ("on_job_ended", "on_stage_update", "on_playback_ended", "on_segment_ready"):
        assert name in owners, name
    twice = {name: classes for name, classes in owners.items() if len(classes) > 1}
    assert twice == {}


def test_the_app_calls_each_controller_part_of_a_shared_message() -> None:
    """The parts the single handlers call exist on the app (a renamed part would
    otherwise fail only when the message arrives)."""
    import inspect

    for handler in (BarkApp.on_job_ended, BarkApp.on_stage_update, BarkApp.on_playback_ended):
        source = inspect.getsource(handler)
        parts = [line.split("self.")[1].split("(")[0] for line in source.splitlines()
                 if line.strip().startswith("self.")]
        assert len(parts) >= 2, handler.__name__
        for part in parts:
            assert callable(getattr(BarkApp, part)), part
