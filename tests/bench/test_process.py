"""W1 as whole processes (``bench._process``): the command a user types, what it decided, its own memory."""

from __future__ import annotations

import pytest

from bench import baseline
from bench._process import W1_PROCESSES, ProcessError, command, run_w1
from bench._contenders import w1_msgspec
from kairos import traffic


@pytest.fixture(scope="module")
def w1_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w1") / "w1.jsonl"
    traffic.write(path, subscribers=300, events=30_000, hours=2, seed=4, mix="w1")
    return path


def test_kairos_is_timed_as_the_replay_command_a_user_types(tmp_path):
    cmd = command("w1-kairos", tmp_path / "e.jsonl", tmp_path / "s.jsonl", tmp_path / "W1.kairos")
    assert cmd[0].endswith("/kairos") and cmd[1:] == [
        "replay", "--scenarios", str(tmp_path / "W1.kairos"), "--events", str(tmp_path / "e.jsonl"),
        "--out", str(tmp_path / "s.jsonl")]


def test_each_whole_process_decides_the_sends_of_the_in_process_loop(w1_file, tmp_path):
    expected = w1_msgspec(w1_file)
    assert expected.sends > 10
    for name in W1_PROCESSES:
        m = run_w1(name, w1_file, 30_000)
        assert (m.contender, m.sends, m.checksum) == (name, expected.sends, expected.checksum)
        assert m.whole_process and m.inner_wall_s is not None and m.cpu_s > 0


def test_a_whole_process_peak_rss_is_its_own_not_the_runners(w1_file, tmp_path):
    ballast = bytearray(400 << 20)  # the runner holds 400 MiB when it starts the contender
    ballast[::4096] = b"\1" * len(range(0, len(ballast), 4096))
    m = run_w1("w1-msgspec", w1_file, 30_000)
    assert 5 < m.peak_rss_mib < 200
    del ballast


def test_a_whole_process_that_fails_stops_the_run_with_what_it_said(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"type": "dpi", "ts": 1, "msisdn": "1"}\nnot json\n')  # replay skips it: exit status 3
    with pytest.raises(ProcessError, match="exited 3"):
        run_w1("w1-kairos", bad, 2)


def test_the_hand_written_process_writes_one_json_line_per_send(w1_file, tmp_path):
    out = tmp_path / "sends.jsonl"
    assert baseline.main(["json", "--events", str(w1_file), "--out", str(out)]) == 0
    with open(w1_file, "rb") as f:
        assert baseline.read_sends(out.read_bytes()) == baseline.run_json(f)
