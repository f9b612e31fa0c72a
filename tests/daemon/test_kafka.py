"""The Kafka source against a real broker: the suite's Tansu (``tests/conftest.py``), started for the session.

The same ownership, offset and hand-over logic is also tested through the
embedded partitioned log (test_partitions.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from kairos._units import UnitState
from kairos.adapters import partition_of
from kairos.engine import decode_snapshot
from tests.conftest import unique_topic
from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_crash import SCENARIOS, _content, recorded_stream, reference, replayed, sentinels
from tests.kafka_records import create_topic, produce

COUNT = 4


async def _produce(bootstrap: str, topic: str, lines: list[str]) -> None:
    await create_topic(bootstrap, topic, COUNT)
    await produce(bootstrap, topic, [(json.loads(line)["msisdn"].encode(), line.strip().encode()) for line in lines])


async def _committed(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(COUNT)}
    finally:
        await consumer.stop()


async def _commit(bootstrap: str, topic: str, group: str, offsets: dict[int, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        await consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
    finally:
        await consumer.stop()


def _snapshot_offsets(partitions_dir: Path) -> dict[int, int]:
    out = {}
    for path in sorted(partitions_dir.glob("p-*.bin")):
        extra = msgspec.msgpack.decode(decode_snapshot(path.read_bytes()).extra, type=UnitState)
        out[int(path.stem[2:])] = extra.positions["kafka"].offset
    return out


def _instance(tmp_path: Path, bootstrap: str, topic: str,
              interval_s: float = 0.5) -> tuple[Path, list[tuple], list[str]]:
    """A stream produced to ``topic``, what one replay of it sends, and a daemon configuration reading it."""
    reference(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.kairos").write_text(SCENARIOS)
    events = tmp_path / "in" / "events.jsonl"
    stream = recorded_stream(events, seed=5, events=3_000, subscribers=100)
    # one end sentinel per partition: each partition keeps its own event time, so each needs its own
    stream = stream[:-1] + sentinels(json.loads(stream[-1])["ts"], COUNT)
    events.write_text("".join(stream))
    expected = sorted(map(_content, replayed(tmp_path)))
    anyio.run(_produce, bootstrap, topic, stream)
    src = (f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{bootstrap}"\ntopic = "{topic}"\n'
           f'group_id = "{topic}"\npartitions = {COUNT}\n')
    (tmp_path / "inst").mkdir()
    config = write_config(tmp_path / "inst", SCENARIOS, sources=src, reference="../ref", interval_s=interval_s)
    return config, expected, stream


def test_a_consumer_group_instance_sends_what_a_replay_sends_and_commits_its_final_snapshots_offsets(tmp_path, kafka):
    topic = unique_topic()
    # no periodic snapshot: the only offsets committed are the final snapshot's, at SIGTERM
    config, expected, stream = _instance(tmp_path, kafka, topic, interval_s=3600)
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path / "inst", "partitions assigned"), timeout=60, what="the assignment")
        wait_for(lambda: len(sends(tmp_path / "inst")) >= len(expected), timeout=120, what="the sends")
    finally:
        assert 0 == stop(proc)
    got = sorted(map(_content, sends(tmp_path / "inst")))
    assert got == expected
    # committed while the consumer was still in the group: exactly the final snapshot's positions
    held = _snapshot_offsets(tmp_path / "inst" / "state" / "partitions")
    assert sum(held.values()) == len(stream)
    assert held == anyio.run(_committed, kafka, topic, topic)


def test_state_without_a_position_reads_its_partition_from_the_start_not_from_a_committed_offset(tmp_path, kafka):
    """The group has offsets committed (by some earlier run) but no snapshot holds them: starting from them
    would skip events whose state was never saved; the partitions are read from their start instead."""
    topic = unique_topic()
    config, expected, stream = _instance(tmp_path, kafka, topic)
    ends = {p: 0 for p in range(COUNT)}
    for line in stream:
        ends[partition_of(json.loads(line)["msisdn"], COUNT)] += 1
    anyio.run(_commit, kafka, topic, topic, ends)
    proc = start(config)
    try:
        wait_for(lambda: len(sends(tmp_path / "inst")) >= len(expected), timeout=120, what="the sends")
    finally:
        assert 0 == stop(proc)
    assert expected == sorted(map(_content, sends(tmp_path / "inst")))
