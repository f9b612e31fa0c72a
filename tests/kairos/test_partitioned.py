"""`kairos replay --events FOLDER`: a log partitioned by subscriber, each partition replayed whole."""

from __future__ import annotations

import copy
import multiprocessing

import msgspec
import pytest

from kairos.adapters._partitions import partition_files, partition_of, split, split_file
from kairos.engine import replay_partitioned
from kairos._cli import main
from tests.kairos.test_workers import (
    PER_SUBSCRIBER_POLICY,
    _DyingEngine,
    _engine_factory,
    _mixed_stream,
)


def _replay(ws, events: str, workers: int = 1, *extra: str) -> tuple[int, bytes]:
    out = ws / f"out-{events}-{workers}.jsonl"
    code = main(["replay", "--scenarios", str(ws / "s.kairos"), *extra, "--events", str(ws / events),
                 "--reference", str(ws / "ref"), "--out", str(out), "--workers", str(workers), "--quiet"])
    return code, out.read_bytes() if out.exists() else b""


def test_a_partitioned_log_gives_the_unsplit_files_output_on_one_two_and_three_workers(workspace):
    lines = _mixed_stream(6_000, 60, seed=3)  # ends with half an hour of one subscriber's events
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    split(lines, workspace / "log", 4)
    _, whole = _replay(workspace, "e.jsonl")
    outputs = [_replay(workspace, "log", w) for w in (1, 2, 3)]
    sent = {msgspec.json.decode(line)["scenario"] for line in whole.splitlines()}
    assert "wave_two" in sent  # absences whose deadlines fall after their partition's last event
    assert outputs == [(0, whole)] * 3


def test_a_per_subscriber_policy_splits_cleanly_by_partition(workspace):
    (workspace / "policy.kairos").write_text(PER_SUBSCRIBER_POLICY)
    lines = _mixed_stream(6_000, 60, seed=3)
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    split(lines, workspace / "log", 3)
    policy = ("--policy", str(workspace / "policy.kairos"))
    _, whole = _replay(workspace, "e.jsonl", 1, *policy)
    assert _replay(workspace, "log", 2, *policy) == (0, whole)


def test_bad_lines_are_reported_with_their_partition_file_and_line(workspace, capfd):
    log = workspace / "log"
    split(_mixed_stream(300, 10, seed=1), log, 2)
    part = log / "p-0001.jsonl"
    rows = part.read_bytes().splitlines(keepends=True)
    rows.insert(4, b"not json\n")
    part.write_bytes(b"".join(rows))
    capfd.readouterr()
    code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(log),
                 "--reference", str(workspace / "ref"), "--out", str(workspace / "o.jsonl"), "--workers", "2"])
    err = capfd.readouterr().err.splitlines()
    assert code == 3  # EXIT_SKIPPED
    assert err[0] == f"{part}:5: error: JSON is malformed: invalid character (byte 4) (line skipped)"
    assert "1 malformed" in err[1]


def test_a_folder_without_partition_files_is_refused_with_a_clear_message(workspace, capsys):
    (workspace / "empty").mkdir()
    code, _ = _replay(workspace, "empty", 2)
    assert code == 2
    assert "no partition files (p-NNNN.jsonl)" in capsys.readouterr().err


def test_a_partitioned_log_is_measured_as_the_unsplit_file(workspace, capsys):
    lines = _mixed_stream(2_000, 40, seed=1)
    (workspace / "whole.jsonl").write_bytes(b"".join(lines))
    split(lines, workspace / "log", 3)
    tables = []
    for events, workers in (("whole.jsonl", 1), ("log", 1), ("log", 2)):
        capsys.readouterr()
        code, _ = _replay(workspace, events, workers, "--stats")
        assert code == 0
        tables.append(capsys.readouterr().err)
    assert tables[0] == tables[1] == tables[2]


def test_split_file_streams_a_log_into_the_partitions_split_makes_and_keeps_bad_lines(workspace):
    lines = _mixed_stream(1_000, 40, seed=2)
    source = workspace / "e.jsonl"
    source.write_bytes(b"".join(lines[:500]) + b"not json\n\n" + b"".join(lines[500:]).rstrip(b"\n"))
    counts = split_file(source, workspace / "streamed", 3, flush_lines=64)
    split(lines, workspace / "whole", 3)
    for p in range(3):
        streamed = (workspace / "streamed" / f"p-{p:04d}.jsonl").read_bytes()
        whole = (workspace / "whole" / f"p-{p:04d}.jsonl").read_bytes()
        assert streamed.replace(b"not json\n", b"") == whole
    assert b"not json\n" in (workspace / "streamed" / "p-0000.jsonl").read_bytes()
    assert sum(counts) == len(lines) + 1


def test_kairos_split_makes_the_log_replay_reads_and_refuses_a_folder_in_use(workspace, capsys):
    lines = _mixed_stream(2_000, 40, seed=4)
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    assert main(["split", "--events", str(workspace / "e.jsonl"), "--partitions", "4",
                 "--out", str(workspace / "log")]) == 0
    assert f"{len(lines):,} lines into 4 partitions" in capsys.readouterr().err
    _, whole = _replay(workspace, "e.jsonl")
    assert _replay(workspace, "log", 2) == (0, whole)
    assert main(["split", "--events", str(workspace / "e.jsonl"), "--partitions", "4",
                 "--out", str(workspace / "log")]) == 2
    assert "is not an empty folder" in capsys.readouterr().err


def test_bad_lines_at_a_partitions_end_do_not_hold_back_the_time_every_partition_moves_to(workspace):
    lines = _mixed_stream(6_000, 60, seed=3)  # the last half hour: one subscriber's logins
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    _, whole = _replay(workspace, "e.jsonl")
    split(lines, workspace / "log", 3)
    for part in (workspace / "log").iterdir():  # every partition ends with lines no engine takes
        with open(part, "ab") as f:
            f.write(b'{"type":"teleport","ts":99999999999999,"msisdn":"1"}\nnot json\n')
    code, out = _replay(workspace, "log", 2)
    assert (code, out) == (3, whole)  # EXIT_SKIPPED: the bad lines


def test_a_worker_dying_mid_partition_raises_and_leaves_no_process_behind(workspace):
    split(_mixed_stream(4_000, 60, seed=4), workspace / "log", 2)
    victim = partition_of(_DyingEngine.victim, 2)  # one worker a partition: the worker's number is it
    with open(workspace / "o.jsonl", "wb") as out, pytest.raises(
            RuntimeError, match=f"replay worker\\(s\\) kairos-partitions-{victim} failed"):
        replay_partitioned(_engine_factory(workspace, _DyingEngine), partition_files(workspace / "log"), out,
                           workers=2)
    assert [] == multiprocessing.active_children()


def test_a_worker_keeps_only_its_partitions_tag_rows_and_leaves_the_shared_table_as_it_was():
    from kairos.engine._partitioned import _keep_own_rows
    from kairos.engine._reference import Reference

    every = {str(m): {"plan": f"p{m % 3}"} for m in range(13_600_000_000, 13_600_000_200)}
    before = copy.deepcopy(every)
    reference = Reference(tags=every)
    _keep_own_rows(reference, lambda p, m: partition_of(m, 4) == p, [0, 2])
    mine = {m for m in every if partition_of(m, 4) in (0, 2)}
    assert set(reference.tags) == mine and 0 < len(mine) < len(every)
    assert all(reference.tags[m] == every[m] for m in mine)
    assert every == before  # the table the other workers' pages share is left as it was
