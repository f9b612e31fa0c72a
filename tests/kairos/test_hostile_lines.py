"""Replay and lines built to break a decoder: JSON nested past the recursion limit, a tag nested
too deep, and a ``\\r`` that makes two values of one line while a blank line hides the extra one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos._cli import main
from tests.kairos.test_workers import _mixed_stream


def _replay(workspace: Path, name: str, workers: str) -> tuple[int, bytes]:
    out = workspace / f"{name}-{workers}.out"
    code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(workspace / name),
                 "--reference", str(workspace / "ref"), "--out", str(out), "--workers", workers])
    return code, out.read_bytes()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_line_nested_past_the_recursion_limit_and_a_tag_nested_too_deep_are_malformed_lines(workspace, capfd,
                                                                                             workers):
    lines = _mixed_stream(1_500, 20, seed=4)
    (workspace / "clean.jsonl").write_bytes(b"".join(lines))
    ts = int(lines[600].split(b'"ts":')[1].split(b",")[0].rstrip(b"}\n"))
    deep = b'{"type":"login","ts":%d,"msisdn":"1","channel":"app","x":%s%s}\n' % (ts, b"[" * 3000, b"]" * 3000)
    deep_tag = b'{"type":"profile","ts":%d,"msisdn":"1","tags":{"a":%s1%s}}\n' % (ts, b"[" * 9, b"]" * 9)
    bad = list(lines)
    bad.insert(600, deep)  # line 601
    bad.insert(900, deep_tag)  # line 901
    (workspace / "bad.jsonl").write_bytes(b"".join(bad))
    clean = _replay(workspace, "clean.jsonl", workers)
    assert (3, clean[1]) == _replay(workspace, "bad.jsonl", workers)
    err = [e for e in capfd.readouterr().err.splitlines() if "error:" in e]
    where = workspace / "bad.jsonl"
    assert [f"{where}:601:", f"{where}:901:"] == [e.split(" ")[0] for e in err]
    assert "recursion" in err[0] and "nested at most 8" in err[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_carriage_return_joining_two_values_is_one_bad_line_even_beside_a_blank_line(workspace, capfd, workers):
    lines = _mixed_stream(400, 10, seed=5)
    joined = lines[200].rstrip(b"\n") + b"\r" + lines[201]  # two values on one line (line 201)
    bad = [*lines[:200], joined, b"\n", *lines[202:]]  # a blank line 202 balances the count of values
    (workspace / "bad.jsonl").write_bytes(b"".join(bad))
    (workspace / "clean.jsonl").write_bytes(b"".join([*lines[:200], *lines[202:]]))
    clean = _replay(workspace, "clean.jsonl", workers)
    assert (3, clean[1]) == _replay(workspace, "bad.jsonl", workers)
    err = [e for e in capfd.readouterr().err.splitlines() if "error:" in e]
    assert [f"{workspace / 'bad.jsonl'}:201:"] == [e.split(" ")[0] for e in err]
