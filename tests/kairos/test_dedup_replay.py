"""`kairos replay --dedup-window D`: repeated input lines are skipped alike on one worker, several, or by partition."""

from __future__ import annotations

import re

import msgspec

from kairos.adapters._partitions import split
from kairos._cli import main
from tests.kairos.test_workers import _mixed_stream


def _with_repeats(lines: list[bytes]) -> list[bytes]:
    """Every fifth line delivered again, right after itself or after the next line at the same ts,
    every other time with its keys in another order (an at-least-once feed)."""
    out: list[bytes] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i % 5 == 0:
            ev = msgspec.json.decode(line)
            out.append(msgspec.json.encode(dict(reversed(list(ev.items())))) + b"\n" if i % 10 else line)
    return out


def _replay(ws, events: str, *extra: str) -> tuple[bytes, str]:
    out = ws / f"out-{events}-{'-'.join(extra)}.jsonl"
    assert 0 == main(["replay", "--scenarios", str(ws / "s.kairos"), "--events", str(ws / events),
                      "--reference", str(ws / "ref"), "--out", str(out), *extra])
    return out.read_bytes(), ""


def test_repeated_lines_are_skipped_and_the_output_is_the_clean_inputs_on_every_way_of_splitting(workspace, capfd):
    clean = _mixed_stream(3_000, 40, seed=5)
    (workspace / "clean.jsonl").write_bytes(b"".join(clean))
    repeated = _with_repeats(clean)
    (workspace / "dup.jsonl").write_bytes(b"".join(repeated))
    split(repeated, workspace / "log", 3)
    plain, _ = _replay(workspace, "clean.jsonl")
    # the generated stream repeats a few events itself (one subscriber's logins at one ts)
    expected, _ = _replay(workspace, "clean.jsonl", "--dedup-window", "1m")
    own = int(re.search(r"(\d+) duplicates? skipped", capfd.readouterr().err)[1])
    assert expected != plain and 0 < own < 20

    assert _replay(workspace, "dup.jsonl")[0] not in (expected, plain)  # without the option, repeats make sends
    capfd.readouterr()
    for extra in (["--workers", "1"], ["--workers", "2"]):
        assert expected == _replay(workspace, "dup.jsonl", "--dedup-window", "1m", *extra)[0]
        summary = capfd.readouterr().err
        assert f"{own + len(repeated) - len(clean)} duplicates skipped" in summary, summary
    assert expected == _replay(workspace, "log", "--dedup-window", "0", "--workers", "2")[0]
    assert f"{own + len(repeated) - len(clean)} duplicates skipped" in capfd.readouterr().err


def test_a_duration_the_option_cannot_read_is_refused(workspace, capsys):
    (workspace / "e.jsonl").write_bytes(b"")
    try:
        main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(workspace / "e.jsonl"),
              "--dedup-window", "ten minutes"])
    except SystemExit as e:
        assert e.code == 2
    assert "'ten minutes' is not a duration" in capsys.readouterr().err


def test_a_real_gap_in_the_recording_does_not_make_the_lines_after_it_duplicates(workspace, capfd):
    # the replay stops at a jump past --max-jump and feeds the lines after it again once the gap
    # is confirmed: they must be judged then, not remembered from the first attempt
    lines = _mixed_stream(2_000, 30, seed=7)
    half = len(lines) // 2
    gap = [msgspec.json.encode({**msgspec.json.decode(x), "ts": msgspec.json.decode(x)["ts"] + 3 * 3_600_000}) + b"\n"
           for x in lines[half:]]
    clean = lines[:half] + gap
    (workspace / "clean.jsonl").write_bytes(b"".join(clean))
    (workspace / "dup.jsonl").write_bytes(b"".join(_with_repeats(clean)))
    expected, _ = _replay(workspace, "clean.jsonl", "--dedup-window", "1m")
    own = int(re.search(r"(\d+) duplicates? skipped", capfd.readouterr().err)[1])
    assert expected == _replay(workspace, "dup.jsonl", "--dedup-window", "1m")[0]
    assert f"{own + len(_with_repeats(clean)) - len(clean)} duplicates skipped" in capfd.readouterr().err
