"""Feedback from Kafka (``[feedback.kafka]``): channel responses on a topic re-enter as ``feedback`` events.

Each record's value is what ``POST /feedback`` takes: one JSON callback, or a
JSON list of them (``trigger_id`` and ``outcome`` required, the rest read from
the trigger id, the source's ``feedback.channel``, and the time it is read).
A record that is not one is counted, logged with its topic, partition and
offset, and skipped; the records after it are read as usual.

Where the positions live: in the units' snapshots, beside the state the
feedback changed. Every unit keeps, for each partition of the feedback topic,
the offset up to which that topic has been applied to it
(``feedback.kafka:TOPIC:PARTITION`` among its positions: a new ``topic`` in
``[feedback.kafka]`` starts from its start, never from the old topic's
offsets). Snapshots written before the topic was in the key hold
``feedback.kafka:PARTITION``, whose position names its topic: it is read as
this topic's only if it names it (and no key with the topic exists), and
replaced by the new key the first time the unit's position moves. A snapshot captures the
state and these positions at one instant, so a unit restored from any
snapshot — after SIGTERM, SIGKILL, or on another instance after a handover —
resumes the feedback exactly where its state ends: nothing lost, nothing
applied twice. No consumer group and no committed offset are used: a group
would split the topic by feedback partition, not by the subscribers an
instance owns, and a committed offset is not the state's. So every instance
reads every partition, applies the records of subscribers it owns, and
passes over the rest (counted as ``not_owned``); when a unit arrives with an
older position, the consumer seeks back and only that unit takes the records
it has not seen. Feedback is a small stream next to the events: reading all
of it in every instance is the price of exactness.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from kairos._config import KafkaFeedbackConfig
from kairos._units import Unit
from kairos.adapters import Feedback, FilePosition, parse_feedback

log = structlog.get_logger("kairos.feedback.kafka")

#: a unit's position key for partition P of feedback topic T is ``f"{POSITION}:{T}:{P}"`` (``position_key``);
#: snapshots of older versions have ``f"{POSITION}:{P}"``, the topic in its position's ``name``
POSITION = "feedback.kafka"


def position_key(topic: str, partition: int) -> str:
    """The key of a unit's position in partition ``partition`` of feedback topic ``topic``."""
    return f"{POSITION}:{topic}:{partition}"


def held_offset(unit: Unit, topic: str, partition: int) -> int:
    """The offset from which the unit still needs the partition's records; -1: from its start (no position).

    A position of an older snapshot (key without the topic) counts only if it names this topic."""
    held = unit.positions.get(position_key(topic, partition))
    if held is None:
        legacy = unit.positions.get(f"{POSITION}:{partition}")
        if legacy is not None and legacy.name == topic:
            held = legacy
    return -1 if held is None else held.offset

#: bad records are logged one by one up to this many, then every ``LOG_EVERY``-th
LOG_FIRST, LOG_EVERY = 20, 1000


class FeedbackOwner(Protocol):
    """What the feedback consumer uses of the daemon (``kairos._daemon.Daemon`` hands itself)."""

    @property
    def units(self) -> Mapping[str, Unit]: ...

    def unit_of(self, msisdn: str) -> str: ...  # the unit a subscriber's events belong to

    def taking(self, unit: str) -> bool: ...  # being given to this instance, not open yet (a rebalance under way)

    def feed(self, fb: Feedback, unit: str) -> None: ...  # one feedback event into that unit


class FeedbackCounts(msgspec.Struct):
    """What the feedback consumer did with the records it read (a record re-read for a unit that arrived
    with an older position is counted once)."""

    accepted: int = 0  #: callbacks applied to a unit of this instance
    malformed: int = 0  #: records that are not a callback or a list of them (skipped, logged)
    not_owned: int = 0  #: callbacks for subscribers of partitions another instance owns (passed over)


class KafkaFeedback:
    """Reads every partition of the feedback topic and hands each callback to its subscriber's unit."""

    def __init__(self, daemon: FeedbackOwner, config: KafkaFeedbackConfig, channel: str = "") -> None:
        self.d = daemon
        self.config = config
        self.channel = channel  #: the channel of callbacks that do not name one (``feedback.channel``)
        self.counts = FeedbackCounts()
        self.consumer: Any = None
        self._seen: dict[str, Unit] = {}  #: the units the consumer's positions were last chosen for
        self._next: dict[int, int] = {}  #: partition → the offset the consumer reads next (-1: its start)
        self._high: dict[int, int] = {}  #: partition → the end of the highest record read, to count each once

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Assign every partition of the topic and apply its records until cancelled."""
        cfg = self.config
        task_status.started()  # the daemon does not wait for the broker: feedback waits until it answers
        self.consumer = consumer = await self._connect()
        try:
            partitions = await self._partitions()
            consumer.assign([TopicPartition(cfg.topic, p) for p in partitions])
            log.info("feedback consumer reading", topic=cfg.topic, partitions=len(partitions))
            while True:
                if not self.d.units:  # nothing to apply feedback to yet (a consumer group still assigning)
                    self._seen = {}
                    await anyio.sleep(0.2)
                    continue
                try:
                    await self._follow_units()
                    batches = await consumer.getmany(timeout_ms=200, max_records=cfg.max_records)
                except KafkaError as e:  # the broker or the topic is away: feedback waits, the daemon goes on
                    log.warning("feedback topic not readable now; trying again in a second", topic=cfg.topic,
                                error=repr(e))
                    self._seen = {}  # the positions are chosen again once it reads
                    await anyio.sleep(1.0)
                    continue
                for tp, records in batches.items():
                    if records:
                        self._apply(tp.partition, records)
                await anyio.lowlevel.checkpoint()
        finally:
            with anyio.CancelScope(shield=True):
                await consumer.stop()

    async def _connect(self) -> Any:
        """A started consumer; while the broker cannot be reached, said once in the log and tried every second."""
        cfg = self.config
        said = False
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, client_id=cfg.client_id,
                                        enable_auto_commit=False, auto_offset_reset="earliest")
            try:
                await consumer.start()
                return consumer
            except KafkaError as e:
                with anyio.CancelScope(shield=True):
                    await consumer.stop()
                if not said:
                    log.warning("the feedback topic's broker cannot be reached; trying again every second",
                                topic=cfg.topic, error=repr(e))
                    said = True
            await anyio.sleep(1.0)

    async def _partitions(self) -> list[int]:
        """The topic's partitions, once it exists (said once in the log while it does not)."""
        said = False
        while True:
            await self.consumer.topics()  # refreshes the cluster metadata
            found = self.consumer.partitions_for_topic(self.config.topic)
            if found:
                return sorted(found)
            if not said:
                log.warning("the feedback topic does not exist yet; waiting for it", topic=self.config.topic)
                said = True
            await anyio.sleep(1.0)

    async def _follow_units(self) -> None:
        """When a unit arrives (a start, an assignment), read each partition again from the earliest position
        a unit holds; a unit without one reads the partition from its start.

        Only ever back: the units already followed still need everything from where the consumer stands, so
        the consumer never moves past it (from a partition's start, say, to a later unit's position)."""
        units = self.d.units
        if len(units) == len(self._seen) and all(self._seen.get(n) is u for n, u in units.items()):
            return
        arrived = [u for n, u in units.items() if self._seen.get(n) is not u]
        self._seen = dict(units)
        if not arrived:  # units only left: what the others hold is unchanged
            return
        topic = self.config.topic
        for tp in self.consumer.assignment():
            now = self._next.get(tp.partition)
            if now == -1:
                continue  # it reads the partition from its start: every unit's records are still ahead
            # not followed yet (the first time): every unit decides, none has been fed from this partition
            deciding = arrived if now is not None else units.values()
            wanted = min(held_offset(u, topic, tp.partition) for u in deciding)
            if now is not None and wanted != -1 and wanted >= now:
                continue  # the consumer has not read past what the arriving units hold
            if wanted == -1:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, wanted)
            self._next[tp.partition] = wanted
        log.info("feedback positions taken from the units", topic=topic, units=sorted(u.name for u in arrived))

    def _apply(self, partition: int, records: list[Any]) -> None:
        """A batch of one partition: each callback to its unit unless that unit's position is past it; then
        every unit's position moves past the batch (synchronously, so a snapshot sees both or neither).

        Only the units the consumer's position was chosen for take part: a unit that arrived while the batch
        was fetched may need records before it, so it waits for ``_follow_units`` to seek for it."""
        d, counts, topic = self.d, self.counts, self.config.topic
        seen = self._seen
        units = {n: u for n, u in d.units.items() if seen.get(n) is u}
        held = {n: held_offset(u, topic, partition) for n, u in units.items()}
        arriving = len(units) != len(d.units)
        high = self._high.get(partition, 0)
        for r in records:
            first_time = r.offset >= high
            try:
                events = self._callbacks(r.value)
            except (ValueError, msgspec.DecodeError, RecursionError) as e:
                if first_time:
                    counts.malformed += 1
                    n = counts.malformed
                    if n <= LOG_FIRST or n % LOG_EVERY == 0:
                        log.warning("feedback record skipped: not a callback", topic=self.config.topic,
                                    partition=partition, offset=r.offset, error=str(e), malformed=n)
                continue
            for fb in events:
                name = d.unit_of(fb.msisdn)
                unit = units.get(name)
                if unit is None:
                    # an arriving unit, or one being opened now, reads it after the seek that follows it
                    if not (arriving and name in d.units) and not d.taking(name):
                        counts.not_owned += first_time
                    continue
                if r.offset < held[name]:
                    continue  # already in this unit's state
                d.feed(fb, unit.name)
                counts.accepted += 1
        end = records[-1].offset + 1
        self._next[partition] = end
        self._high[partition] = max(high, end)
        position = FilePosition(topic, partition, 0, end)
        key, legacy = position_key(topic, partition), f"{POSITION}:{partition}"
        for name, unit in units.items():
            if held[name] < end:
                unit.positions[key] = position
                old = unit.positions.get(legacy)
                if old is not None and old.name == topic:  # an older snapshot's key: replaced by the new one
                    del unit.positions[legacy]

    def _callbacks(self, value: bytes | None) -> list[Feedback]:
        """A record's callbacks; ``ValueError`` (or a decode error) says what is wrong with it."""
        if not value:
            raise ValueError("empty record")
        data = msgspec.json.decode(value)
        items = data if isinstance(data, list) else [data]
        return [parse_feedback(item, channel=self.channel) for item in items]

    def lag(self) -> dict[int, int]:
        """Partition → records on the topic not read yet (the broker's high-water mark minus the next offset)."""
        out = {}
        if self.consumer is None:
            return out
        for tp in self.consumer.assignment():
            hw, at = self.consumer.highwater(tp), self._next.get(tp.partition)
            if hw is not None and at is not None and at >= 0:
                out[tp.partition] = max(hw - at, 0)
        return out
