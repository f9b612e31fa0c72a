"""The kafka channel against a real broker (the suite's Tansu): one record per send, keyed by msisdn, the send
JSON as value; a broker that is not up yet means retries, and every send arrives once it is."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from bench.broker import start_broker, stop_broker
from kairos.adapters import (
    ChannelConfigError,
    ChannelLimits,
    KafkaChannel,
    Outbox,
    OutboxConfig,
    SendContext,
    create_channel,
)
from kairos.adapters._filechannel import send_json
from tests.channels.conftest import free_port
from tests.conftest import unique_topic
from tests.kafka_records import create_topic, read_all

pytestmark = pytest.mark.anyio

PARTITIONS = 3


def ctx(n: int) -> SendContext:
    msisdn = f"1380000{n % 7:04d}"
    return SendContext(id=f"s:{msisdn}:{1_000 + n}", scenario="s", msisdn=msisdn, ts=1_000 + n, send_at=1_000 + n,
                       channel="kafka", template="t", params={"n": n}, text=f"hello {n}")


def channel(bootstrap: str, topic: str) -> KafkaChannel:
    # Tansu 0.6.0's memory store grants no producer id to aiokafka: the idempotent producer is off here
    return KafkaChannel.from_config({"bootstrap_servers": bootstrap, "topic": topic, "idempotence": False,
                                     "ack_timeout_s": 2}, name="kafka")


async def deliver(tmp_path: Path, chan: KafkaChannel, sends: list[SendContext], *, before_idle=None) -> Outbox:
    outbox = Outbox(OutboxConfig(directory=str(tmp_path / "outbox"), backoff_base_ms=50, backoff_max_ms=500,
                                 max_attempts=1_000), {"kafka": chan})
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        with anyio.fail_after(120):
            for s in sends:
                outbox.submit(s)
            if before_idle is not None:
                await before_idle(outbox)
            await outbox.wait_idle()
        outbox.stop()
    return outbox


async def test_each_send_is_one_record_keyed_by_msisdn_whose_value_is_the_send_json(tmp_path: Path, kafka: str) -> None:
    topic = unique_topic()
    await create_topic(kafka, topic, PARTITIONS)
    sends = [ctx(n) for n in range(40)]
    outbox = await deliver(tmp_path, channel(kafka, topic), sends)
    assert 40 == outbox.statistics().delivered
    records = await read_all(kafka, topic)
    assert sorted((s.msisdn.encode(), send_json(s)) for s in sends) == sorted((r.key, r.value) for r in records)
    # keyed by msisdn: one subscriber's sends share a partition, in the order they were sent
    by = {}
    for r in records:
        by.setdefault(r.key, set()).add(r.partition)
    assert all(len(parts) == 1 for parts in by.values())
    assert json.loads(records[0].value).keys() == {"id", "scenario", "msisdn", "ts", "send_at", "channel",
                                                   "template", "params", "text"}


async def test_sends_made_while_the_broker_is_down_are_retried_and_arrive_once_when_it_is_up(tmp_path: Path) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = unique_topic()
    sends = [ctx(n) for n in range(20)]
    brokers = []

    async def bring_the_broker_up_after_a_failed_attempt(outbox: Outbox) -> None:
        await outbox.wait_for(lambda st: st.retried >= 1)  # the outbox saw the broker down and will retry
        assert 0 == outbox.statistics().delivered
        # the topic is the broker's to create (Tansu creates it on first use, as Kafka's auto-creation does)
        brokers.append(await anyio.to_thread.run_sync(lambda: start_broker(tmp_path / "broker", port=port)))

    try:
        outbox = await deliver(tmp_path, channel(bootstrap, topic), sends,
                               before_idle=bring_the_broker_up_after_a_failed_attempt)
        stats = outbox.statistics()
        assert (20, 0) == (stats.delivered, stats.dead_lettered)
        records = await read_all(bootstrap, topic)
    finally:
        for b in brokers:
            stop_broker(b)
    ids = [json.loads(r.value)["id"] for r in records]
    assert sorted(s.id for s in sends) == sorted(ids)  # every send, each once


def test_it_is_registered_as_kafka_and_does_not_claim_that_the_topic_drops_repeated_ids() -> None:
    chan = create_channel("kafka", {"bootstrap_servers": "127.0.0.1:9092", "topic": "sends"})
    assert isinstance(chan, KafkaChannel)
    assert (chan.config.idempotence, KafkaChannel.idempotent) == (True, False)


@pytest.mark.parametrize(("section", "says"), [
    ({"bootstrap_servers": "", "topic": "t"}, "`bootstrap_servers` is empty: write the brokers as HOST:PORT"),
    ({"bootstrap_servers": "h:1", "topic": " "}, "`topic` is empty: name the topic the sends are written to"),
    ({"bootstrap_servers": "h:1", "topic": "t", "ack_timeout_s": 0}, "`ack_timeout_s` and `request_timeout_ms` "
                                                                      "must be positive"),
    ({"bootstrap_servers": "h:1", "topic": "t", "lingr_ms": 1}, "unknown field `lingr_ms`"),
    ({"topic": "t"}, "missing required field `bootstrap_servers`"),
])
def test_a_configuration_mistake_is_refused_with_what_to_write(section: dict, says: str) -> None:
    with pytest.raises(ChannelConfigError) as err:
        KafkaChannel.from_config(section, name="decisions")
    assert str(err.value).startswith("channel decisions: ") and says in str(err.value)




async def test_a_send_not_acknowledged_in_time_is_retried_without_producing_its_record_a_second_time(
        tmp_path: Path) -> None:
    """The broker stops answering (SIGSTOP) after the producer connected: the record waits in the producer and
    the send answers retry, twice; once the broker answers again (SIGCONT) the record is acknowledged — once."""
    broker = await anyio.to_thread.run_sync(lambda: start_broker(tmp_path / "broker"))
    topic = unique_topic()
    chan = KafkaChannel.from_config({"bootstrap_servers": broker.bootstrap, "topic": topic, "idempotence": False,
                                     "ack_timeout_s": 0.5}, name="kafka")
    first, late = ctx(1), ctx(2)

    async def stall(outbox: Outbox) -> None:
        await outbox.wait_for(lambda st: st.delivered == 1)  # connected, the topic's metadata known
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            outbox.submit(late)
            await outbox.wait_for(lambda st: st.retried >= 2)  # not acknowledged in time, twice
        finally:
            os.kill(broker.pid, signal.SIGCONT)

    try:
        outbox = await deliver(tmp_path, chan, [first], before_idle=stall)
        stats = outbox.statistics()
        records = await read_all(broker.bootstrap, topic)
    finally:
        stop_broker(broker)
    assert (2, 0) == (stats.delivered, stats.dead_lettered)
    assert 2 == chan.produced  # one record per trigger id, however many attempts
    assert sorted([first.id, late.id]) == sorted(json.loads(r.value)["id"] for r in records)


async def test_sends_made_while_the_producer_connects_to_a_slow_broker_are_retried_not_dead_lettered(
        tmp_path: Path) -> None:
    """The broker takes connections but does not answer (SIGSTOP) when the sends come: connecting takes the
    producer's whole request_timeout_ms. No send may wait for it past the outbox's timeout_s (the outbox
    would count it as an attempt of unknown outcome and dead-letter it, though nothing was produced): each
    answers retry, and every send arrives, once, when the broker answers again (SIGCONT)."""
    broker = await anyio.to_thread.run_sync(lambda: start_broker(tmp_path / "broker"))
    topic = unique_topic()
    # within the documented bound (request_timeout_ms below timeout_s), but two connections in a row are not
    chan = KafkaChannel.from_config({"bootstrap_servers": broker.bootstrap, "topic": topic, "idempotence": False,
                                     "request_timeout_ms": 2_000}, name="kafka")
    outbox = Outbox(OutboxConfig(directory=str(tmp_path / "outbox"), backoff_base_ms=50, backoff_max_ms=200,
                                 max_attempts=1_000, channels={"kafka": ChannelLimits(timeout_s=3)}),
                    {"kafka": chan})
    sends = [ctx(n) for n in range(4)]
    os.kill(broker.pid, signal.SIGSTOP)  # before the channel starts: its first connection fails (2 s)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(outbox.run)
            with anyio.fail_after(120):
                for s in sends:
                    outbox.submit(s)
                # each send tried while the producer was connecting (or the outbox gave one up)
                await outbox.wait_for(lambda st: st.retried >= 2 * len(sends) or st.dead_lettered > 0)
                os.kill(broker.pid, signal.SIGCONT)
                await outbox.wait_idle()
            outbox.stop()
        stats = outbox.statistics()
        records = await read_all(broker.bootstrap, topic)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
        stop_broker(broker)
    assert (4, 0) == (stats.delivered, stats.dead_lettered)
    assert sorted(s.id for s in sends) == sorted(json.loads(r.value)["id"] for r in records)
