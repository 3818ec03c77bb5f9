"""Cluster renders on a real local Ray instance (127.0.0.1) with tiny random-weight
models: the same WAV as one process, workers killed midway, failures, chained groups."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

pytest.importorskip("ray")

from bark_engine.engine import Engine  # noqa: E402
from bark_engine.options import EngineConfig, GenerationOptions  # noqa: E402
from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.render import RenderOptions, ScriptRenderer  # noqa: E402
from bark_engine.scripts.script import ScriptOptions
from bark_tui.cluster.connect import connect, disconnect  # noqa: E402
from bark_tui.cluster.driver import ClusterError, ClusterOptions, ClusterRenderer  # noqa: E402
from bark_tui.cluster.manifest import read_manifest  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

VOICE = "v2/en_speaker_0"
GEN = GenerationOptions(max_duration_s=0.2)  # random weights never stop by themselves


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (2 CPUs, loopback), stopped after it."""
    cluster = connect("local", num_cpus=2)
    yield cluster
    disconnect()


@pytest.fixture(scope="module")
def config(tiny_models) -> EngineConfig:
    return EngineConfig(models=str(tiny_models))


def script_of(engine: Engine, n: int, **kw):
    text = "\n\n".join(f"Segment number {i} of the script." for i in range(n))
    return parse_script(text, ScriptOptions(default_voice=VOICE, **kw),
                        count_tokens=engine.count_tokens)


def options(tmp_path, name: str, **kw) -> RenderOptions:
    return RenderOptions(generation=GEN, seed=11, default_voice=VOICE,
                         parts_dir=tmp_path / name, **kw)


@pytest.fixture(scope="module")
def forty(config, tmp_path_factory):
    """A 40-segment script and its one-process render."""
    engine = Engine(config)
    script = script_of(engine, 40)
    local = ScriptRenderer(engine, options(tmp_path_factory.mktemp("local"), "p")).render(script)
    return script, local


def cluster_render(config, opts, script, **kw):
    return ClusterRenderer(Engine(config), config, opts, ClusterOptions(**kw))


def test_forty_segments_on_two_workers_equal_one_process(ray_local, config, forty, tmp_path):
    script, local = forty
    snaps = []
    done = cluster_render(config, options(tmp_path, "parts"), script, workers=2).render(
        script, on_progress=snaps.append)
    assert np.array_equal(done.rendered.audio, local.audio)  # bit for bit
    m = read_manifest(tmp_path / "parts")
    assert m is not None and m.done == 40 and len(m.workers) == 2
    assert {e.worker for e in m.entries} == {"w1", "w2"}  # both did work
    assert all(e.retries == 0 and not e.reused for e in m.entries)
    assert all((tmp_path / "parts" / e.part).exists() for e in m.entries)
    assert m.entries[0].seed == 11 and m.entries[39].seed == 50 and m.entries[5].key
    last = [s for s in snaps if s is not None][-1]
    assert last.done == 40 and last.made == 40 and last.audio_s > 0
    assert sum(w.made for w in last.workers) == 40


def test_a_killed_worker_loses_nothing_and_repeats_nothing(ray_local, config, forty, tmp_path):
    script, local = forty
    killed: list[tuple[str, int, tuple[int, ...]]] = []
    snaps = []

    def kill_once(snap):
        snaps.append(snap)
        if snap is None or killed or snap.done < 8:
            return
        for w in snap.workers:
            if w.state == "making" and w.pid:
                killed.append((w.name, w.pid, w.segments))
                os.kill(w.pid, signal.SIGKILL)
                return

    done = cluster_render(config, options(tmp_path, "parts"), script, workers=2,
                          retries=2).render(script, on_progress=kill_once)
    assert killed, "no worker was busy to be killed"
    name, pid, lost = killed[0]
    assert np.array_equal(done.rendered.audio, local.audio)
    entries = read_manifest(tmp_path / "parts").entries
    retried = {e.index for e in entries if e.retries}
    assert retried == set(lost)  # exactly the batch in flight was made again
    assert all(e.retries == 1 and e.worker == name for e in entries if e.index in retried)
    assert all(e.status == "done" for e in entries)
    # nothing made twice: 40 segments came back, one each; the killed worker was restarted
    last = [s for s in snaps if s is not None][-1]
    assert last.made == 40 and sum(w.made for w in last.workers) == 40
    assert next(w for w in last.workers if w.name == name).pid != pid


def test_a_worker_that_fails_for_good_keeps_the_parts_and_a_rerun_reuses_them(
        ray_local, config, forty, tmp_path):
    script, local = forty
    killed = []

    def kill_once(snap):
        if snap is None or killed or snap.done < 6:
            return
        for w in snap.workers:
            if w.state == "making" and w.pid:
                killed.append(w.pid)
                os.kill(w.pid, signal.SIGKILL)
                return

    with pytest.raises(ClusterError, match="failed for good.*run the same command again"):
        cluster_render(config, options(tmp_path, "parts"), script, workers=2,
                       retries=0).render(script, on_progress=kill_once)
    kept = read_manifest(tmp_path / "parts")
    assert kept.done >= 6
    again = cluster_render(config, options(tmp_path, "parts"), script, workers=2).render(script)
    reused = [e for e in again.manifest.entries if e.reused]
    assert len(reused) >= kept.done
    assert np.array_equal(again.rendered.audio, local.audio)


def test_chained_groups_run_in_order(ray_local, config, tmp_path):
    engine = Engine(config)
    script = script_of(engine, 10)
    opts = options(tmp_path, "local", continuity="chain", reset_every=4)
    local = ScriptRenderer(engine, opts).render(script)
    copts = options(tmp_path, "parts", continuity="chain", reset_every=4)
    done = cluster_render(config, copts, script, workers=2).render(script)
    assert np.array_equal(done.rendered.audio, local.audio)
    entries = {e.index: e for e in done.manifest.entries}
    # groups of 4, 4 and 2: each segment after the first of its group follows the one before
    assert [entries[i].after for i in range(10)] == [None, 0, 1, 2, None, 4, 5, 6, None, 8]
    assert len({entries[i].group for i in range(10)}) == 3
    assert all(t.chained == (entries[t.segment.index].after is not None)
               for t in done.rendered.segments)


def test_workers_that_cannot_load_their_models_end_the_render_in_one_line(
        ray_local, config, tmp_path):
    engine = Engine(config)  # the driver's models are fine; the workers' folder is missing
    script = script_of(engine, 2)
    broken = EngineConfig(models=str(tmp_path / "no-such-models"), offline=True)
    with pytest.raises(ClusterError, match="worker w1 could not start: .*no-such-models"):
        ClusterRenderer(engine, broken, options(tmp_path, "parts"),
                        ClusterOptions(workers=1, retries=0)).render(script)
