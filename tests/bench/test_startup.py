"""``python -m bench.startup`` runs each quick command and prints a row of figures for it (no timing is checked)."""

from __future__ import annotations

from bench import startup


def test_the_startup_bench_prints_a_warm_and_a_cold_figure_for_each_quick_command(capsys):
    assert 0 == startup.main(["--runs", "1"])
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [(label, True, True) for label in startup.COMMANDS] == [
        (row[:24].strip(), " warm " in row, " cold " in row) for row in rows]
