"""`kairos replay --workers N`: subscribers spread over processes, the output one worker's."""

from __future__ import annotations

import random
import re
import zlib

import msgspec
import pytest

from engine import shard_of
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


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "s.kairos").write_text(SCENARIOS)
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "cells.csv").write_text("cell,area\nCBD-1,cbd\nCBD-2,cbd\n")
    return tmp_path


def _replay(ws, events_name: str, workers: int, policy: bool = True) -> bytes:
    """Replay with the workspace's scenarios (and its policy.kairos, if there is one and ``policy``)."""
    out = ws / f"out-{events_name}-{workers}-{policy}.jsonl"
    extra = ["--policy", str(ws / "policy.kairos")] if policy and (ws / "policy.kairos").exists() else []
    code = main(["replay", "--scenarios", str(ws / "s.kairos"), *extra, "--events", str(ws / events_name),
                 "--reference", str(ws / "ref"), "--out", str(out), "--workers", str(workers), "--quiet"])
    assert code == 0
    return out.read_bytes()


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


def test_workers_refuse_a_policy_whose_channel_capacity_all_subscribers_share(workspace, capsys):
    """A capacity (so many calls a day for everybody) would be granted once per worker."""
    (workspace / "policy.kairos").write_text("policy\n  capacity call 100 per 1d\nend\n")
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(200, 10, seed=1)))
    code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--policy", str(workspace / "policy.kairos"),
                 "--events", str(workspace / "e.jsonl"), "--reference", str(workspace / "ref"),
                 "--out", str(workspace / "o.jsonl"), "--workers", "2", "--quiet"])
    assert (2, "kairos replay: the policy limits a channel's capacity across all subscribers, which workers "
               "cannot share; run this plan with --workers 1\n") == (code, capsys.readouterr().err)


def test_workers_refuse_measurement_which_one_process_must_see_whole(workspace, capsys):
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(200, 10, seed=1)))
    code = main(["replay", "--scenarios", str(workspace / "s.kairos"), "--events", str(workspace / "e.jsonl"),
                 "--reference", str(workspace / "ref"), "--workers", "2", "--stats"])
    assert 2 == code
    assert "--stats" in capsys.readouterr().err
