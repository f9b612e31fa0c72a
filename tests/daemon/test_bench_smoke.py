"""The benchmarks still run (their figures are in docs/performance.md; nothing here is timed)."""

from __future__ import annotations

from bench.snapshot_pause import main


def test_the_snapshot_pause_benchmark_runs_on_a_small_state(capsys):
    main([2_000])
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[0] == "subscribers" and row.split()[0] == "2000"


def test_the_daemon_ingest_benchmark_runs_on_a_small_stream(capsys):
    from bench.daemon_ingest import main as ingest

    ingest(5_000)
    assert "daemon ingest" in capsys.readouterr().out


def test_the_capacity_grant_benchmark_runs_and_leaves_its_folder_clean(tmp_path, capsys):
    from bench.capacity_grants import main

    main(["--folder", str(tmp_path), "--grants", "20"])
    printed = capsys.readouterr().out
    assert ["grant_us", "found_us", "found_after_crash_us", "refused_us", "grant_two_processes_us"] == [
        line.split()[0] for line in printed.splitlines()]
    assert [] == list(tmp_path.iterdir())
