"""A long script sent from the studio to Ray workers (Settings → Ray cluster): a real
local Ray instance on 127.0.0.1, tiny random-weight models, the real app via Pilot."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from bark_tui.core import locations  # noqa: E402
from bark_tui.core.settings import Settings, validate_settings  # noqa: E402
from bark_tui.studio.jobs.script import parts_dir_for  # noqa: E402

from .test_app_support import (  # noqa: E402
    fresh_home,
    make_app,
    wait_for_message,
    wait_until,
    write_settings,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TAKE_S = 0.15
LINES = "\n\n".join(f"Line number {i}." for i in range(24))


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


def test_the_ray_setting_is_checked_like_the_command_line():
    assert validate_settings(Settings(ray="local")) == []
    assert validate_settings(Settings(ray="ray://127.0.0.1:10001")) == []
    assert "ray://HOST:PORT" in validate_settings(Settings(ray="127.0.0.1:6379"))[0]
    assert "clear one of them" in validate_settings(
        Settings(ray="auto", server="http://127.0.0.1:8765"))[0]


async def test_a_script_on_ray_plays_early_cancels_resumes_and_equals_a_local_render(
        home, tiny_models):
    write_settings(seed_mode="fixed", fixed_seed=40, fine_temp=0.0, ray="local")
    app = make_app(tiny_models, take_s=TAKE_S)
    titles: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.set_text(LINES)
        await pilot.pause()
        await pilot.press("ctrl+g")

        def landed() -> bool:
            titles.append(str(app.main.generation.query_one("#gen-title").content))
            return any(kind == "made" for kind, _i, _t in app.segment_log)

        await wait_until(pilot, landed, 120, "the first segment from the workers")
        await pilot.press("escape")  # cancel: the workers stop, finished parts are kept
        await wait_until(pilot, lambda: not app.queue.busy, 60, "the cancel")
        await wait_for_message(pilot, app, "segments kept", 10)
        assert app.store.count() == 0
        assert any("Ray workers" in t for t in titles)  # the panel said where it runs
        # the same again: it goes on from the kept parts, on fresh workers
        kept = list(locations.takes_dir().glob("*.parts"))
        assert len(kept) == 1 and list(kept[0].glob("segment-*.npz"))
        await pilot.press("ctrl+g")
        await wait_for_message(pilot, app, "goes on from the unfinished render", 30)
        await wait_until(pilot, lambda: app.store.count() == 1 and not app.queue.busy, 180,
                         "the resumed take")
        on_ray = app.store.list_takes()[0]
        assert on_ray.segments[0]["seconds"] == 0  # reused, not made again
        assert all(r["seconds"] > 0 for r in on_ray.segments[-3:])
        assert parts_dir_for(on_ray) == kept[0]
        # the take's folder holds its segment files and nothing else (no manifest left)
        assert sorted(p.name for p in kept[0].iterdir()) == sorted(
            r["file"] for r in on_ray.segments)
        plays = [i for kind, i, _t in app.segment_log if kind == "play"]
        assert plays and plays[0] == 0  # heard from segment 1 on
    # the same script in this process: the same take, byte for byte
    write_settings(seed_mode="fixed", fixed_seed=40, fine_temp=0.0, ray=None)
    app = make_app(tiny_models, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.editor.set_text(LINES)
        await pilot.pause()
        before = app.store.count()
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.store.count() > before and not app.queue.busy,
                         180, "the local take")
        here = app.store.list_takes()[0]
    assert here.id != on_ray.id
    assert [r["seed"] for r in here.segments] == [r["seed"] for r in on_ray.segments]
    assert here.wav_path.read_bytes() == on_ray.wav_path.read_bytes()
