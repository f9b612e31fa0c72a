"""Replay and numbers out of range: the issue's ``"bytes": 1e40`` is a malformed line, nothing more."""

from __future__ import annotations

import msgspec

from kairos._cli import main
from tests.kairos.test_workers import _mixed_stream


def test_a_dpi_with_bytes_1e40_is_a_counted_malformed_line_and_the_sends_are_unaffected(workspace, capfd):
    lines = _mixed_stream(2_000, 30, seed=9)
    (workspace / "clean.jsonl").write_bytes(b"".join(lines))
    dpi = next(line for line in lines if b'"dpi"' in line)
    huge = msgspec.json.decode(dpi)
    bad = list(lines)
    bad.insert(700, dpi.replace(b"}", b',"bytes":1e40}', 1))  # line 701
    bad.insert(1_200, msgspec.json.encode({**huge, "bytes": 10**40}) + b"\n")  # line 1201: an int past 64 bits
    (workspace / "bad.jsonl").write_bytes(b"".join(bad))
    outputs = []
    for name in ("clean.jsonl", "bad.jsonl"):
        for workers in ("1", "3"):
            out = workspace / f"{name}-{workers}.out"
            code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(workspace / name),
                         "--reference", str(workspace / "ref"), "--out", str(out), "--workers", workers])
            outputs.append((code, out.read_bytes()))
    err = capfd.readouterr().err.splitlines()
    clean = outputs[0][1]
    assert [(0, clean), (0, clean), (3, clean), (3, clean)] == outputs
    where = workspace / "bad.jsonl"
    assert [f"{where}:701: error: Expected `float` <= 1000000000000000.0 - at `$.bytes` (line skipped)",
            f"{where}:1201: error: Expected `int` <= 1000000000000000 - at `$.bytes` (line skipped)"] == [
        e for e in err if "error:" in e][:2]
    assert "kairos replay: finished, but 2 lines were skipped (2 malformed); exit status 3" == err[-1]
