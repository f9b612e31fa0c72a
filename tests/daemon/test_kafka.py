"""The Kafka source against a real broker: skipped unless KAFKA_BOOTSTRAP_SERVERS is set.

Without a broker the same ownership, offset and hand-over logic is tested
through the embedded partitioned log (test_partitions.py).
"""

from __future__ import annotations

import json
import os
import uuid

import anyio
import pytest

from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_crash import SCENARIOS, _content, recorded_stream, reference, replayed

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
pytestmark = pytest.mark.skipif(not BOOTSTRAP, reason="set KAFKA_BOOTSTRAP_SERVERS to run the Kafka tests")
COUNT = 4


async def _produce(topic: str, lines: list[str]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=COUNT, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        for line in lines:
            await producer.send(topic, line.strip().encode(), key=json.loads(line)["msisdn"].encode())
        await producer.flush()
    finally:
        await producer.stop()


def test_a_consumer_group_instance_sends_what_a_replay_of_its_partitions_sends_and_resumes_from_its_snapshot(tmp_path):
    reference(tmp_path)
    topic = f"kairos-test-{uuid.uuid4().hex[:8]}"
    (tmp_path / "in").mkdir()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.kairos").write_text(SCENARIOS)
    stream = recorded_stream(tmp_path / "in" / "events.jsonl", seed=5, events=3_000, subscribers=100)
    expected = sorted(map(_content, replayed(tmp_path)))
    anyio.run(_produce, topic, stream)
    src = (f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{BOOTSTRAP}"\ntopic = "{topic}"\n'
           f'group_id = "{topic}"\npartitions = {COUNT}\n')
    (tmp_path / "inst").mkdir()
    config = write_config(tmp_path / "inst", SCENARIOS, sources=src, reference="../ref", interval_s=0.5)
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path / "inst", "partitions assigned"), timeout=60, what="the assignment")
        # per-partition time: sends whose deadline lies past a partition's last event may not fire yet
        wait_for(lambda: len(sends(tmp_path / "inst")) >= len(expected) * 0.9, timeout=120, what="the sends")
    finally:
        assert 0 == stop(proc)
    got = sorted(map(_content, sends(tmp_path / "inst")))
    assert len(got) == len(set(got))
    assert set(got) <= set(expected)
