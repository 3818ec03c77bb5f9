"""The records the session keeps of unsent jobs: each kind reads back as the job it
was, and anything of the wrong type or out of range is dropped, not guessed at."""

from __future__ import annotations

import json

import pytest

from bark_engine.options import GenerationOptions
from bark_engine.scripts.parse import parse_script
from bark_engine.scripts.script import ScriptOptions
from bark_tui.core.job import Job
from bark_tui.studio.jobs.records import job_from_record, job_record
from bark_tui.studio.jobs.script import ScriptJob
from bark_tui.studio.jobs.takes import TakesJob

OPTIONS = GenerationOptions(text_temp=0.6, top_k=50, seed=9)


def round_trip(job: Job) -> Job | None:
    record = json.loads(json.dumps(job_record(job)))  # as the session file holds it
    return job_from_record(record, "small", "cpu", id=7)


def script_job(**over) -> ScriptJob:
    script = parse_script("Ann: Hello there.\n\nBob: [pause 1.5s] Hi, Ann.\n\n# Two\n\nThe end.",
                          ScriptOptions(speakers={"Ann": "v2/en_speaker_1"}))
    fields = dict(script=script, seed=100, continuity="chain", reset_every=3,
                  play_while_generating=False, free_seed=True, batch=2, ray=None)
    fields.update(over)
    return ScriptJob("the text", "v2/en_speaker_6", OPTIONS, "3 segments", "small", "cpu",
                     id=1, **fields)


def test_each_kind_reads_back_as_the_job_it_was() -> None:
    take = round_trip(Job("Hello.", "v2/en_speaker_3", OPTIONS, "speaker 3", regenerates=4))
    assert type(take) is Job
    assert (take.text, take.voice, take.options, take.regenerates, take.id) == (
        "Hello.", "v2/en_speaker_3", OPTIONS, 4, 7)
    takes = round_trip(TakesJob("Hi.", None, OPTIONS, "no voice", seeds=[5, 6, 7]))
    assert isinstance(takes, TakesJob) and takes.seeds == [5, 6, 7]
    original = script_job()
    again = round_trip(original)
    assert isinstance(again, ScriptJob)
    assert again.script == original.script  # segments, voices, pauses, chapters as parsed
    for name in ("seed", "continuity", "reset_every", "play_while_generating", "free_seed",
                 "batch", "ray", "options", "voice", "text", "voice_label"):
        assert getattr(again, name) == getattr(original, name), name
    assert round_trip(script_job(ray="local")).device == "Ray local"
    # a record from before the kinds is a plain take
    old = {"text": "Old.", "voice": None, "options": {"seed": 3}}
    assert type(job_from_record(old, "small", "cpu", 1)) is Job


def spoiled(record: dict, path: tuple, value) -> dict:
    copy = json.loads(json.dumps(record))
    here = copy
    for key in path[:-1]:
        here = here[key]
    here[path[-1]] = value
    return copy


@pytest.mark.parametrize(("path", "value"), [
    (("options", "text_temp"), "hot"),
    (("options", "text_temp"), float("nan")),
    (("options", "seed"), 1.5),
    (("options", "seed"), True),
    (("options", "seed"), -1),
    (("options", "seed"), 2**64),
    (("options", "top_k"), 0),
    (("options", "allow_early_stop"), 1),
    (("text",), None),
    (("voice",), 3),
])
def test_a_value_of_the_wrong_type_drops_the_record(path, value) -> None:
    record = job_record(Job("Hello.", None, OPTIONS))
    assert job_from_record(record, "small", "cpu", 1) is not None
    assert job_from_record(spoiled(record, path, value), "small", "cpu", 1) is None


def test_several_takes_and_scripts_are_read_as_strictly() -> None:
    takes = job_record(TakesJob("Hi.", None, OPTIONS, seeds=[5, 6]))
    assert job_from_record(takes, "small", "cpu", 1) is not None
    for seeds in ([5], list(range(64)), [5, True], [5, "6"], "56"):
        assert job_from_record(spoiled(takes, ("seeds",), seeds), "small", "cpu", 1) is None
    script = job_record(script_job())
    assert job_from_record(script, "small", "cpu", 1) is not None
    for path, value in [(("seed",), None), (("seed",), True), (("seed",), 2**63),
                        (("script", "segments", 0, "line_no"), "x"),
                        (("script", "segments", 0, "text"), "  "),
                        (("script", "segments", 0, "pause_before_s"), True),
                        (("script", "segments", 0, "chapter"), 9),
                        (("script", "speakers_found"), "Ann"),
                        (("script", "chapters", 0, "title"), None),
                        (("continuity",), "sideways"), (("batch",), 0),
                        (("reset_every",), "3"), (("script", "segments"), []),
                        (("script", "segments", 0, "index"), 5),
                        (("script", "segments", 1, "pause_before_s"), "long"),
                        (("script", "segments", 0, "unknown"), 1), (("script",), "text")]:
        assert job_from_record(spoiled(script, path, value), "small", "cpu", 1) is None, path
    # the kinds that name a take are the app's to build (it has the history)
    remake = {**job_record(Job("x", None, OPTIONS)), "kind": "remake", "take": 1}
    assert job_from_record(remake, "small", "cpu", 1) is None
