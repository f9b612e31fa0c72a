"""Crash safety, proven with real processes: SIGKILL at random points loses no send and repeats none.

The daemon tails a recorded stream and delivers through rate-limited file
channels, so kills land while events are processed, snapshots are written
and sends are in flight. After several kills and restarts, the sends in the
channel files must be exactly what an uninterrupted ``kairos replay`` of the
same stream decides: the same ids with the same content, each once.

Kill points are drawn from the seed as progress the daemon reports (snapshots
taken and events read since its start, in its ``snapshot taken`` lines), never
as a time to sleep: a loaded machine changes when a kill lands, not where.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kairos.adapters._partitions import partition_of, split

from tests.daemon.support import (
    kill,
    log_offset,
    logged,
    sends,
    start,
    stop,
    wait_for_progress,
    wait_until_settled,
    write_config,
)

SCENARIOS = """
scenario video
  when count(dpi where category == "video") >= 3 within 10m
  cooldown 30m
  then sms "offer.video" with {app: last.app}
end

scenario review
  when dpi as r where category == "review" -> dpi where category == "shop" within 5m
  then popup "offer.handset" with {site: r.host}
end

scenario no_topup
  when usage as u where crosses_above(pct, 90) -> not topup within 15m
  then call "care.topup" with {pct: u.pct}
end

scenario low
  when balance as b where crosses_below(amount, 10)
  then sms "offer.topup" with {amount: b.amount} after 30s
end

scenario mall
  when dwell in area("mall") for 20m
  then popup "offer.mall"
end

scenario follow
  when trigger as t where scenario == "video" -> not feedback where trigger_id == t.id within 1h
  then call "offer.video_call"
end
"""


def recorded_stream(path: Path, *, seed: int, events: int, subscribers: int, start_ms: int | None = None) -> list[str]:
    """A sorted JSON-lines stream ending with a sentinel two hours later, so every deadline falls inside it;
    it starts six hours ago unless ``start_ms`` says otherwise."""
    rnd = random.Random(seed)
    t = (time.time_ns() // 1_000_000) - 6 * 3_600_000 if start_ms is None else start_ms
    out = []
    for _ in range(events):
        t += rnd.choice([0, 0, 10, 50, 100, 200, 400])
        m = f"1380000{rnd.randrange(subscribers):04d}"
        kind = rnd.random()
        if kind < 0.5:
            ev = {"type": "dpi", "host": rnd.choice(["a.cn", "b.cn"]), "app": rnd.choice(["x", "y"]),
                  "category": rnd.choice(["video", "video", "review", "shop", "news"])}
        elif kind < 0.65:
            ev = {"type": "usage", "pct": rnd.choice([50, 85, 92, 99])}
        elif kind < 0.75:
            ev = {"type": "topup", "amount": 20}
        elif kind < 0.85:
            ev = {"type": "balance", "amount": rnd.choice([3, 8, 15, 30])}
        else:
            ev = {"type": "location", "cell": rnd.choice(["c_mall", "c_street"])}
        ev.update(ts=t, msisdn=m)
        out.append(json.dumps(ev))
    out.append(json.dumps({"type": "location", "ts": t + 2 * 3_600_000, "msisdn": "0", "cell": "c_street"}))
    path.write_text("\n".join(out) + "\n")
    return [x + "\n" for x in out]


class Feeder(threading.Thread):
    """Hands the stream to ``write`` a block at a time, like a live feed, while ``gate`` is set (a daemon runs).

    The pause between blocks paces the input only; no assertion depends on it."""

    def __init__(self, write: Callable[[list[str]], None], lines: list[str], block: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.write, self.lines, self.block, self.every_s = write, lines, block, every_s
        self.gate = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        for i in range(0, len(self.lines), self.block):
            self.gate.wait()
            self.write(self.lines[i:i + self.block])
            time.sleep(self.every_s)
        self.done.set()


def kill_at_progress(folder: Path, config: Path, feeder: Feeder, rnd: random.Random, seed: int, i: int,
                     events_below: int = 6000) -> None:
    """Start the daemon, kill it (SIGKILL) once it reported a seeded number of snapshots and events."""
    since = log_offset(folder)
    proc = start(config)
    feeder.gate.set()
    try:
        snapshots, events = rnd.randint(1, 3), rnd.randrange(events_below)
        wait_for_progress(folder, proc, since, snapshots=snapshots, events=events, input_done=feeder.done.is_set,
                          what=f"kill point {i}: {snapshots} snapshots, {events} events (seed {seed})")
    finally:
        kill(proc)
        feeder.gate.clear()


def run_to_the_end(folder: Path, config: Path, feeder: Feeder, seed: int) -> None:
    """Start the daemon, let the feeder finish, wait until it read everything and sent what it had, stop it."""
    since = log_offset(folder)
    proc = start(config)
    feeder.gate.set()
    try:
        feeder.join(timeout=300)
        assert feeder.done.is_set(), f"the feeder did not finish (seed {seed})"
        wait_until_settled(folder, proc, max(since, log_offset(folder)), what=f"the last run to settle (seed {seed})")
    finally:
        assert 0 == stop(proc), f"seed {seed}"


def appender(path: Path) -> Callable[[list[str]], None]:
    def write(lines: list[str]) -> None:
        with open(path, "a") as f:
            f.write("".join(lines))

    return write


def splitter(folder: Path, count: int) -> Callable[[list[str]], None]:
    def write(lines: list[str]) -> None:
        split([x.encode() for x in lines], folder, count)

    return write


def sentinels(t: int, count: int) -> list[str]:
    """One event per partition at ``t``, so every partition's time passes every deadline before it."""
    out, seen = [], set()
    for i in range(1000):
        m = f"9{i:03d}"
        p = partition_of(m, count)
        if p not in seen:
            seen.add(p)
            out.append(json.dumps({"type": "location", "ts": t, "msisdn": m, "cell": "c_street"}) + "\n")
    assert len(seen) == count
    return out


def reference(folder: Path) -> Path:
    ref = folder / "ref"
    ref.mkdir()
    (ref / "cells.csv").write_text("cell,area\nc_mall,mall\nc_street,street\n")
    return ref


def replayed(folder: Path) -> list[dict]:
    """What an uninterrupted run decides: ``kairos replay`` over the same stream, skipping repeated
    events as the daemon does by default (the stream has some: one subscriber, one ts, the same fields)."""
    out = folder / "replay.jsonl"
    subprocess.run(
        [sys.executable, "-m", "kairos", "replay", "--scenarios", str(folder / "scenarios"), "--events",
         str(folder / "in" / "events.jsonl"), "--reference", str(folder / "ref"), "--out", str(out), "--quiet",
         "--dedup-window", "1m"],
        check=True,
    )
    return [json.loads(x) for x in out.read_text().splitlines()]


def _content(s: dict) -> tuple:
    return (s["id"], s["scenario"], s["msisdn"], s["ts"], s["send_at"], s["channel"], s["template"],
            json.dumps(s["params"], sort_keys=True))


PARTITIONS = 4


@pytest.mark.parametrize("mode", ["file", "partitioned"])
def test_sigkill_at_random_points_loses_no_send_and_sends_none_twice(tmp_path, mode):
    """``file``: one unit over a tailed file; ``partitioned``: one instance owning every partition of a log."""
    seed = int(os.environ.get("KAIROS_CRASH_SEED", random.randrange(1 << 30)))
    print(f"KAIROS_CRASH_SEED={seed}")  # shown with every failure: the same seed draws the same kill points
    rnd = random.Random(seed)
    reference(tmp_path)
    sources = None
    if mode == "partitioned":
        sources = f'[[sources]]\nkind = "partitioned"\npath = "log"\npartitions = {PARTITIONS}\npoll_ms = 20\n'
    config = write_config(
        tmp_path, SCENARIOS, interval_s=0.15, reference="ref", sources=sources,
        extra="[outbox.channels.sms]\nrate = 400\n[outbox.channels.popup]\nrate = 400\n"
              "[outbox.channels.call]\nrate = 400\n",
    )
    events = tmp_path / "in" / "events.jsonl"
    stream = recorded_stream(events, seed=seed, events=60_000, subscribers=400)
    stream = stream[:-1] + sentinels(json.loads(stream[-1])["ts"], PARTITIONS)
    events.write_text("".join(stream))
    expected = sorted(map(_content, replayed(tmp_path)))
    assert len(expected) > 300, "the stream must decide enough sends for kills to land among them"
    events.write_text("")
    write = appender(events) if mode == "file" else splitter(tmp_path / "log", PARTITIONS)
    feeder = Feeder(write, stream, block=500, every_s=0.05)  # about 6 s of input while a daemon runs
    feeder.start()

    kills = 6
    for i in range(kills):
        kill_at_progress(tmp_path, config, feeder, rnd, seed, i)

    run_to_the_end(tmp_path, config, feeder, seed)
    actual = sorted(map(_content, sends(tmp_path)))
    assert len(actual) == len(set(actual)), f"a send was delivered twice (seed {seed})"
    assert expected == actual, f"seed {seed}"
    # the file channel drops a repeated id itself; the outbox must have sent it only those a kill left
    # in flight (at most its concurrency of 4 per channel and kill), never the decisions made again
    absorbed = logged(tmp_path, "repeated send absorbed: the id is already in the file")
    assert len(absorbed) <= kills * 3 * 4, f"seed {seed}"
    assert len(logged(tmp_path, "snapshot loaded")) >= kills, f"every kill lands after a snapshot (seed {seed})"
