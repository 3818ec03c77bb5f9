"""History store on real SQLite files and real WAV/.npz files in a temp folder."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from bark_engine.options import GenerationOptions
from bark_engine.voices.prompts import VoicePrompt
from bark_tui.history import (
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    NewTake,
    SchemaTooNew,
    TakeFileMissing,
    TakeNotFound,
)

SR = 24_000


def make_tokens(n_semantic: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
    """Shapes a real Bark voice has: coarse/fine frames ≈ 1.503 per semantic token."""
    rng = np.random.default_rng(seed)
    frames = int(n_semantic * 75 / 49.9)
    fine = rng.integers(0, 1024, size=(8, frames))
    return {"semantic": rng.integers(0, 10_000, size=n_semantic), "coarse": fine[:2], "fine": fine}


def make_audio(seconds: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.8, 0.8, round(seconds * SR)).astype(np.float32)


def new_take(text: str = "Hello, my name is Suno.", **kw) -> NewTake:
    base = dict(
        text=text,
        voice="v2/en_speaker_6",
        seed=77,
        options=GenerationOptions(text_temp=0.6, top_k=50, seed=77),
        model_id="suno/bark:small",
        random_weights=True,
        timings={"semantic": {"tokens": 50, "seconds": 0.5}, "decode": {"tokens": 4800, "seconds": 0.1}},
    )
    base.update(kw)
    return NewTake(**base)


@pytest.fixture
def store(tmp_path: Path):
    s = HistoryStore(tmp_path / "data" / "history.sqlite3", tmp_path / "data" / "takes")
    yield s
    s.close()


def test_round_trip(store: HistoryStore) -> None:
    audio, tokens = make_audio(), make_tokens()
    take = store.add_take(new_take(), audio, tokens)
    again = store.get(take.id)
    assert again == take
    assert take.text == "Hello, my name is Suno."
    assert take.name == "Hello, my name is Suno."
    assert take.voice == "v2/en_speaker_6"
    assert take.seed == 77
    assert take.options == dataclasses.asdict(GenerationOptions(text_temp=0.6, top_k=50, seed=77))
    assert take.generation_options() == GenerationOptions(text_temp=0.6, top_k=50, seed=77)
    assert take.model_id == "suno/bark:small" and take.random_weights is True
    assert take.timings["semantic"] == {"tokens": 50, "seconds": 0.5}
    assert take.duration_s == pytest.approx(0.2)
    assert take.sample_rate == SR
    assert take.segments is None and take.deleted_at is None
    assert take.created_at.endswith("+00:00")
    assert take.wav_exists and take.tokens_exists
    assert take.wav_path.parent == store.takes_dir

    loaded, sr = take.load_audio()
    assert sr == SR
    np.testing.assert_allclose(loaded, audio, atol=2 / 32768)  # 16-bit PCM
    saved = take.load_tokens()
    assert set(saved) == {"semantic_prompt", "coarse_prompt", "fine_prompt"}
    np.testing.assert_array_equal(saved["fine_prompt"], tokens["fine"])
    # The tokens file is an original-format Bark voice: a take can become a voice.
    voice = VoicePrompt.from_npz(take.tokens_path)
    np.testing.assert_array_equal(voice.semantic, tokens["semantic"])


def test_stage_timing_dataclasses_and_segments_are_stored_as_json(store: HistoryStore) -> None:
    @dataclasses.dataclass(frozen=True)
    class Timing:
        tokens: int
        seconds: float

    segments = [{"text": "One.", "start_s": 0.0}, {"text": "Two.", "start_s": 1.2}]
    take = store.add_take(
        new_take(timings={"coarse": Timing(75, 1.5)}, segments=segments), make_audio(), None
    )
    assert take.timings == {"coarse": {"tokens": 75, "seconds": 1.5}}
    assert take.segments == segments
    assert take.tokens_file is None and not take.tokens_exists
    with pytest.raises(TakeFileMissing, match="no tokens file"):
        take.load_tokens()


def test_add_generation_from_an_engine_result(store: HistoryStore) -> None:
    from bark_engine.engine import Generation, StageTiming  # the real contract (imports torch)

    tokens = make_tokens(seed=3)
    gen = Generation(
        text="Hi.",
        voice=None,
        seed=5,
        options=GenerationOptions(seed=5),
        semantic=tokens["semantic"],
        coarse=tokens["coarse"],
        fine=tokens["fine"],
        audio=make_audio(0.1),
        sample_rate=SR,
        timings={"fine": StageTiming(tokens=600, seconds=0.25)},
        random_weights=True,
        model_id="local",
    )
    take = store.add_generation(gen, name="first")
    assert (take.name, take.voice, take.seed, take.duration_s) == ("first", None, 5, 0.1)
    assert take.timings == {"fine": {"tokens": 600, "seconds": 0.25}}
    assert take.generation_options() == gen.options
    np.testing.assert_array_equal(take.load_tokens()["coarse_prompt"], tokens["coarse"])


def test_newest_first_and_limit(store: HistoryStore) -> None:
    ids = [store.add_take(new_take(f"take {i}"), make_audio(0.01), None).id for i in range(5)]
    assert [t.id for t in store.list_takes()] == ids[::-1]
    assert [t.text for t in store.list_takes(limit=2)] == ["take 4", "take 3"]
    assert store.count() == 5


def test_default_name_is_a_one_line_snippet(store: HistoryStore) -> None:
    text = "A long\n\nscript   that goes on and on and on and on, far past forty characters."
    take = store.add_take(new_take(text), make_audio(0.01), None)
    assert "\n" not in take.name and take.name.endswith("…") and len(take.name) == 40
    assert take.name.startswith("A long script that")


def test_rename(store: HistoryStore) -> None:
    take = store.add_take(new_take(), make_audio(0.01), None)
    renamed = store.rename(take.id, "  narrator\n take  ")
    assert renamed.name == "narrator take"
    assert store.get(take.id).name == "narrator take"
    with pytest.raises(ValueError):
        store.rename(take.id, "   ")
    with pytest.raises(TakeNotFound):
        store.rename(9999, "x")


def test_delete_undo_and_purge(store: HistoryStore) -> None:
    keep = store.add_take(new_take("keep"), make_audio(0.01), make_tokens())
    gone = store.add_take(new_take("gone"), make_audio(0.01), make_tokens())
    store.delete(gone.id)
    assert [t.id for t in store.list_takes()] == [keep.id]
    assert [t.id for t in store.list_takes(include_deleted=True)] == [gone.id, keep.id]
    assert store.get(gone.id).is_deleted
    assert gone.wav_exists  # soft delete keeps the files for undo

    store.undelete(gone.id)
    assert [t.id for t in store.list_takes()] == [gone.id, keep.id]

    store.delete(gone.id)
    assert store.purge_deleted() == 1
    assert store.get(gone.id) is None
    assert not gone.wav_path.exists() and not gone.tokens_path.exists()
    assert keep.wav_exists and keep.tokens_exists
    with pytest.raises(TakeNotFound):
        store.delete(gone.id)
    with pytest.raises(TakeNotFound):
        store.undelete(gone.id)
    # Ids are never reused: "take 3" always means the same take.
    newer = store.add_take(new_take("newer"), make_audio(0.01), None)
    assert newer.id > gone.id


def test_missing_wav_shows_as_missing(store: HistoryStore) -> None:
    a = store.add_take(new_take("a"), make_audio(0.01), make_tokens())
    b = store.add_take(new_take("b"), make_audio(0.01), make_tokens())
    a.wav_path.unlink()
    b.tokens_path.unlink()
    listed = {t.id: t for t in store.list_takes()}
    assert not listed[a.id].wav_exists and listed[a.id].tokens_exists
    assert listed[b.id].wav_exists and not listed[b.id].tokens_exists
    with pytest.raises(TakeFileMissing, match=f"Take {a.id}"):
        listed[a.id].load_audio()
    with pytest.raises(TakeFileMissing):
        listed[b.id].load_tokens()
    store.delete(a.id)
    assert store.purge_deleted() == 1  # purging a take whose file is gone is fine


def test_stored_names_never_escape_the_takes_folder(store: HistoryStore, tmp_path: Path) -> None:
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"precious")
    take = store.add_take(new_take(), make_audio(0.01), make_tokens())
    with sqlite3.connect(store.db_path) as conn:
        conn.execute(
            "UPDATE takes SET wav_file = ?, tokens_file = ? WHERE id = ?",
            ("../../victim.wav", str(victim), take.id),
        )
    bad = store.get(take.id)
    assert bad.wav_path is None and bad.tokens_path is None
    assert not bad.wav_exists and not bad.tokens_exists
    with pytest.raises(TakeFileMissing):
        bad.load_audio()
    store.delete(take.id)
    store.purge_deleted()
    assert victim.read_bytes() == b"precious"


def test_bad_input_leaves_no_files(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="fine_prompt"):
        store.add_take(new_take(), make_audio(0.01), {"semantic": np.zeros(3, int)})
    with pytest.raises(ValueError, match="integers"):
        bad = make_tokens()
        bad["coarse"] = bad["coarse"].astype(np.float32)
        store.add_take(new_take(), make_audio(0.01), bad)
    with pytest.raises(ValueError, match="mono"):
        store.add_take(new_take(), np.zeros((10, 2), np.float32), None)
    assert store.count(include_deleted=True) == 0
    assert not store.takes_dir.exists() or not any(store.takes_dir.iterdir())


def test_seed_beyond_int64_is_kept_exactly(store: HistoryStore) -> None:
    seed = 2**64 - 1
    take = store.add_take(new_take(seed=seed), make_audio(0.01), None)
    assert store.get(take.id).seed == seed
    assert store.add_take(new_take(seed=None), make_audio(0.01), None).seed is None


def test_cleanup_orphans(store: HistoryStore) -> None:
    take = store.add_take(new_take(), make_audio(0.01), make_tokens())
    store.delete(take.id)  # soft-deleted files are not orphans
    orphan_wav = store.takes_dir / f"{uuid.uuid4().hex}.wav"
    orphan_tmp = store.takes_dir / f".{uuid.uuid4().hex}.npz.abc.tmp"
    fresh = store.takes_dir / f"{uuid.uuid4().hex}.wav"
    for path in (orphan_wav, orphan_tmp, fresh):
        path.write_bytes(b"x")
    old = time.time() - 3600
    for path in (orphan_wav, orphan_tmp):
        os.utime(path, (old, old))
    removed = store.cleanup_orphans(min_age_s=60)
    assert sorted(removed) == sorted([orphan_wav, orphan_tmp])
    assert fresh.exists() and take.wav_exists and take.tokens_exists
    assert store.cleanup_orphans(min_age_s=0) == [fresh]
    assert take.wav_exists and take.tokens_exists


def test_reopen_keeps_everything_and_uses_wal_full(tmp_path: Path) -> None:
    db, takes = tmp_path / "h.sqlite3", tmp_path / "takes"
    with HistoryStore(db, takes) as first:
        ids = [first.add_take(new_take(f"t{i}"), make_audio(0.01), None).id for i in range(3)]
        assert first.journal_mode == "wal"
        assert first._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with HistoryStore(db, takes) as second:
        assert [t.id for t in second.list_takes()] == ids[::-1]
        assert second.integrity_check() == "ok"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    HistoryStore(db, tmp_path / "takes").close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match="newer"):
        HistoryStore(db, tmp_path / "takes")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_corrupt_database_is_reported_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    junk = b"this is not a database" * 100
    db.write_bytes(junk)
    with pytest.raises(HistoryError, match="unreadable"):
        HistoryStore(db, tmp_path / "takes")
    assert db.read_bytes() == junk


def test_reader_thread_while_a_writer_writes(store: HistoryStore) -> None:
    n_takes = 25
    errors: list[BaseException] = []
    done = threading.Event()
    seen: set[int] = set()

    def writer() -> None:
        try:
            for i in range(n_takes):
                store.add_take(new_take(f"w{i}"), make_audio(0.02, seed=i), make_tokens(seed=i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                for take in store.list_takes():
                    seen.add(take.id)
                    assert take.wav_exists and take.tokens_exists  # never a row before its files
                    audio, _ = take.load_audio()
                    assert len(audio) == round(0.02 * SR)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert store.count() == n_takes
    assert seen  # the reader really read while the writer wrote


_WRITER = """
import sys
import numpy as np
from bark_tui.history import HistoryStore, NewTake

store = HistoryStore(sys.argv[1], sys.argv[2])
rng = np.random.default_rng(int(sys.argv[3]))
for i in range(100_000):
    n = int(rng.integers(1_000, 24_000))  # varied sizes: kills land in every phase
    fine = rng.integers(0, 1024, size=(8, 75))
    tokens = {"semantic": rng.integers(0, 10_000, size=50), "coarse": fine[:2], "fine": fine}
    audio = rng.uniform(-0.5, 0.5, n).astype(np.float32)
    take = store.add_take(NewTake(text=f"take {i}", voice=None, seed=i), audio, tokens)
    sys.stdout.write(f"committed {take.id}\\n")  # one write, so a kill cannot split it
    sys.stdout.flush()
"""


def test_kill_at_any_moment_loses_no_committed_take(tmp_path: Path) -> None:
    """SIGKILL a writer again and again: the file stays sound and every saved take loads."""
    import signal
    import subprocess
    import sys

    db, takes = tmp_path / "history.sqlite3", tmp_path / "takes"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    rng = np.random.default_rng(1234)
    committed: set[int] = set()
    for run in range(7):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), str(takes), str(run)],
            stdout=subprocess.PIPE, env=env, text=True,
        )
        if run == 0:
            time.sleep(0.2)  # during start-up: the first open and the migration
        else:
            proc.stdout.readline()  # writing for real now
            time.sleep(float(rng.uniform(0.0, 0.25)))  # a take takes ~30 ms
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        complete = out.split("\n")[:-1]  # a line the kill cut short has no newline
        committed |= {int(line.split()[1]) for line in complete if line.startswith("committed")}
    assert len(committed) >= 6  # each later run was killed while busy writing

    with HistoryStore(db, takes) as store:
        assert store.integrity_check() == "ok"
        listed = store.list_takes()
        assert committed <= {t.id for t in listed}  # nothing the writer was told is saved got lost

        def check_all() -> None:
            for take in listed:
                audio, sr = take.load_audio()
                assert sr == SR and len(audio) == round(take.duration_s * SR)
                assert take.load_tokens()["fine_prompt"].shape == (8, 75)

        check_all()
        store.cleanup_orphans(min_age_s=0)  # files whose row never committed
        check_all()
        assert sorted(p.name for p in takes.iterdir()) == sorted(
            name for t in listed for name in (t.wav_file, t.tokens_file)
        )


def test_close_waits_for_a_take_being_saved(tmp_path: Path) -> None:
    """The app may quit while a worker saves: the take must still land."""
    store = HistoryStore(tmp_path / "h.sqlite3", tmp_path / "takes")
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(store.add_take(new_take(), make_audio(60.0), make_tokens()))
    )
    worker.start()
    deadline = time.monotonic() + 5
    while not store._pending:  # the worker is writing its files now
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.0005)
    store.close()
    worker.join(10)
    assert len(result) == 1 and result[0].wav_exists
    with pytest.raises(HistoryError, match="closed"):
        store.add_take(new_take(), make_audio(0.01), None)
    store.close()  # twice is fine
    with HistoryStore(tmp_path / "h.sqlite3", tmp_path / "takes") as again:
        assert [t.id for t in again.list_takes()] == [result[0].id]
        assert len(list((tmp_path / "takes").iterdir())) == 2
