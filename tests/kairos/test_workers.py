"""`kairos replay --workers N`: subscribers spread over processes, the output one worker's."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import zlib

import msgspec
import pytest

from kairos.engine import shard_of
from kairos._cli import main

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
M = 60_000

SCENARIOS = """
scenario video
  when count(dpi where category == "video") >= 3 within 10m
  cooldown 5m
  then sms "offer.video" with {app: last.app}
end

scenario every_login
  when login
  then popup "hello"
end

scenario dropped
  when count(call where dropped) >= 2 within 1h
  then call "care.apology"
end

scenario wave_two
  when trigger as t where scenario == "video"
       -> not feedback where trigger_id == t.id within 10m
  then call "offer.video" with {first: t.id}
end

scenario review_then_shop
  when dpi as r where category == "review" -> dpi where category == "shopping" within 5m
  then sms "offer.handset" with {site: r.host}
end

scenario in_cbd
  when dwell in area("cbd") for 15m
  then sms "offer.lunch"
end
"""


def _mixed_stream(n: int, subscribers: int, seed: int) -> list[bytes]:
    """A sorted mixed stream: DPI, calls, logins (several at one ts), locations, power, feedback,
    then half an hour in which only one subscriber has events."""
    rng = random.Random(seed)
    ts = T0
    lines = []
    for _ in range(n):
        ts += rng.choice((0, 0, 1_000, 7_000, 30_000))
        m = f"1380000{rng.randrange(subscribers):04d}"
        kind = rng.random()
        if kind < 0.45:
            cat = rng.choice(("video", "video", "news", "review", "shopping"))
            ev = {"type": "dpi", "ts": ts, "msisdn": m, "host": f"{cat}.example.com", "app": cat,
                  "category": cat}
        elif kind < 0.6:
            ev = {"type": "call", "ts": ts, "msisdn": m, "direction": "mo", "dropped": rng.random() < 0.5}
        elif kind < 0.7:
            ev = {"type": "login", "ts": ts, "msisdn": m, "channel": "app"}
        elif kind < 0.85:
            ev = {"type": "location", "ts": ts, "msisdn": m, "cell": rng.choice(("CBD-1", "CBD-2", "RES-1"))}
        elif kind < 0.9:
            ev = {"type": "power", "ts": ts, "msisdn": m, "state": rng.choice(("on", "off"))}
        else:
            ev = {"type": "feedback", "ts": ts, "msisdn": m, "trigger_id": f"video:{m}:{ts - 60_000}",
                  "outcome": "clicked"}
        lines.append(msgspec.json.encode(ev) + b"\n")
    for i in range(1, 31):  # a long tail of one subscriber: the others' deadlines fall in it
        ev = {"type": "login", "ts": ts + i * M, "msisdn": "13800009999", "channel": "web"}
        lines.append(msgspec.json.encode(ev) + b"\n")
    return lines


def _replay(ws, events_name: str, workers: int, policy: bool = True) -> bytes:
    """Replay with the workspace's scenarios (and its policy.kairos, if there is one and ``policy``)."""
    out = ws / f"out-{events_name}-{workers}-{policy}.jsonl"
    extra = ["--policy", str(ws / "policy.kairos")] if policy and (ws / "policy.kairos").exists() else []
    code = main(["replay", "--scenarios", str(ws / "s.kairos"), *extra, "--events", str(ws / events_name),
                 "--reference", str(ws / "ref"), "--out", str(out), "--workers", str(workers), "--quiet"])
    assert code == (3 if _has_bad_lines(ws / events_name) else 0)  # 3: EXIT_SKIPPED
    return out.read_bytes()


def _has_bad_lines(path) -> bool:
    """Whether a one-process replay of ``path`` skips any line (what exit status 3 says)."""
    import io

    from kairos.engine import replay
    from kairos.engine._engine import Engine
    from kairos.plan import Plan

    with open(path, "rb") as f:
        report = replay(lambda sink: Engine(Plan(()), sink=sink), f, io.BytesIO())
    return report.skipped > 0


def test_one_two_and_three_workers_write_byte_identical_output(workspace):
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(6_000, 60, seed=3)))
    one = _replay(workspace, "e.jsonl", 1)
    two = _replay(workspace, "e.jsonl", 2)
    three = _replay(workspace, "e.jsonl", 3)
    sent = {msgspec.json.decode(line)["scenario"] for line in one.splitlines()}
    assert sent == {"video", "every_login", "dropped", "wave_two", "review_then_shop", "in_cbd"}
    assert re.search(rb'"id":"every_login:\d+:\d+:2"', one)  # repeated ids at one ts survive the merge
    assert (one, one) == (two, three)


def test_each_subscriber_belongs_to_one_worker_by_a_stable_hash():
    # CRC-32 of the UTF-8 bytes: the same on every run and machine, unlike hash()
    numbers = ["13800000001", "13800000002", "8613912345678"]
    assert [zlib.crc32(n.encode()) % 4 for n in numbers] == [shard_of(n, 4) for n in numbers]
    shares = [shard_of(f"1380000{i:04d}", 3) for i in range(3_000)]
    assert all(900 < shares.count(w) < 1_100 for w in range(3))


def test_malformed_lines_are_reported_once_with_their_line_number_by_many_workers(workspace, capfd):
    lines = _mixed_stream(2_000, 30, seed=5)
    lines[10] = b'{"type":"dpi","ts":"soon","msisdn":"1","host":"h"}\n'
    lines[1_500] = b"not json\n"
    (workspace / "bad.jsonl").write_bytes(b"".join(lines))
    capfd.readouterr()
    one = _replay(workspace, "bad.jsonl", 1)
    err_one = capfd.readouterr().err
    three = _replay(workspace, "bad.jsonl", 3)
    err_three = capfd.readouterr().err
    assert one == three
    expected = [
        f"{workspace / 'bad.jsonl'}:11: error: Expected `int`, got `str` - at `$.ts` (line skipped)",
        f"{workspace / 'bad.jsonl'}:1501: error: JSON is malformed: invalid character (byte 4) (line skipped)",
        "kairos replay: finished, but 2 lines were skipped (2 malformed); exit status 3",  # even with --quiet
    ]
    assert err_one.splitlines() == expected
    assert err_three.splitlines() == expected


def test_workers_refuse_standard_input_with_a_clear_message(workspace, capsys):
    code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--reference", str(workspace / "ref"),
                 "--events", "-", "--workers", "2"])
    assert code == 2
    assert "--events FILE" in capsys.readouterr().err


PER_SUBSCRIBER_POLICY = """
policy
  cap sms 2 per 1h
  cap any 3 per 1d
  quiet 00:00..00:30 for sms defer
  arbitrate 2m
end
"""


def test_a_per_subscriber_policy_gives_the_same_output_on_one_and_three_workers(workspace):
    """Caps, quiet deferral and arbitration windows (which hold sends back) split cleanly by subscriber."""
    (workspace / "policy.kairos").write_text(PER_SUBSCRIBER_POLICY)
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(6_000, 60, seed=3)))
    without = _replay(workspace, "e.jsonl", 1, policy=False)
    one = _replay(workspace, "e.jsonl", 1)
    three = _replay(workspace, "e.jsonl", 3)
    assert len(one.splitlines()) < len(without.splitlines())  # the policy did stop sends
    assert one == three


def test_workers_measure_what_one_process_measures(workspace, capsys):
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(2_000, 40, seed=1)))
    tables = []
    for workers in ("1", "2"):
        capsys.readouterr()
        code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(workspace / "e.jsonl"),
                     "--reference", str(workspace / "ref"), "--workers", workers, "--stats", "--quiet",
                     "--out", str(workspace / f"o{workers}.jsonl")])
        assert 0 == code
        tables.append(capsys.readouterr().err)
    assert tables[0] == tables[1]
    assert " all " in tables[0] and not re.search(r"all +0 +0", tables[0].splitlines()[3])  # it did count


def test_workers_refuse_control_out_which_one_process_writes(workspace, capsys):
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(200, 10, seed=1)))
    code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(workspace / "e.jsonl"),
                 "--reference", str(workspace / "ref"), "--workers", "2", "--control-out",
                 str(workspace / "c.jsonl")])
    assert 2 == code
    assert "--control-out" in capsys.readouterr().err


def _engine_factory(ws, engine_class=None):
    """What ``kairos replay`` builds: the workspace's scenarios and reference data."""
    from kairos.engine import Engine, Reference
    from kairos._compile import compile_plan

    plan = compile_plan([ws / "s.kairos"])
    reference = Reference.load(ws / "ref")
    cls = engine_class or Engine

    def factory(sink):
        return cls(plan, reference, sink=sink)

    return factory


def _run(ws, events_name: str, workers: int, engine_class=None):
    """``replay_workers`` through the engine API: (output, report, problems heard)."""
    from kairos.engine import replay_workers

    heard = []
    out = ws / f"api-{events_name}-{workers}.jsonl"
    with open(out, "wb") as f:
        report = replay_workers(_engine_factory(ws, engine_class), ws / events_name, f, workers=workers,
                                on_problem=heard.append)
    return out.read_bytes(), report, heard


def _with_every_kind_of_bad_line(lines: list[bytes]) -> bytes:
    """``lines`` with lines that are not events (not JSON, no msisdn, an unknown type, a field of
    the wrong type, an empty msisdn), late events (one of them also malformed), blank lines
    and a last line without its newline."""
    ts = [msgspec.json.decode(line)["ts"] for line in lines]
    lines = list(lines)
    lines[5] = b"not json\n"
    lines[40] = b'{"type":"call","ts":%d,"msisdn":"13800000001","direction":5}\n' % ts[40]  # wrong type
    lines[41] = b'{"type":"teleport","ts":%d,"msisdn":"13800000002"}\n' % ts[41]  # unknown event type
    lines[300] = b'{"type":"dpi","ts":%d,"host":"h"}\n' % ts[300]  # no msisdn
    lines[301] = b'{"type":"login","ts":%d,"msisdn":"","channel":"app"}\n' % ts[301]
    lines[302] = b"\n"
    lines[303] = b"   \n"
    lines[900] = b'{"type":"login","ts":%d,"msisdn":"13800000003","channel":"app"}\n' % (ts[900] - 3_600_000)
    lines[901] = b'{"type":"teleport","ts":%d,"msisdn":"13800000004"}\n' % (ts[901] - 3_600_000)
    late_by_1ms = ts[1_699] - 1
    lines[1_700] = b'{"type":"login","ts":%d,"msisdn":"13800000005","channel":"app"}\n' % late_by_1ms
    return b"".join(lines).rstrip(b"\n")


def test_every_kind_of_bad_line_gives_one_workers_output_and_report_on_many_workers(workspace):
    """Late lines, blank lines, a missing last newline and lines bad to the router (not JSON,
    no msisdn) or only to the full decoder (unknown type, a field of the wrong type): the
    output, the totals and the problems (line numbers, wording, order) equal one worker's."""
    (workspace / "bad.jsonl").write_bytes(_with_every_kind_of_bad_line(_mixed_stream(3_000, 40, seed=7)))
    one, report_one, heard_one = _run(workspace, "bad.jsonl", 1)
    assert (report_one.malformed, report_one.late) == (6, 2)  # the input is as bad as it means to be
    assert [p.line for p in report_one.problems] == [6, 41, 42, 301, 302, 901, 902, 1701]
    assert "unknown event type" in report_one.problems[2].reason
    for workers in (2, 3):
        out, report, heard = _run(workspace, "bad.jsonl", workers)
        assert (one, report_one, heard_one) == (out, report, heard)


def test_report_keeps_only_the_first_problems_but_every_problem_is_heard(workspace):
    from kairos.engine import replay_workers

    lines = _mixed_stream(1_000, 20, seed=2)
    for i in range(0, 1_000, 10):
        lines[i] = b'{"type":"call","ts":%d,"msisdn":"1380000%04d","direction":5}\n' % (
            msgspec.json.decode(lines[i])["ts"], i)
    (workspace / "bad.jsonl").write_bytes(b"".join(lines))
    heard = []
    with open(workspace / "o.jsonl", "wb") as f:
        report = replay_workers(_engine_factory(workspace), workspace / "bad.jsonl", f, workers=2,
                                on_problem=heard.append, keep_problems=7)
    assert list(range(1, 1_000, 10)) == [p.line for p in heard]
    assert heard[:7] == report.problems
    assert 100 == report.malformed


class _DyingEngine:
    """An Engine whose process dies (as if killed) on the first event of one subscriber."""

    victim = "13800000007"

    def __new__(cls, *args, **kwargs):
        from kairos.engine import Engine

        class Dying(Engine):
            def feed(self, events, on_late=None):
                if any(e.msisdn == cls.victim for e in events):
                    os._exit(3)
                super().feed(events, on_late)

        return Dying(*args, **kwargs)


def _alarm_after(seconds: int):
    def hung(*_):
        raise TimeoutError(f"replay_workers still running after {seconds} s")

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)


def test_a_worker_dying_mid_run_raises_instead_of_hanging(workspace):
    """The parent, writing to the dead worker's pipe, stops, and names the dead worker."""
    lines = _mixed_stream(40_000, 60, seed=4)  # megabytes: more than the pipes hold
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    victim = shard_of(_DyingEngine.victim, 2)
    _alarm_after(60)
    try:
        with pytest.raises(RuntimeError, match=f"replay worker\\(s\\) kairos-worker-{victim} failed"):
            _run(workspace, "e.jsonl", 2, engine_class=_DyingEngine)
    finally:
        signal.alarm(0)
    assert [] == multiprocessing.active_children()


def test_an_error_in_the_parent_stops_every_worker(workspace, monkeypatch):
    """No worker outlives a parent that fails (or is interrupted) while it routes the input."""
    from kairos.engine import _workers

    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(20_000, 60, seed=4)))
    route = _workers.Router.route

    def failing(self, stream, block_bytes=None):
        for i, frames in enumerate(route(self, stream, 4_096)):
            if i == 3:
                raise KeyboardInterrupt
            yield frames

    monkeypatch.setattr(_workers.Router, "route", failing)
    _alarm_after(60)
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(workspace, "e.jsonl", 2)
    finally:
        signal.alarm(0)
    assert [] == multiprocessing.active_children()


def test_the_parent_sends_each_line_to_the_worker_shard_of_names():
    import io

    from kairos.engine._workers import _HEAD, NOBODY, Router

    numbers = [f"1380000{i:04d}" for i in range(200)]
    lines = [b'{"type":"login","ts":%d,"msisdn":"%s","channel":"app"}' % (1000 + i, m.encode())
             for i, m in enumerate(numbers)]
    router = Router(3)
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for frames in router.route(io.BytesIO(b"\n".join(lines) + b"\n"), block_bytes=512):
        for w, frame in enumerate(frames):
            if frame is not None:
                _, _, count, vector, began = _HEAD.unpack_from(frame)
                assert began == 1000  # the stream's first ts, in every frame: where a worker arms its schedules
                mine = frame[_HEAD.size + vector:].split(b"\n")
                assert len(mine) == count
                got[w].extend(mine)
    assert NOBODY not in got
    for w, mine in got.items():
        assert mine == [line for line, m in zip(lines, numbers, strict=True) if shard_of(m, 3) == w]
