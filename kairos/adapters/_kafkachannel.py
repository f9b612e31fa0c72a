"""The kafka channel: each send becomes one record on a topic, keyed by msisdn, its value the send's JSON.

The value is the JSON object the file channel writes as a line
(``send_json``); the key is the subscriber's number, so Kafka's default
partitioner keeps one subscriber's sends in one partition, in order. The
producer is aiokafka's with ``acks="all"`` and, by default, the idempotent
producer (the broker drops the producer's own retries of a batch).

A send is answered "delivered" only once the broker has acknowledged the
record. Anything short of that is a temporary failure the outbox retries,
and a retry never produces the record a second time while this process
holds it: a record handed to the producer whose acknowledgement has not come
within ``ack_timeout_s`` stays in the producer's hands, and the retry of the
same trigger id waits for that record's acknowledgement instead of producing
another. A broker that is down at start is not an error: a send finding no
producer starts connecting in the background and answers "retry" at once
(nothing was produced), as does every send while that connection is being
made, so no send waits on a slow broker past the outbox's ``timeout_s`` (past
it, the outbox would take the send for one whose outcome is unknown and
dead-letter it). A record answered "retry"
after it was handed over stays *in doubt* in the outbox's ledger
(``Outcome.retry(in_doubt=True)``), so if the process stops, crashes or hands the partition on before the answer, the
next run dead-letters it ("outcome unknown") instead of producing it again.
A record the producer gave up on after handing it over is dead-lettered
too: it may have been written before the error.

Not ``idempotent`` in the ``Channel`` sense: a topic keeps every record it is
given, repeated ids included. So a send whose outcome a crash left unknown
(handed to the producer, no acknowledgement seen) is dead-lettered by the
outbox with "outcome unknown", never produced again — at most once per
trigger id from Kairos's side. Consumers should still de-duplicate by the
value's ``id`` (the trigger id): a dead letter replayed by an operator, or,
with ``idempotence = false``, a batch the producer re-sent after a lost
answer, can put a second record with the same id on the topic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.abc
import msgspec
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from kairos.adapters._channel import Channel, Outcome, SendContext
from kairos.adapters._filechannel import send_json

__all__ = ["KafkaChannel", "KafkaChannelConfig"]

log = structlog.get_logger("kairos.channels.kafka")

#: the broker refused the record itself: producing it again cannot succeed
_PERMANENT = (InvalidTopicError, MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


class KafkaChannelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which brokers and topic, and how long one send waits for the broker."""

    bootstrap_servers: str  #: HOST:PORT[,HOST:PORT…] of the brokers
    topic: str  #: where the sends go (created beforehand, or by the broker's auto-creation)
    client_id: str = "kairos-channel"
    linger_ms: int = 5  #: how long the producer gathers records into one batch
    #: the idempotent producer (``enable_idempotence``): the broker drops the producer's own re-sent batches.
    #: Needs a broker that grants producer ids to aiokafka (Apache Kafka does; Tansu 0.6.0's memory store
    #: does not, so the test suite turns it off)
    idempotence: bool = True
    #: how long one send waits for the acknowledgement before answering "retry" (the record stays with the
    #: producer and the retry waits for it); with ``request_timeout_ms``, keep it below the outbox's timeout_s
    ack_timeout_s: float = 10.0
    request_timeout_ms: int = 10_000  #: the producer's bound on one request, and on waiting for the topic's metadata

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("`bootstrap_servers` is empty: write the brokers as HOST:PORT[,HOST:PORT…]")
        if not self.topic.strip():
            raise ValueError("`topic` is empty: name the topic the sends are written to")
        if self.ack_timeout_s <= 0 or self.request_timeout_ms <= 0 or self.linger_ms < 0:
            raise ValueError("`ack_timeout_s` and `request_timeout_ms` must be positive and `linger_ms` 0 or more")


class KafkaChannel(Channel):
    """Produces ``send_json(ctx)`` keyed by msisdn to ``topic``; delivered once the broker acknowledged it."""

    Config = KafkaChannelConfig
    idempotent = False  # a topic keeps repeated ids: consumers de-duplicate by the value's ``id``
    config: KafkaChannelConfig

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Connect the producer if the broker answers; if not, the first send starts connecting in the
        background (and every send answers "retry" until it is connected)."""
        self._producer: Any = None
        self._connecting = anyio.Lock()
        self._tg = task_group
        self._closed = False
        self._reconnecting = False  #: a background connection is started or under way
        self._connect_scope: anyio.CancelScope | None = None
        #: trigger id → the acknowledgement of its record, while the producer holds it unacknowledged
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._down = ""
        self.produced = 0  #: records handed to the producer (one per trigger id while this process runs)
        if await self._connect() is None:
            log.warning("kafka channel: broker not reachable at start; sends are retried until it is",
                        channel=self.name, topic=self.config.topic, error=self._down)

    async def _connect(self) -> Any:
        """The started producer, or None (the reason in ``_down``) if the broker cannot be reached now (or the
        channel was closed meanwhile)."""
        if self._producer is not None:
            return self._producer
        async with self._connecting:
            if self._producer is not None or self._closed:
                return self._producer
            c = self.config
            producer = AIOKafkaProducer(
                bootstrap_servers=c.bootstrap_servers, client_id=c.client_id, acks="all",
                enable_idempotence=c.idempotence, linger_ms=c.linger_ms, request_timeout_ms=c.request_timeout_ms,
            )
            started = False
            try:
                with anyio.CancelScope() as self._connect_scope:  # ``close`` cancels a connection under way
                    await producer.start()
                    started = not self._closed
            except KafkaError as e:
                self._down = repr(e)
            finally:
                self._connect_scope = None
                if not started:
                    with anyio.CancelScope(shield=True):
                        await producer.stop()
            if not started:
                return None
            self._producer = producer
            if self._down:
                log.info("kafka channel: connected to the broker", channel=self.name, topic=c.topic)
            self._down = ""
            return producer

    async def _connect_in_background(self) -> None:
        """``_connect`` in the channel's task group, started by a send that found no producer: whatever goes
        wrong is the next sends' "retry", never the outbox's end."""
        try:
            await self._connect()
        except Exception as e:  # not a KafkaError (those are in ``_down`` already): said, and tried again later
            self._down = repr(e)
            log.warning("kafka channel: connecting to the broker failed", channel=self.name, error=repr(e))
        finally:
            self._reconnecting = False

    async def send(self, ctx: SendContext) -> Outcome:
        """Produce the record (or, on a retry, wait for the one already produced) and wait for its ack."""
        producer = self._producer
        if producer is None:
            # never waits for the connection: a slow broker would keep the send past the outbox's timeout_s,
            # and a send timed out there counts as one whose outcome is unknown (dead-lettered)
            if not self._reconnecting and not self._connecting.locked():
                self._reconnecting = True
                self._tg.start_soon(self._connect_in_background)
            down = f" (last attempt: {self._down})" if self._down else ""
            return Outcome.retry(f"not produced: connecting to the broker{down}")
        ack = self._pending.get(ctx.id)
        if ack is None:
            try:
                ack = await producer.send(self.config.topic, send_json(ctx), key=ctx.msisdn.encode())
            except KafkaError as e:  # raised before the record was handed over: nothing was produced
                return Outcome.retry(f"not produced: {e!r}")
            self._pending[ctx.id] = ack
            self.produced += 1
        try:
            with anyio.fail_after(self.config.ack_timeout_s):
                meta = await asyncio.shield(ack)
        except TimeoutError:
            # in doubt: the ledger keeps the attempt open, so a crash or a handover before the answer
            # dead-letters the send rather than producing it again
            return Outcome.retry(f"not acknowledged within {self.config.ack_timeout_s:g}s; the producer keeps the "
                                 "record and the retry waits for it", in_doubt=True)
        except KafkaError as e:  # the producer gave the record up after handing it over
            self._pending.pop(ctx.id, None)
            if isinstance(e, _PERMANENT):
                return Outcome.failed(f"the broker refused the record: {e!r}")
            # it may have been written before the error (a lost answer): producing it again could repeat it
            return Outcome.failed(f"outcome unknown, not produced again (the topic keeps repeats): {e!r}")
        self._pending.pop(ctx.id, None)
        return Outcome.delivered(f"partition {meta.partition} offset {meta.offset}")

    async def close(self) -> None:
        """Flush what the producer holds (bounded by the outbox's close_timeout_s) and disconnect.

        A record still held here was last answered "retry" in doubt (not acknowledged in time): whatever the
        flush makes of it, the next start finds its attempt open and dead-letters it, never producing it again."""
        self._closed = True
        connecting: anyio.CancelScope | None = getattr(self, "_connect_scope", None)
        if connecting is not None:
            connecting.cancel()
        producer = getattr(self, "_producer", None)
        if producer is None:
            return
        self._producer = None
        try:
            await producer.stop()
        finally:
            late = 0
            for ack in self._pending.values():
                if ack.done() and not ack.cancelled() and ack.exception() is None:
                    late += 1
            if late:
                log.warning("kafka channel: records acknowledged while closing after their send was answered "
                            "'retry' in doubt; the next start dead-letters them as 'outcome unknown' (they did arrive)",
                            channel=self.name, topic=self.config.topic, records=late)
            self._pending.clear()
