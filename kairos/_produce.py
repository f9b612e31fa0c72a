"""``kairos produce``: put a file of events on a Kafka topic, keyed by msisdn, as operators' producers do.

A newcomer trying the Kafka source needs traffic on a topic; this writes each
JSON line of a file (or standard input) as one record whose key is the line's
``msisdn`` and whose value is the line. Kafka's default partitioner (murmur2
of the key) then puts a subscriber's events in one partition — what every
operator's producer keyed by msisdn does, and what the daemon's units and
``kairos split`` assume (``kairos.adapters.partition_of``). The topic is
created with ``--partitions N`` if it is missing (topics are listed first:
some brokers, Tansu among them, create a topic with their default count on a
metadata request for it). A line that is not a JSON object with a string
``msisdn`` is refused with its line number and counted; the rest are produced.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from typing import IO, Any

import anyio
import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

__all__ = ["ProduceError", "ProduceReport", "produce"]

#: records sent before waiting for their acknowledgements (bounds memory, keeps the producer's batches full)
_WINDOW = 20_000


class ProduceError(Exception):
    """The topic cannot be used as asked (missing without ``--partitions``, or another partition count)."""


class ProduceReport(msgspec.Struct):
    """What one ``kairos produce`` did."""

    topic: str
    partitions: int  #: the topic's partition count
    created: bool  #: the topic was missing and was created
    produced: int  #: records acknowledged by the broker
    per_partition: dict[int, int]  #: records by partition
    malformed: list[int]  #: line numbers (1-based) refused: not a JSON object with a string msisdn
    blank: int = 0  #: empty lines, skipped


class _Keyed(msgspec.Struct):
    msisdn: str


async def _ensure_topic(bootstrap: str, topic: str, partitions: int | None) -> tuple[int, bool]:
    """The topic's partition count, creating it first if it is missing; returns (count, created)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="kairos-produce")
    await admin.start()
    try:
        if topic not in await admin.list_topics():  # listing creates nothing; describing a missing topic may
            if partitions is None:
                raise ProduceError(f"topic {topic!r} does not exist: give --partitions N to create it")
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
            return partitions, True
        described = await admin.describe_topics([topic])
        count = len(described[0]["partitions"])
    finally:
        await admin.close()
    if partitions is not None and partitions != count:
        raise ProduceError(f"topic {topic!r} has {count} partition{'s' * (count != 1)}, not {partitions}: a topic "
                           "keyed by msisdn keeps its count (its subscribers would move); drop --partitions or use "
                           "another topic")
    return count, False


async def produce(lines: Iterable[bytes], *, bootstrap: str, topic: str, partitions: int | None = None,
                  on_malformed: IO[str] | None = None) -> ProduceReport:
    """Produce each JSON line of ``lines`` to ``topic`` keyed by its msisdn; create the topic if missing.

    A malformed line is reported on ``on_malformed`` (``LINE: reason``, never its content: it may hold a
    subscriber's number), counted and skipped. Returns once every record is acknowledged (``acks=all``)."""
    count, created = await _ensure_topic(bootstrap, topic, partitions)
    decode = msgspec.json.Decoder(_Keyed).decode
    report = ProduceReport(topic=topic, partitions=count, created=created, produced=0,
                           per_partition={p: 0 for p in range(count)}, malformed=[])
    # not idempotent: Tansu 0.6 answers InitProducerId with an error; a rerun after a failure may repeat records,
    # which the daemon's duplicate screening and ledger absorb
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="kairos-produce", acks="all", linger_ms=5)
    await producer.start()
    try:
        waiting: list[asyncio.Future[Any]] = []

        async def settle() -> None:
            for fut in waiting:
                meta = await fut
                report.per_partition[meta.partition] += 1
                report.produced += 1
            waiting.clear()

        for number, raw in enumerate(lines, 1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                report.blank += 1
                continue
            try:
                msisdn = decode(line).msisdn
            except msgspec.ValidationError as e:
                _refuse(report, number, f"{e}", on_malformed)
                continue
            except msgspec.DecodeError:
                _refuse(report, number, "not a JSON object", on_malformed)
                continue
            waiting.append(await producer.send(topic, line, key=msisdn.encode()))
            if len(waiting) >= _WINDOW:
                await settle()
        await settle()
    finally:
        with anyio.CancelScope(shield=True):
            await producer.stop()
    return report


def _refuse(report: ProduceReport, number: int, reason: str, out: IO[str] | None) -> None:
    report.malformed.append(number)
    if out is not None:
        print(f"line {number}: {reason}; not produced", file=out)


def run_produce(path: str, *, bootstrap: str, topic: str, partitions: int | None) -> ProduceReport:
    """``kairos produce``: read ``path`` (``-`` for standard input) and produce it; malformed lines go to
    standard error. Raises ``OSError`` (the file), ``ProduceError`` or a Kafka error."""

    async def go() -> ProduceReport:
        if path == "-":
            return await produce(sys.stdin.buffer, bootstrap=bootstrap, topic=topic, partitions=partitions,
                                 on_malformed=sys.stderr)
        with open(path, "rb") as f:
            return await produce(f, bootstrap=bootstrap, topic=topic, partitions=partitions,
                                 on_malformed=sys.stderr)

    return anyio.run(go)
