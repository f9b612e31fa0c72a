"""Records on a topic of the suite's broker: create a topic, produce records, read a topic back to its end.

"The end" is chosen by progress, not by waiting: ``read_all`` first appends a
marker record of its own to every partition, then reads each partition until
that marker, so everything acknowledged before the call is read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

MARKER = b"__end_of_test_read__"


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions (one replica)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]],
                  partition: int | None = None) -> None:
    """Produce ``(key, value)`` records in order (keyed ones by Kafka's default partitioner), acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        acks = [await producer.send(topic, value, key=key, partition=partition) for key, value in records]
        for ack in acks:  # one producer keeps each partition's records in the order sent
            await ack
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record on the topic now (markers left out), partition by partition in order."""
    mine = MARKER + uuid.uuid4().hex.encode()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, this topic's partition count with it
        partitions = len(consumer.partitions_for_topic(topic) or ())
    finally:
        await consumer.stop()
    assert partitions, f"topic {topic} does not exist"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for p in range(partitions):
            await (await producer.send(topic, b"", key=mine, partition=p))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: dict[int, list[ConsumerRecord]] = {p: [] for p in range(partitions)}
        open_ = set(range(partitions))
        while open_:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    if r.key == mine:
                        open_.discard(tp.partition)
                    elif tp.partition in open_ and not (r.key or b"").startswith(MARKER):
                        out[tp.partition].append(r)
        return [r for p in range(partitions) for r in out[p]]
    finally:
        await consumer.stop()
