"""End to end through a Kafka broker: one ``kairos run`` instance, then two in one consumer group.

    python -m bench.kafka_group --events FILE --reference DIR [--scenarios DIR] [--partitions 8] [--keep DIR]

(``python -m bench`` runs it on W2's traffic unless ``--skip kafka``.) The
traffic, with one end sentinel per partition, is produced once to a topic of a
local broker (Tansu from the test and bench dependencies, ``bench.broker``)
keyed by msisdn, as operators' producers write it (``kairos produce``);
production is not timed. Each run is a new consumer group over that topic:
every instance has its own ``state_dir`` and file channels, the run's
instances share a ``partitions_dir``, and the bench polls each instance's
``/metrics`` (events decoded) and log (assignments) every 50 ms.

Timed: from the moment the group's assignment is stable (the instances' latest
assignments cover every partition once — Tansu takes ~5 s for a first join
and 5–8 s per rebalance, which a long-lived group pays once, so it is left
out) until each instance has read everything. events/s per instance is the
events it read in that window over its own time; the group's rate is the
events all read in the window over the time until the last one finished;
the two-instance ratio is the group's rate over the one instance's. The
events a first joiner read before the second joined are counted outside the
window (``events_before_stable``). Both runs must deliver exactly the sends of
one ``kairos replay`` of the same input, or the run fails loudly
(``KafkaBenchError``, exit 1). Tansu's ``end_offsets()`` is wrong, so "done"
is the instances' own count of events reaching the number of records produced.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from bench.broker import Broker, start_broker, stop_broker
from kairos.adapters import partition_of

KAIROS = [sys.executable, "-m", "kairos"]
CHANNELS = ("sms", "popup", "call")
ROOT = Path(__file__).resolve().parents[1]


class KafkaBenchError(Exception):
    """An instance failed, timed out, or the group's sends differ from replay's: the run proves nothing."""


class InstanceRun(msgspec.Struct):
    """One instance in one run: what it read inside the timed window, and how fast."""

    name: str
    partitions: list[int]
    events: int  #: events read inside the window
    seconds: float  #: from the stable assignment to its last event
    events_per_s: float
    events_before_stable: int  #: read before the group's assignment was stable (not timed)
    cpu_s: float = 0.0  #: CPU time it used from the stable assignment until the group had read everything


class GroupRun(msgspec.Struct):
    """One run: one or two instances in a fresh consumer group over the produced topic."""

    instances: list[InstanceRun]
    events: int  #: read inside the window by all instances
    seconds: float  #: from the stable assignment until the last instance finished
    events_per_s: float
    sends: int
    sends_equal_replay: bool
    join_s: float  #: from starting the instances until the assignment was stable (not timed)
    broker_cpu_s: float = 0.0  #: CPU time the broker used in the same span (it shares the machine)


class KafkaGroupResult(msgspec.Struct):
    """The whole comparison, as ``python -m bench`` writes it to JSON."""

    records: int  #: produced (the traffic and one sentinel per partition)
    partitions: int
    produce_s: float
    replay_sends: int
    one: GroupRun
    two: GroupRun
    two_vs_one: float  #: the two instances' events/s over the one's
    rounds: int = 1  #: runs of each, interleaved; the best of each is kept
    #: two plain CPU-bound processes at once against one alone, just before the runs (2.0 on two free cores)
    two_process_scaling: float | None = None


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_sentinels(source: Path, target: Path, partitions: int) -> list[bytes]:
    """The traffic and one event per partition two hours after its end: each partition keeps its own event
    time, and each must pass the deadlines the replay's single time passes."""
    lines = source.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    seen: set[int] = set()
    for i in range(100_000):
        msisdn = f"9{i:05d}"
        p = partition_of(msisdn, partitions)
        if p not in seen:
            seen.add(p)
            lines.append(json.dumps({**last, "msisdn": msisdn, "ts": last["ts"] + 2 * 3_600_000}).encode() + b"\n")
        if len(seen) == partitions:
            break
    target.write_bytes(b"".join(lines))
    return lines


def _replay(events: Path, scenarios: Path, reference: Path, out: Path) -> dict[str, bytes]:
    """One ``kairos replay`` of the same input (duplicates skipped as the daemon skips them): sends by id."""
    subprocess.run(KAIROS + ["replay", "--scenarios", str(scenarios), "--events", str(events), "--reference",
                             str(reference), "--out", str(out), "--quiet", "--dedup-window", "1m"], check=True)
    return {json.loads(x)["id"]: x for x in out.read_bytes().splitlines()}


class _Instance:
    def __init__(self, folder: Path, *, scenarios: Path, reference: Path, shared: Path, broker: Broker,
                 topic: str, group: str, partitions: int) -> None:
        folder.mkdir(parents=True)
        self.name = folder.name
        self.folder = folder
        self.port = _free_port()
        channels = "".join(f'[channels.{c}]\nplugin = "file"\npath = "out/{c}.jsonl"\nfsync = false\n'
                           for c in CHANNELS)
        (folder / "kairos.toml").write_text(
            f'scenarios = "{scenarios}"\nreference = "{reference}"\nstate_dir = "state"\n'
            "[time]\nidle_advance = false\n"
            f'[snapshot]\ninterval_s = 10\npartitions_dir = "{shared}"\n'
            f'[http]\nlisten = "127.0.0.1:{self.port}"\n'
            f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{broker.bootstrap}"\ntopic = "{topic}"\n'
            f'group_id = "{group}"\npartitions = {partitions}\nmax_records = 10000\n' + channels)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.folder / "daemon.log", "ab") as log:
            self.proc = subprocess.Popen(KAIROS + ["run", "--config", "kairos.toml"], cwd=self.folder, stdout=log,
                                         stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise KafkaBenchError(f"instance {self.name} exited with {self.proc.returncode}; its log: "
                                  f"{self.folder / 'daemon.log'}")

    def _metrics(self, *names: str) -> int:
        """The sum of the named series in its /metrics (0 before it answers)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(names)))

    def events(self) -> int:
        """Events decoded so far, and lines refused."""
        return self._metrics("kairos_events_total", "kairos_decode_errors_total")

    def undelivered(self) -> int:
        """Sends decided and not yet delivered (waiting, or being delivered), and subscribers a schedule
        instant's sweep has yet to visit (every event read is not every send decided while one is under way)."""
        return self._metrics("kairos_outbox_pending ", "kairos_outbox_in_flight ", "kairos_schedule_sweep_left{")

    def _records(self) -> list[dict[str, Any]]:
        path = self.folder / "daemon.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_bytes().splitlines()
                if b'"partitions assigned"' in line or b'"revoked"' in line]

    def owned(self) -> set[int] | None:
        """The partitions of its latest logged assignment (None before its first)."""
        latest = [r for r in self._records() if r["event"] == "partitions assigned"]
        return None if not latest else {int(u[2:]) for u in latest[-1]["units"]}

    def assigned(self) -> tuple[float, int]:
        """When its latest assignment was logged (epoch seconds) and how many events it had read before it
        (the revocation snapshot's count: nothing is read between a revocation and the next assignment)."""
        records = self._records()
        last = max(i for i, r in enumerate(records) if r["event"] == "partitions assigned")
        revoked = [r for r in records[:last] if r["event"] == "snapshot taken"]
        at = dt.datetime.fromisoformat(records[last]["timestamp"].replace("Z", "+00:00")).timestamp()
        return at, (revoked[-1]["events"] if revoked else 0)

    def sends(self) -> list[bytes]:
        out = []
        for c in CHANNELS:
            path = self.folder / "out" / f"{c}.jsonl"
            if path.exists():
                out += path.read_bytes().splitlines()
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _group_run(work: Path, count: int, *, records: int, expected: dict[str, bytes], timeout_s: float,
               broker: Broker, **common: Any) -> GroupRun:
    """``count`` instances in a fresh group, timed from the stable assignment until each read its share."""
    shared = work / "partitions"
    instances = [_Instance(work / f"instance-{i + 1}", shared=shared, broker=broker, **common) for i in range(count)]
    partitions = common["partitions"]
    started, started_wall = time.perf_counter(), time.time()
    deadline = started + timeout_s
    try:
        for inst in instances:
            inst.start()
        while True:  # wait for a stable assignment: every partition owned once
            for inst in instances:
                inst.check()
            owned = [inst.owned() for inst in instances]
            if all(o for o in owned) and sorted(p for o in owned if o for p in o) == list(range(partitions)):
                break
            if time.perf_counter() > deadline:
                raise KafkaBenchError(f"no stable assignment of {partitions} partitions to {count} instances "
                                      f"within {timeout_s:g} s (see {work})")
            time.sleep(0.05)
        last = [0] * count
        finished = [0.0] * count
        pids = [broker.pid] + [inst.proc.pid for inst in instances if inst.proc is not None]
        cpu = [_cpu_s(pid) for pid in pids]  # from the stable assignment (as seen here, within 50 ms)
        while sum(last) < records:
            if time.perf_counter() > deadline:
                raise KafkaBenchError(f"{count} instance(s) read {sum(last):,} of {records:,} records within "
                                      f"{timeout_s:g} s (see {work})")
            for i, inst in enumerate(instances):
                inst.check()
                n = inst.events()
                if n > last[i]:
                    last[i], finished[i] = n, time.time()
            if owned != [inst.owned() for inst in instances]:
                raise KafkaBenchError("the group rebalanced after its assignment was stable; run again on a "
                                      "quieter machine")
            time.sleep(0.05)
        cpu = [_cpu_s(pid) - c for pid, c in zip(pids, cpu, strict=True)]
        assigned = [inst.assigned() for inst in instances]
        t0 = max(at for at, _ in assigned)  # the stable assignment: the last member's (one generation)
        before = [n for _, n in assigned]
        # every event read: wait for the sends it decided to be delivered (the outbox drains in the background)
        while True:
            got = [s for inst in instances for s in inst.sends()]
            if len(got) >= len(expected) or all(inst.undelivered() == 0 for inst in instances):
                break
            if time.perf_counter() > deadline:
                raise KafkaBenchError(f"the sends were not delivered within {timeout_s:g} s (see {work})")
            time.sleep(0.05)
    finally:
        for inst in instances:
            inst.stop()
    runs = []
    for i, inst in enumerate(instances):
        seconds = max(finished[i] - t0, 0.0)
        runs.append(InstanceRun(inst.name, sorted(owned[i] or ()), last[i] - before[i], round(seconds, 2),
                                round((last[i] - before[i]) / seconds) if seconds > 0 else 0.0, before[i],
                                round(cpu[i + 1], 2)))
    seconds = max(finished) - t0
    events = sum(r.events for r in runs)
    got = [s for inst in instances for s in inst.sends()]
    by_id = collections.Counter(json.loads(s)["id"] for s in got)
    equal = (len(got) == len(by_id) and by_id.keys() == expected.keys()
             and all(_decision(s) == _decision(expected[json.loads(s)["id"]]) for s in got))
    return GroupRun(runs, events, round(seconds, 2), round(events / seconds) if seconds > 0 else 0.0, len(got),
                    equal, round(t0 - started_wall, 1), round(cpu[0], 2))


def _decision(line: bytes) -> tuple[Any, ...]:
    """What a send decided, as replay writes it (the file channel adds the rendered text)."""
    s = json.loads(line)
    return (s["id"], s["scenario"], s["msisdn"], s["ts"], s["send_at"], s["channel"], s["template"],
            json.dumps(s["params"], sort_keys=True))


def measure(events: Path, reference: Path, scenarios: Path, *, partitions: int = 8, work: Path, rounds: int = 1,
            timeout_s: float = 900.0) -> KafkaGroupResult:
    """Produce ``events`` once; ``rounds`` times run one instance and then two in a group (interleaved, so a
    machine busy with other work slows both alike; the best round of each is kept); every run is compared
    with replay."""
    work.mkdir(parents=True, exist_ok=True)
    with_sentinels = work / "events.jsonl"
    lines = _with_sentinels(events, with_sentinels, partitions)
    expected = _replay(with_sentinels, scenarios, reference, work / "replay.jsonl")
    broker = start_broker(work / "broker")
    try:
        topic = "kairos-bench"
        t = time.perf_counter()
        done = subprocess.run(KAIROS + ["produce", str(with_sentinels), "--bootstrap", broker.bootstrap, "--topic",
                                        topic, "--partitions", str(partitions)], capture_output=True, text=True)
        produce_s = time.perf_counter() - t
        if done.returncode != 0 or f"{len(lines):,} records to {topic}" not in done.stderr:
            raise KafkaBenchError(f"kairos produce did not produce the {len(lines):,} lines (exit "
                                  f"{done.returncode}): {done.stderr.strip()}")
        common: dict[str, Any] = dict(scenarios=scenarios.resolve(), reference=reference.resolve(), broker=broker,
                                      topic=topic, partitions=partitions, records=len(lines), expected=expected,
                                      timeout_s=timeout_s)
        ones: list[GroupRun] = []
        twos: list[GroupRun] = []
        for n in range(1, rounds + 1):
            for count, runs in ((1, ones), (2, twos)):
                print(f"bench.kafka_group: round {n}, {count} instance(s) ...", file=sys.stderr)
                run = _group_run(work / f"round{n}-{count}", count, group=f"round{n}-{count}", **common)
                if not run.sends_equal_replay:
                    raise KafkaBenchError(f"{count} instance(s) did not deliver exactly the sends of one replay "
                                          f"({run.sends} against {len(expected)}; see {work})")
                runs.append(run)
    finally:
        stop_broker(broker)
    one = max(ones, key=lambda r: r.events_per_s)
    two = max(twos, key=lambda r: r.events_per_s)
    return KafkaGroupResult(len(lines), partitions, round(produce_s, 1), len(expected), one, two,
                            round(two.events_per_s / one.events_per_s, 3) if one.events_per_s else 0.0,
                            rounds=rounds)


def render(r: KafkaGroupResult) -> str:
    """The comparison as plain-text lines."""
    out = [f"Kafka, {r.records:,} records in {r.partitions} partitions (produced in {r.produce_s} s), "
           f"{r.replay_sends:,} sends as one replay's"]
    for label, run in (("one instance", r.one), ("two instances", r.two)):
        each = "; ".join(f"{i.name} {i.events:,} events in {i.seconds} s = {i.events_per_s:,.0f}/s, CPU {i.cpu_s} s "
                         f"(partitions {','.join(map(str, i.partitions))}; {i.events_before_stable:,} read before "
                         "the assignment was stable)" for i in run.instances)
        out.append(f"  {label}: {run.events_per_s:,.0f} events/s ({run.events:,} in {run.seconds} s; joined in "
                   f"{run.join_s} s; the broker's CPU {run.broker_cpu_s} s), sends equal replay: "
                   f"{run.sends_equal_replay} — {each}")
    scaling = "" if r.two_process_scaling is None else (
        f" (this machine just before: two plain CPU-bound processes did {r.two_process_scaling}x one's work)")
    out.append(f"  two instances / one: {r.two_vs_one}x, best of {r.rounds} round(s) each{scaling}")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.kafka_group", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=Path, required=True, help="province traffic (python -m kairos.traffic)")
    p.add_argument("--reference", type=Path, required=True, help="its reference folder")
    p.add_argument("--scenarios", type=Path, default=ROOT / "scenarios",
                   help="a folder of scenarios (default: the bundled catalogue, policy included)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--rounds", type=int, default=1, help="runs of each, interleaved; the best is kept")
    p.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (must not exist) and keep it")
    args = p.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="kairos-kafka-bench-")) / "run"
    try:
        result = measure(args.events, args.reference, args.scenarios, partitions=args.partitions, work=work,
                         rounds=args.rounds)
    except KafkaBenchError as e:
        print(f"bench.kafka_group: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(work.parent, ignore_errors=True)
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
