"""The Kafka source at a rebalance: a partition whose state cannot be taken is paused and retried, and the
partitions of one revocation are released side by side.

The first test runs ``kairos run`` against the suite's broker (``tests/conftest.py``) while the test process
holds one partition's outbox store, as a previous owner stuck in its release would; the second drives the
revocation listener of an in-process daemon directly (no broker: a revocation is the listener being called).
Every wait is for progress (the daemon's ``/metrics`` and log, a channel's calls), never a chosen time.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from aiokafka import TopicPartition

from kairos import _daemon
from kairos._config import KafkaSourceConfig, load_config
from kairos._daemon import Daemon
from kairos._kafka import KafkaPump, _Rebalance
from kairos.adapters import Outbox, OutboxConfig, partition_of
from tests.channels.test_outbox import Recorder, ctx
from tests.conftest import unique_topic
from tests.daemon.support import log_offset, logged, sends, start, stop, wait_for, wait_until_settled
from tests.daemon.test_crash import _content, reference
from tests.daemon.test_kafka import COUNT, _instance
from tests.daemon.test_kafka_io import _http, _metrics
from tests.daemon.test_partitions import partitioned_config

WAITING = ("kairos_kafka_partitions_waiting", ())


def test_a_partition_whose_store_another_owner_holds_is_paused_shown_waiting_and_fed_once_when_released(
        tmp_path: Path, kafka: str) -> None:
    topic = unique_topic()
    config, expected, stream = _instance(tmp_path, kafka, topic)
    text = config.read_text().replace("fsync = false\n", "fsync = false\ndedupe = false\n")  # repeats are seen
    config.write_text(text + '[http]\nlisten = "127.0.0.1:0"\n[outbox]\nadopt_wait_s = 0.5\n')
    inst = config.parent
    # the partition deciding the most sends is held, as by a previous owner stuck in its release
    by_partition = collections.Counter(partition_of(s[2], COUNT) for s in expected)
    held = by_partition.most_common(1)[0][0]
    assert by_partition[held] > 10
    unit = f"p-{held:04d}"
    records = collections.Counter(partition_of(json.loads(x)["msisdn"], COUNT) for x in stream)
    others = [s for s in expected if partition_of(s[2], COUNT) != held]
    holder = Outbox(OutboxConfig(directory=str(tmp_path / "holder")), {})
    holder.adopt(unit, inst / "state" / "partitions" / f"{unit}.outbox")
    released = False
    proc = start(config)
    try:
        base = _http(inst)

        def others_done() -> dict | None:
            m = _metrics(base)
            events = sum(v for (name, _), v in m.items() if name == "kairos_events_total")
            done = events == len(stream) - records[held] and len(sends(inst)) >= len(others)
            return m if done and m.get(WAITING) == 1 else None

        m = wait_for(others_done, timeout=120, what="the other partitions read, their sends made, the held one waiting")
        assert COUNT == m[("kairos_kafka_partitions_owned", ())]
        (paused,) = logged(inst, "partition paused: its state cannot be taken yet; its records wait on the topic "
                                 "and it is retried until taken")
        assert (unit, "outbox store locked by another owner") == (paused["unit"], paused["reason"])
        wait_for(lambda: logged(inst, "outbox store locked by its previous owner: waiting for it to release"),
                 what="the first try's wait logged")
        assert others == sorted(map(_content, sends(inst)))  # nothing of the held partition decided
        assert [] == logged(inst, "paused partition taken and resumed")

        anyio.run(holder.release, unit)
        released = True
        wait_for(lambda: len(sends(inst)) >= len(expected), timeout=120, what="the held partition's sends")
        wait_until_settled(inst, proc, log_offset(inst), what="every send delivered")
        m = _metrics(base)
    finally:
        if not released:
            anyio.run(holder.release, unit)
        assert 0 == stop(proc)
    assert expected == sorted(map(_content, sends(inst)))  # each once: nothing lost, nothing decided twice
    assert 0 == m[WAITING]
    (resumed,) = logged(inst, "paused partition taken and resumed")
    assert unit == resumed["unit"]
    # the retries' waits were not logged again, nor the same failure
    assert 1 == len(logged(inst, "outbox store locked by its previous owner: waiting for it to release"))
    assert [] == logged(inst, "paused partition still cannot be taken")


def test_the_partitions_of_one_revocation_are_released_side_by_side_each_waiting_for_its_send_in_flight(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each partition's outbox store has a send in a channel's hands; the channel answers only once both
    releases have begun. Released one after the other, the first would wait out its bound (timeout_s) alone."""
    reference(tmp_path)
    (tmp_path / "log").mkdir()
    config = partitioned_config(tmp_path / "inst", tmp_path / "shared", [0, 1])
    config.write_text(config.read_text() + "[outbox.channels.sms]\ntimeout_s = 10\n")
    order: list[str] = []

    async def main() -> None:
        channel = Recorder()
        channel.stall()
        monkeypatch.setattr(_daemon.Daemon, "_channels", lambda self: {"sms": channel})
        d = Daemon(load_config(config))
        release = d.outbox.release

        async def traced(store: str, **kw: float | None) -> None:
            order.append(f"start {store}")
            if sum(x.startswith("start") for x in order) == 2:
                channel.gate.set()  # both releases are waiting: the sends in flight may end
            await release(store, **kw)
            order.append(f"end {store}")

        monkeypatch.setattr(d.outbox, "release", traced)
        pump = KafkaPump(d, KafkaSourceConfig(bootstrap_servers="unused", topic="t", group_id="g", partitions=4))
        async with anyio.create_task_group() as tg:
            await tg.start(d.outbox.run)
            d.outbox.submit(ctx(1, channel="sms"), store="p-0000")
            d.outbox.submit(ctx(2, channel="sms"), store="p-0001")
            while channel.entered < 2:  # both sends are in the channel's hands
                await anyio.lowlevel.checkpoint()
            await _Rebalance(pump).on_partitions_revoked([TopicPartition("t", 0), TopicPartition("t", 1)])
            after.extend([d.outbox.stores(), sorted(channel.ids())])
            d.outbox.stop()

    after: list[list[str]] = []
    anyio.run(main)
    assert {"start p-0000", "start p-0001"} == set(order[:2]), order
    assert {"end p-0000", "end p-0001"} == set(order[2:]), order
    assert [[""], sorted([ctx(1).id, ctx(2).id])] == after  # both stores handed on once their sends were answered
