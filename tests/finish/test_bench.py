"""The finishing benchmark runs end to end (child process, real encode and read-back)."""

from __future__ import annotations

from bark_tui.finish.bench import main


def test_finishing_benchmark_prints_a_row_per_format(capsys):
    assert main(["--minutes", "0.2", "--formats", "wav,mp3", "--master", "podcast"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith(("| wav", "| mp3"))]
    assert len(rows) == 2
    for row in rows:
        lufs = float(row.split("|")[7])
        assert abs(lufs - -16.0) <= 0.5  # the podcast preset was met, as measured on read-back
