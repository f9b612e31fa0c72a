"""The Kafka source against a real broker: the suite's Tansu (``tests/conftest.py``), started for the session.

The same ownership, offset and hand-over logic is also tested through the
embedded partitioned log (test_partitions.py).
"""

from __future__ import annotations

import json

import anyio

from tests.conftest import unique_topic
from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_crash import SCENARIOS, _content, recorded_stream, reference, replayed, sentinels

COUNT = 4


async def _produce(bootstrap: str, topic: str, lines: list[str]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=COUNT, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for line in lines:
            await producer.send(topic, line.strip().encode(), key=json.loads(line)["msisdn"].encode())
        await producer.flush()
    finally:
        await producer.stop()


def test_a_consumer_group_instance_sends_what_a_replay_of_its_partitions_sends(tmp_path, kafka):
    reference(tmp_path)
    topic = unique_topic()
    (tmp_path / "in").mkdir()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "s.kairos").write_text(SCENARIOS)
    events = tmp_path / "in" / "events.jsonl"
    stream = recorded_stream(events, seed=5, events=3_000, subscribers=100)
    # one end sentinel per partition: each partition keeps its own event time, so each needs its own
    stream = stream[:-1] + sentinels(json.loads(stream[-1])["ts"], COUNT)
    events.write_text("".join(stream))
    expected = sorted(map(_content, replayed(tmp_path)))
    anyio.run(_produce, kafka, topic, stream)
    src = (f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{kafka}"\ntopic = "{topic}"\n'
           f'group_id = "{topic}"\npartitions = {COUNT}\n')
    (tmp_path / "inst").mkdir()
    config = write_config(tmp_path / "inst", SCENARIOS, sources=src, reference="../ref", interval_s=0.5)
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path / "inst", "partitions assigned"), timeout=60, what="the assignment")
        wait_for(lambda: len(sends(tmp_path / "inst")) >= len(expected), timeout=120, what="the sends")
    finally:
        assert 0 == stop(proc)
    got = sorted(map(_content, sends(tmp_path / "inst")))
    assert got == expected
