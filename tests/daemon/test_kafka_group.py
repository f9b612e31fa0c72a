"""The proof of issue 13: two ``kairos run`` instances in one consumer group decide what one replay decides.

Generated province traffic (``kairos.traffic``) for the bundled catalogue —
its contact policy with ``capacity call 500 per 1d`` included — is produced to
an 8-partition topic of the suite's broker, keyed by msisdn, with one end
sentinel per partition (each partition keeps its own event time). Two
instances share ``snapshot.partitions_dir``, each with its own ``state_dir``;
their file channels write every delivery they are given (``dedupe = false``),
so the out files count deliveries by id. Fault points are chosen by progress —
the instance to kill has delivered K sends, K drawn from the seed — never by
time. The run is over once the group is stable (the instances' latest
assignments cover the 8 partitions, disjoint) and both have settled (their
``/metrics`` show every owned partition at its sentinel's time and no send
pending or in flight). Periodic snapshots are left at their default (60 s), so
a kill always lands with sends made after a partition's last snapshot; then:

- lost: ids one replay sends and no instance delivered — must be 0;
- extra: ids delivered that the replay does not send (or with other content) — must be 0;
- repeated: ids delivered more than once — must be 0, except ids in flight at
  a SIGKILL (attempted, outcome unknown in the killed instance's ledger), which
  the file channel (idempotent: it declares that it drops repeated ids) may see twice;
- capacity: sends per channel and period of the policy's ``capacity`` never above it.

Every case prints that summary, so a failure says which of them broke.
"""

from __future__ import annotations

import collections
import json
import random
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from kairos import traffic
from kairos._produce import produce
from kairos.adapters import partition_of, read_ledger
from tests.conftest import unique_topic
from tests.daemon.support import KAIROS, kill, log_offset, log_records, start, stop, wait_for

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios"
PARTITIONS = 8
CHANNELS = ("sms", "popup", "call")
DAY_MS = 86_400_000
ALL_UNITS = {f"p-{p:04d}" for p in range(PARTITIONS)}


def _traffic(folder: Path, seed: int) -> list[bytes]:
    """A generated day of 600 subscribers, three days ago (in the past, inside the outbox's retention), and
    one sentinel per partition two hours after its end, so every partition's time passes the same deadlines."""
    start_ms = (int(time.time() * 1000) - 3 * DAY_MS) // DAY_MS * DAY_MS - 8 * 3_600_000  # a local midnight
    events = folder / "events.jsonl"
    traffic.write(events, subscribers=600, hours=24, seed=seed, start_ms=start_ms)
    traffic.make_reference(folder / "ref", 600, seed)
    lines = events.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    seen: set[int] = set()
    for i in range(10_000):
        msisdn = f"9{i:04d}"
        p = partition_of(msisdn, PARTITIONS)
        if p not in seen:
            seen.add(p)
            lines.append(json.dumps({**last, "msisdn": msisdn, "ts": last["ts"] + 2 * 3_600_000}).encode() + b"\n")
    assert len(seen) == PARTITIONS
    events.write_bytes(b"".join(lines))
    return lines


def _replayed(folder: Path) -> dict[str, dict[str, Any]]:
    """What one uninterrupted ``kairos replay`` of the same input sends, by id."""
    out = folder / "replay.jsonl"
    subprocess.run(KAIROS + ["replay", "--scenarios", str(CATALOGUE), "--events", str(folder / "events.jsonl"),
                             "--reference", str(folder / "ref"), "--out", str(out), "--quiet",
                             "--dedup-window", "1m"], check=True)
    sends = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(sends) > 50, "too little traffic to prove anything"
    return {s["id"]: s for s in sends}


def _config(folder: Path, shared: Path, bootstrap: str, topic: str) -> Path:
    """An instance: its own state_dir (the outbox), the shared partitions_dir, file channels counting deliveries."""
    folder.mkdir()
    channels = "".join(f'[channels.{c}]\nplugin = "file"\npath = "out/{c}.jsonl"\nfsync = false\ndedupe = false\n'
                       for c in CHANNELS)
    # periodic snapshots at the default interval (60 s, longer than a case): a kill after K sends lands with
    # every send the instance made after its partitions' last snapshot, which the next owner decides again —
    # the case a handover must not send twice
    port = _free_port()
    text = (f'scenarios = "{CATALOGUE}"\nreference = "{shared.parent / "ref"}"\nstate_dir = "state"\n'
            "[time]\nidle_advance = false\nallowed_lateness_ms = 0\n"
            f'[snapshot]\npartitions_dir = "{shared}"\n[http]\nlisten = "127.0.0.1:{port}"\n'
            f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{bootstrap}"\ntopic = "{topic}"\n'
            f'group_id = "{topic}"\npartitions = {PARTITIONS}\n' + channels)
    (folder / "kairos.toml").write_text(text)
    return folder / "kairos.toml"


def _delivered(folder: Path) -> list[dict[str, Any]]:
    out = []
    for c in CHANNELS:
        path = folder / "out" / f"{c}.jsonl"
        if path.exists():
            text = path.read_text()
            out += [json.loads(x) for x in text[: text.rfind("\n") + 1].splitlines() if x.strip()]
    return out


def _in_doubt(folder: Path, shared: Path, units: set[str]) -> set[str]:
    """Ids the killed instance's ledgers show attempted with no outcome: in flight when it was killed. Its
    ledgers are in its state_dir, and — where a partition's outbox moves with its snapshot — beside the
    snapshots of the partitions it owned (read at once, before another owner settles them)."""
    paths = list((folder / "state").rglob("ledger*.log"))
    for unit in units:
        paths += shared.glob(f"{unit}*/**/ledger*.log")
    found: set[str] = set()
    for path in paths:
        found |= set(read_ledger(path).in_doubt)
    return found


class Instance:
    """One ``kairos run`` of the group, started and restarted on its own folder."""

    def __init__(self, config: Path, topic: str, shared: Path) -> None:
        self.config = config
        self.topic = topic
        self.shared = shared
        self.folder = config.parent
        self.proc: subprocess.Popen | None = None
        self.since = 0
        self.in_doubt: set[str] = set()

    def start(self) -> None:
        self.since = log_offset(self.folder)
        self.proc = start(self.config)

    def kill(self) -> None:
        assert self.proc is not None
        owned = self.owned() or set()
        kill(self.proc)
        self.in_doubt |= _in_doubt(self.folder, self.shared, owned)
        self.proc = None

    def stop(self) -> int:
        assert self.proc is not None
        status = stop(self.proc, timeout=60)
        self.proc = None
        return status

    def records(self) -> list[dict[str, Any]]:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.folder.name} exited with {self.proc.returncode}; see its daemon.log")
        return log_records(self.folder, self.since)

    def owned(self) -> set[str] | None:
        """The partitions of its latest assignment since its start (None: not assigned yet)."""
        assigned = [r for r in self.records() if r.get("event") == "partitions assigned"]
        return set(assigned[-1]["units"]) if assigned else None

    def metrics(self) -> str:
        port = re.search(r'listen = "127.0.0.1:(\d+)"', self.config.read_text()).group(1)  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    def settled(self, end_ms: int) -> bool:
        """Every partition of its latest assignment has read its sentinel (its event time is the sentinel's: the
        last record of every partition) and every send decided is delivered (none pending, none in flight)."""
        owned = self.owned()
        text = self.metrics()
        times = {unit: float(value) for unit, value in
                 re.findall(r'^kairos_stream_time_seconds\{unit="([^"]+)"\} (\S+)$', text, re.M)}
        busy = sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines()
                   if x.startswith(("kairos_outbox_pending ", "kairos_outbox_in_flight ")))
        return (bool(text) and owned is not None and set(times) == owned and busy == 0
                and all(abs(t * 1000 - end_ms) < 1 for t in times.values()))


def _stable(running: list[Instance]) -> bool:
    """The group's assignment as the running instances last logged it covers every partition, once."""
    owned = [i.owned() for i in running]
    if any(o is None for o in owned):
        return False
    union = [u for o in owned if o is not None for u in o]
    return sorted(union) == sorted(ALL_UNITS)


def _wait_stable(running: list[Instance], what: str) -> None:
    wait_for(lambda: _stable(running), timeout=120, what=what)


def _wait_done(running: list[Instance], expected: dict[str, dict[str, Any]], everyone: list[Instance],
               end_ms: int) -> None:
    """Until the group is stable, every replayed id is delivered somewhere, and each running instance has read
    every partition it owns to its end and delivered all it decided."""

    def done() -> bool:
        if not _stable(running):
            return False
        ids = {s["id"] for i in everyone for s in _delivered(i.folder)}
        return expected.keys() <= ids and all(i.settled(end_ms) for i in running)

    wait_for(done, timeout=240, what="the group to deliver every replayed send and settle")


def _end(lines: list[bytes]) -> int:
    """The sentinels' time: every partition's last record."""
    return int(json.loads(lines[-1])["ts"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_delivered(instance: Instance, k: int) -> None:
    wait_for(lambda: instance.records() is not None and len(_delivered(instance.folder)) >= k, timeout=180,
             what=f"{instance.folder.name} to deliver {k} sends")


def _capacities() -> list[tuple[str, int, int]]:
    """The policy's ``capacity CHANNEL N per D`` lines as (channel, N, period in ms)."""
    units = {"m": 60_000, "h": 3_600_000, "d": DAY_MS}
    text = (CATALOGUE / "policy.kairos").read_text()
    return [(c, int(n), int(d) * units[u]) for c, n, d, u in
            re.findall(r"^\s*capacity\s+(\w+)\s+(\d+)\s+per\s+(\d+)([mhd])\s*$", text, re.M)]


def _verdict(expected: dict[str, dict[str, Any]], instances: list[Instance]) -> dict[str, Any]:
    delivered = [s for i in instances for s in _delivered(i.folder)]
    times = collections.Counter(s["id"] for s in delivered)
    in_doubt = set().union(*(i.in_doubt for i in instances))
    fields = ("scenario", "msisdn", "ts", "send_at", "channel", "template", "params")
    wrong = sorted({s["id"] for s in delivered if s["id"] in expected
                    and any(s[f] != expected[s["id"]][f] for f in fields)})
    repeated = sorted(i for i, n in times.items() if n > 1)
    over = []
    for channel, capacity, period in _capacities():
        # a period is a local day (UTC+8) as the policy counts it; counted over distinct sends
        per = collections.Counter((s["send_at"] + 8 * 3_600_000) // period for s in
                                  {s["id"]: s for s in delivered}.values() if s["channel"] == channel)
        over += [f"{channel} {n} > {capacity} in period {k}" for k, n in per.items() if n > capacity]
    summary = {
        "replayed": len(expected),
        "delivered": len(delivered),
        "lost": sorted(expected.keys() - times.keys()),
        "extra": sorted(times.keys() - expected.keys()),
        "wrong_content": wrong,
        "repeated_in_flight": [i for i in repeated if i in in_doubt],
        "repeated": [i for i in repeated if i not in in_doubt],
        "capacity_exceeded": over,
        "by_instance": {i.folder.name: len(_delivered(i.folder)) for i in instances},
    }
    print("group run:", json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in summary.items()}))
    return summary


def _assert_exactly_once(summary: dict[str, Any]) -> None:
    assert ([], [], [], [], []) == (summary["lost"], summary["extra"], summary["wrong_content"], summary["repeated"],
                                    summary["capacity_exceeded"]), (
        f"lost {len(summary['lost'])}, extra {len(summary['extra'])}, wrong content {len(summary['wrong_content'])}, "
        f"repeated (not in flight at a kill) {len(summary['repeated'])}, capacity exceeded "
        f"{summary['capacity_exceeded']}; delivered by instance {summary['by_instance']}")


def _setup(tmp_path: Path, kafka: str, seed: int) -> tuple[list[bytes], dict[str, dict[str, Any]], Instance, Instance]:
    lines = _traffic(tmp_path, seed)
    expected = _replayed(tmp_path)
    topic = unique_topic("kairos-group")
    shared = tmp_path / "partitions"
    a = Instance(_config(tmp_path / "a", shared, kafka, topic), topic, shared)
    b = Instance(_config(tmp_path / "b", shared, kafka, topic), topic, shared)
    # the topic exists before either instance starts: its partition count is checked against the configuration
    anyio.run(lambda: produce([], bootstrap=kafka, topic=topic, partitions=PARTITIONS))
    return lines, expected, a, b


def _produce(kafka: str, instance: Instance, lines: list[bytes]) -> None:
    report = anyio.run(lambda: produce(lines, bootstrap=kafka, topic=instance.topic))
    assert report.produced == len(lines) and not report.malformed


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_one_of_two_instances_sigkilled_after_k_sends_and_restarted_on_its_state_dir_sends_exactly_what_replay_sends(
        tmp_path, kafka, seed):
    lines, expected, a, b = _setup(tmp_path, kafka, seed)
    k = random.Random(seed).randint(1, len(expected) // 4)
    print(f"seed {seed}: {len(lines)} events, {len(expected)} replayed sends, kill after {k} sends")
    try:
        a.start()
        b.start()
        _wait_stable([a, b], "both instances to own partitions")
        assert a.owned() and b.owned(), "one instance owns nothing: no handover to prove"
        _produce(kafka, a, lines)
        _wait_delivered(a, k)
        a.kill()
        a.start()
        _wait_done([a, b], expected, [a, b], _end(lines))
    finally:
        for i in (a, b):
            if i.proc is not None:
                i.stop()
    _assert_exactly_once(_verdict(expected, [a, b]))


def test_a_second_instance_joining_late_takes_partitions_over_with_exactly_the_replays_sends(tmp_path, kafka):
    """The first half of the traffic goes to the first instance alone; the second half once the late one owns
    partitions, so it decides sends from state the first one left in partitions_dir."""
    lines, expected, a, b = _setup(tmp_path, kafka, 21)
    half = len(lines) // 2
    k = len([s for s in expected.values() if s["ts"] <= json.loads(lines[half - 1])["ts"]]) // 2
    try:
        a.start()
        _wait_stable([a], "the first instance to own every partition")
        _produce(kafka, a, lines[:half])
        _wait_delivered(a, k)
        b.start()
        _wait_stable([a, b], "the late instance to own partitions")
        _produce(kafka, a, lines[half:])
        _wait_done([a, b], expected, [a, b], _end(lines))
        assert a.owned() and b.owned(), "the late instance was given nothing"
    finally:
        for i in (a, b):
            if i.proc is not None:
                i.stop()
    summary = _verdict(expected, [a, b])
    assert not summary["repeated_in_flight"]  # nothing was killed
    assert summary["by_instance"]["b"] > 0
    _assert_exactly_once(summary)


def test_one_of_two_instances_stopped_with_sigterm_hands_its_partitions_over_with_exactly_the_replays_sends(
        tmp_path, kafka):
    lines, expected, a, b = _setup(tmp_path, kafka, 31)
    k = len(expected) // 5
    try:
        a.start()
        b.start()
        _wait_stable([a, b], "both instances to own partitions")
        _produce(kafka, a, lines)
        _wait_delivered(a, k)
        assert 0 == a.stop()
        _wait_done([b], expected, [a, b], _end(lines))
    finally:
        for i in (a, b):
            if i.proc is not None:
                i.stop()
    summary = _verdict(expected, [a, b])
    assert not summary["repeated_in_flight"]
    _assert_exactly_once(summary)


def test_capacity_lines_are_read_from_the_bundled_policy():
    """The capacity check above counts against the policy's own numbers, not a copy of them."""
    assert [("call", 500, DAY_MS)] == _capacities()
