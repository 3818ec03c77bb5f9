"""The studio with its engine on a real `bark-tui serve` process (loopback, tiny weights):
the same workflow as a local engine, the sound and the history here."""

from __future__ import annotations

import numpy as np
import pytest

from bark_engine.options import GenerationOptions
from bark_tui.remote.choice import ServerChoice
from bark_tui.service.process import ServerProcess
from bark_tui.studio.jobs.script import load_segment, parts_dir_for

from .test_app_longscript import DIALOGUE, TAKE_S, render_script
from .test_app_support import (
    capture_each_play,
    compare_takes,
    fresh_home,
    generate_take,
    make_app,
    type_text,
    wait_for_message,
    wait_until,
    write_settings,
)

pytest.importorskip("fastapi")


@pytest.fixture
def home(tmp_path, monkeypatch):
    return fresh_home(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    with ServerProcess(tiny_models, tmp_path_factory.mktemp("studio-server")) as proc:
        yield proc


def served_app(server, **kwargs):
    """The studio with no models of its own: only the server's."""
    return make_app(None, server=ServerChoice(server.url), **kwargs)


async def test_generate_and_cancel_through_the_server(home, server, tiny_models):
    from bark_engine.engine import Engine
    from bark_engine.options import EngineConfig

    app = served_app(server)
    host = server.url.split("://")[1]
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.main.header.device == f"server {host}"
        app.main.editor.area.focus()
        await type_text(pilot, "Far away engine.")
        take = await generate_take(pilot, app)
        for stage in ("semantic", "coarse", "fine", "decode"):
            row = app.main.generation.row(stage)
            assert row.state == "done" and row.percent == 100.0, stage
        assert take.model_id.endswith(f"@ {server.url}")  # which server made it
        assert take.random_weights is True and take.seed == 1234
        assert app.main.header.device.startswith(f"cpu on {host}")
        local = Engine(EngineConfig(models=str(tiny_models), device="cpu")).generate(
            take.text, take.voice, GenerationOptions.from_mapping(take.options))
        assert np.array_equal(take.load_tokens()["fine_prompt"], local.fine)

        # a long take, cancelled while the server makes it; the next one still comes
        app.max_duration_s = None
        app.main.editor.set_text("A long one this time. " * 8)
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: app.main.generation.row("semantic").percent > 0, 60,
                         "the server's progress")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.queue.busy, 30, "the cancel")
        await wait_for_message(pilot, app, "nothing was saved")
        assert app.store.count() == 1
        app.max_duration_s = TAKE_S
        again = await generate_take(pilot, app)
        assert again.id != take.id


async def test_dialogue_plays_segment_one_from_the_server_before_the_last_is_made(
        home, server, audio_capture):
    write_settings(seed_mode="fixed", fixed_seed=7, fine_temp=0.0, batch=1,
                   speakers={"Ann": "v2/en_speaker_0", "Bob": "v2/en_speaker_6"})
    app = served_app(server, take_s=TAKE_S)
    play_files = capture_each_play(app, audio_capture)
    async with app.run_test(size=(120, 40)) as pilot:
        take = await render_script(pilot, app, DIALOGUE)
        segs = take.segments
        assert [s["voice"] for s in segs] == ["v2/en_speaker_0", "v2/en_speaker_6",
                                              "v2/en_speaker_0"]
        made = {i: t for kind, i, t in app.segment_log if kind == "made"}
        plays = [(i, t) for kind, i, t in app.segment_log if kind == "play"]
        assert plays and plays[0][0] == 0 and plays[0][1] < made[len(segs) - 1]
        await wait_until(pilot, lambda: not app.player_if_started.is_playing, 20, "playback")
        first = load_segment(parts_dir_for(take) / segs[0]["file"])["audio"]
        captured = audio_capture.samples(play_files[0])  # what PortAudio played, here
        start = int(np.flatnonzero(first)[0])
        np.testing.assert_array_equal(captured[: len(first) - start], first[start:])
        assert server.url in take.model_id


async def test_several_takes_come_from_one_server_job(home, server):
    write_settings(seed_mode="fixed", fixed_seed=40, fine_temp=0.0)
    app = served_app(server, take_s=TAKE_S)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await compare_takes(pilot, app, "Hello.", 3)
        assert [g.seed for g in screen.generations] == [40, 41, 42]
        await pilot.press("k")
        await wait_for_message(pilot, app, "Kept take(s)", 30)
        assert [t.seed for t in app.store.list_takes()] == [40]


async def test_a_server_killed_mid_take_is_a_notice_and_the_studio_goes_on(
        home, tiny_models, tmp_path):
    proc = ServerProcess(tiny_models, tmp_path / "doomed").start()
    try:
        app = make_app(None, take_s=None, server=ServerChoice(proc.url))
        async with app.run_test(size=(120, 40)) as pilot:
            app.main.editor.set_text("This take will never finish. " * 6)
            await pilot.press("ctrl+g")
            await wait_until(pilot, lambda: app.main.generation.row("semantic").percent > 0, 60,
                             "the server's progress")
            proc.kill()
            await wait_until(pilot, lambda: not app.queue.busy, 30, "the job to end")
            await wait_for_message(pilot, app, "lost the connection", 10)
            assert app.store.count() == 0
            await pilot.press("ctrl+g")  # no server now: one clear line, no crash
            await wait_for_message(pilot, app, "no Bark server at", 30)
    finally:
        proc.stop()


async def test_saving_settings_keeps_the_server_given_on_the_command_line(home, server):
    from bark_tui.core import locations
    from bark_tui.core.settings import load_settings
    from bark_tui.screens.settings import SettingsScreen

    given = ServerChoice(server.url, "k" * 24)  # as --server URL --api-key-file F gives it
    app = make_app(None, server=given)
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_settings()
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen), 10, "settings")
        await pilot.pause()
        assert app.screen.query_one("#set-server").value == server.url
        app.screen.query_one("#set-fine_temp").value = "0.4"
        await pilot.press("ctrl+s")
        await wait_for_message(pilot, app, "Settings saved")
        assert app.host.server is given  # still the key it came with
        saved, _ = load_settings(locations.settings_path())
        assert saved.fine_temp == 0.4 and saved.server is None  # nothing typed, nothing kept
        # clearing the field goes back to this machine
        app.action_settings()
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen), 10, "settings")
        await pilot.pause()
        app.screen.query_one("#set-server").value = ""
        await pilot.press("ctrl+s")
        await wait_for_message(pilot, app, "engine on this machine")
        assert app.host.server is None


async def test_saving_settings_keeps_one_off_command_line_models_out_of_the_file(
        home, tiny_models):
    from bark_tui.core import locations
    from bark_tui.core.settings import load_settings
    from bark_tui.screens.settings import SettingsScreen

    write_settings(models="/saved/models", size="small")
    app = make_app(tiny_models)  # as `bark-tui --models DIR` for this run
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_settings()
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen), 10, "settings")
        await pilot.pause()
        assert app.screen.query_one("#set-models").value == str(tiny_models)
        app.screen.query_one("#set-text_temp").value = "0.5"
        await pilot.press("ctrl+s")
        await wait_for_message(pilot, app, "Settings saved")
        saved, _ = load_settings(locations.settings_path())
        assert saved.text_temp == 0.5 and saved.models == "/saved/models"
        assert app.host.config.models == str(tiny_models)  # this run keeps its flag
