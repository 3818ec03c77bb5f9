"""The bridge from engine events to app messages: throttled, never losing a start or an end."""

from __future__ import annotations

from bark_engine.events import LoadProgress, StageFinished, StageProgress, StageStarted
from bark_engine.options import GenerationOptions
from bark_tui.core.job import Job
from bark_tui.studio.jobs.bridge import EventBridge
from bark_tui.studio.jobs.queue import GenerationQueue
from bark_tui.studio.messages import EngineLoading, StageUpdate


def test_a_fast_token_loop_posts_a_handful_of_messages():
    posted: list = []
    bridge = EventBridge(posted.append, job_id=7)
    bridge(StageStarted("coarse", 20_000))
    for step in range(1, 20_001):  # far faster than 20 per second
        bridge(StageProgress("coarse", step, 20_000, 900.0, step / 900))
    bridge(StageFinished("coarse", 10_000, 22.2))
    updates = [m for m in posted if isinstance(m, StageUpdate)]
    assert len(updates) <= 10  # start, at most a few progress updates, the final step, the end
    assert updates[0].step == 0 and updates[0].state == "running"
    assert updates[-2].step == 20_000  # the last step always goes out
    assert updates[-1].state == "done" and updates[-1].step == 10_000
    assert all(m.job_id == 7 for m in updates)


def test_progress_messages_replace_only_their_own_kind():
    a = StageUpdate(1, "semantic", 5, 768)
    b = StageUpdate(1, "semantic", 6, 768)
    other_stage = StageUpdate(1, "coarse", 1, 100)
    done = StageUpdate(1, "semantic", 768, 768, state="done")
    assert b.can_replace(a)
    assert not b.can_replace(other_stage)
    assert not done.can_replace(a) and not b.can_replace(done)
    assert not StageUpdate(2, "semantic", 6, 768).can_replace(a)


def test_load_progress_is_throttled_per_file_but_completion_always_shows():
    posted: list = []
    bridge = EventBridge(posted.append, job_id=1)
    for done in range(0, 1001):
        bridge(LoadProgress("text.pt", done, 1000))
    loads = [m for m in posted if isinstance(m, EngineLoading)]
    assert 1 <= len(loads) <= 5 and loads[-1].done == 1000


def test_queue_is_first_in_first_out_and_capped():
    queue = GenerationQueue(capacity=2)
    jobs = [Job(f"take {i}", None, GenerationOptions(), id=i) for i in range(1, 5)]
    assert [queue.submit(j) for j in jobs] == ["start", "queued", "queued", "full"]
    assert queue.running is jobs[0] and list(queue.waiting) == jobs[1:3]
    assert queue.finish(jobs[0]) is jobs[1]
    queue.cancel_all()
    assert jobs[1].cancel.is_set() and jobs[2].cancel.is_set() and not queue.waiting
