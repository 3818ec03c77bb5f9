"""`bark-tui render --ray` as a user runs it: interrupted and rerun, refusals, and the
one-line hint where Ray is not installed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from bark_tui.cli.main import main
from bark_tui.cluster.connect import INSTALL_HINT
from bark_tui.cluster.manifest import read_manifest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def write_script(tmp_path, n: int):
    script = tmp_path / "book.txt"
    script.write_text("\n\n".join(f"Line {i} of the book." for i in range(n)) + "\n")
    return script


def command(tiny_models, script, out, *extra):
    return ["render", str(script), "--models", str(tiny_models), "--max-duration", "0.2",
            "--out", str(out), "--seed", "4", "--voice", "v2/en_speaker_0", *extra]


def test_ctrl_c_keeps_the_finished_parts_and_a_rerun_goes_on(tiny_models, tmp_path, capsys):
    pytest.importorskip("ray")
    script, out = write_script(tmp_path, 16), tmp_path / "book.wav"
    args = command(tiny_models, script, out, "--ray", "--ray-workers", "2", "--batch", "2")
    proc = subprocess.Popen([sys.executable, "-m", "bark_tui", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "book.wav.parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        m = read_manifest(parts)
        if m is not None and m.done >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    kept = read_manifest(parts).done
    assert 4 <= kept < 16
    assert f"segments are kept in {parts}" in " ".join(err.split())
    assert not out.exists()
    # rerun: the kept parts are read, not made again, and the book is whole
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reused"] >= kept and report["segments"] == 16
    assert sum(s["reused"] for s in report["cluster"]["segments"]) == report["reused"]
    assert {s["worker"] for s in report["cluster"]["segments"] if not s["reused"]} <= {"w1", "w2"}
    # and equals a render in this one process, without Ray, of the same script and seed
    alone = tmp_path / "alone.wav"
    assert main(command(tiny_models, script, alone, "--batch", "2")) == 0
    assert alone.read_bytes() == out.read_bytes()


def test_ray_missing_is_one_line_with_the_install_command(tiny_models, tmp_path):
    script = write_script(tmp_path, 2)
    code = ("import sys; sys.modules['ray'] = None\n"  # as if the extra were not installed
            "from bark_tui.cli.main import main\n"
            f"sys.exit(main({command(tiny_models, script, tmp_path / 'o.wav', '--ray')!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"bark-tui: error: {INSTALL_HINT}"
    assert not (tmp_path / "o.wav.parts").exists()


@pytest.mark.parametrize("extra, message", [
    (["--ray", "10.0.0.1:6379"], "--ray wants no address"),
    (["--ray", "--server", "http://127.0.0.1:9"], "choose one"),
    (["--ray", "--ray-retries", "-1"], "--ray-retries must be 0 or more"),
])
def test_cluster_options_are_checked_before_work(extra, message, tiny_models, tmp_path, capsys):
    pytest.importorskip("ray")
    script = write_script(tmp_path, 2)
    assert main(command(tiny_models, script, tmp_path / "o.wav", *extra)) == 2
    assert message in capsys.readouterr().err
