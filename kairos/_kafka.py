"""The Kafka source: a consumer group in which the partitions assigned to this instance are the state it owns.

Events are keyed by msisdn, so a partition holds a fixed set of subscribers.
On assignment the partition's unit is opened from its snapshot file (in the
shared ``snapshot.partitions_dir``) and the consumer seeks to the offset that
snapshot holds — or to the partition's start if the state holds none (the
committed offset is never used: it may not be the state's); on revocation the
unit is snapshotted, its offset committed and its state dropped. Offsets are
committed only from published snapshots (``Daemon.after_snapshot``), exactly
the positions each snapshot captured with the state, so a committed offset
never runs ahead of the state it produced. At shutdown the pump stops feeding,
the daemon's final snapshot is committed, and only then the consumer leaves. The same unit/offset logic runs behind the embedded
partitioned log, where it is tested without a broker.

A partition whose state cannot be taken at assignment (its outbox store still
locked by another owner, or its snapshot unreadable) is paused — its records
are not fetched, they wait on the topic — and its adoption is retried in the
background until it succeeds (then it is sought and resumed) or the partition
is revoked. Assigned partitions are adopted, and revoked ones released,
concurrently: each may wait (for a lock, for attempts in flight), and one
partition's failure does not hold up or stop the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from kairos._config import KafkaSourceConfig, PartitionBusy, StartError
from kairos._snapfiles import SnapshotFailed
from kairos._units import Unit, unit_name
from kairos.adapters import FilePosition

log = structlog.get_logger("kairos.kafka")

SOURCE = "kafka"  #: the source name of a unit's Kafka position: ``FilePosition(topic, partition, 0, next offset)``

RETRY_FIRST_S = 1.0  #: a paused partition's first retry after this long (each retry also waits adopt_wait_s for a lock)
RETRY_MAX_S = 15.0  #: the delay between retries doubles up to this


#: a hook given {unit: {source: position}} once a snapshot of those units is published
AfterSnapshot = Callable[[dict[str, dict[str, FilePosition]]], Awaitable[None]]


class Owner(Protocol):
    """What the consumer uses of the daemon: the units it owns, ingest and snapshots
    (``kairos._daemon.Daemon`` hands itself)."""

    @property
    def units(self) -> Mapping[str, Unit]: ...

    @property
    def after_snapshot(self) -> list[AfterSnapshot]: ...

    def ingest(self, source: str, data: bytes, position: FilePosition | None, unit: str = ..., *,
               record_offsets: list[int] | None = None) -> int: ...

    async def snapshot(self, reason: str, *, fork: bool | None = None, units: list[str] | None = None) -> None: ...

    async def adopt_unit(self, name: str, *, quiet: bool = ...) -> object:
        ...  # ``PartitionBusy`` if its outbox store stays locked, ``StartError`` if its snapshot cannot be loaded

    async def close_unit(self, name: str) -> None: ...  # releases its outbox store for the next owner


class KafkaPump:
    """Consumes the topic in the group and feeds each record batch to its partition's unit."""

    def __init__(self, daemon: Owner, config: KafkaSourceConfig) -> None:
        self.d = daemon
        self.config = config
        self.consumer: Any = None
        self._paused = False
        self.fed: dict[int, int] = {}  #: partition → the offset after the last record fed (or sought to)
        self.owned: set[int] = set()  #: the partitions assigned now
        self.assignments = 0  #: partition assignments received (each rebalance is a revocation and an assignment)
        self.revocations = 0  #: partition revocations received
        self._last: set[int] = set()  #: the previous assignment, to log what a rebalance gained and lost
        #: partition → its retry: assigned, its state not taken yet, so paused (``kairos_kafka_partitions_waiting``)
        self.waiting: dict[int, _Retry] = {}
        self._retries: anyio.abc.TaskGroup | None = None  #: where the retries run, while ``run`` does

    async def pause(self) -> None:
        """Feed no more records and take no more paused partitions (at shutdown: the final snapshot then holds
        the last offsets read, and is committed while the consumer is still in the group; no unit arrives
        after the daemon has chosen which stores to release)."""
        self._paused = True
        await self.stop_waiting([r.tp for r in self.waiting.values()])

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        self.consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers, group_id=cfg.group_id, client_id=cfg.client_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async with anyio.create_task_group() as self._retries:
                await self._consume(consumer, task_status)
        finally:
            self._retries = None  # its retries are over (cancelled with it)
            with anyio.CancelScope(shield=True):
                await consumer.stop()

    async def _consume(self, consumer: Any, task_status: anyio.abc.TaskStatus[None]) -> None:
        cfg = self.config
        found = consumer.partitions_for_topic(cfg.topic) or set()
        if found and len(found) != cfg.partitions:
            raise RuntimeError(f"sources[0].partitions is {cfg.partitions} but topic {cfg.topic!r} has "
                               f"{len(found)}: set it to {len(found)}")
        consumer.subscribe([cfg.topic], listener=_Rebalance(self))
        self.d.after_snapshot.append(self.commit)
        log.info("kafka consumer started", topic=cfg.topic, group=cfg.group_id)
        task_status.started()
        while not self._paused:
            batches = await consumer.getmany(timeout_ms=200, max_records=cfg.max_records)
            if self._paused:
                break  # read but not fed: not in the final snapshot, so read again by the next owner
            for tp, records in batches.items():
                name = unit_name(tp.partition)
                if not records or name not in self.d.units:
                    continue  # (a paused partition is not fetched: nothing of it arrives here)
                # a record is one line: a \n inside one (pretty-printed JSON) becomes \r, which
                # JSON reads alike (whitespace between tokens, invalid inside a string); a record
                # without a value (a tombstone) is a blank line, skipped
                data = b"\n".join((r.value or b"").replace(b"\n", b"\r") for r in records) + b"\n"
                position = FilePosition(tp.topic, tp.partition, 0, records[-1].offset + 1)
                self.d.ingest(SOURCE, data, position, name, record_offsets=[r.offset for r in records])
                self.fed[tp.partition] = position.offset
                await anyio.lowlevel.checkpoint()
        await anyio.sleep_forever()  # paused: stay in the group until the daemon has committed and cancels

    # --- partitions whose state cannot be taken yet -------------------------------------------------------

    async def take(self, tp: Any, *, quiet: bool = False) -> None:
        """Own an assigned partition: adopt its unit (unless owned already) and seek to the unit's position,
        or to the partition's start if its state holds none (never to a committed offset that this state did
        not produce; the ledger drops the sends already made)."""
        name = unit_name(tp.partition)
        if name not in self.d.units:
            await self.d.adopt_unit(name, quiet=quiet)
        position = self.d.units[name].positions.get(SOURCE)
        if position is not None:
            self.consumer.seek(tp, position.offset)
            self.fed[tp.partition] = position.offset
        else:
            await self.consumer.seek_to_beginning(tp)

    def wait_for(self, tp: Any, error: Exception) -> None:
        """An assigned partition whose state cannot be taken now: pause it (its records are not fetched) and
        retry in the background until it is taken or revoked."""
        self.consumer.pause(tp)
        retry = self.waiting[tp.partition] = _Retry(tp, _kind(error))
        log.error("partition paused: its state cannot be taken yet; its records wait on the topic and it is "
                  "retried until taken", unit=unit_name(tp.partition), reason=retry.kind, error=str(error),
                  retry_first_s=RETRY_FIRST_S, retry_max_s=RETRY_MAX_S)
        if self._retries is None:  # the consumer is stopping: nothing to retry for
            retry.done.set()
            return
        self._retries.start_soon(self._retry, retry)

    async def _retry(self, retry: _Retry) -> None:
        """Take a paused partition, retrying with a doubling delay; then seek and resume it. A failure of
        another kind than the previous one is logged (the same kind again is not)."""
        tp, name = retry.tp, unit_name(retry.tp.partition)
        try:
            with retry.scope:
                delay = RETRY_FIRST_S
                while True:
                    await anyio.sleep(delay)  # first: a revocation cancels this before anything is adopted
                    if self._paused:
                        return  # shutting down: the daemon releases what it owns, nothing more is taken
                    retry.attempts += 1
                    try:
                        await self.take(tp, quiet=True)
                        break
                    except Exception as e:  # noqa: BLE001 - any failure leaves it paused, logged by kind
                        kind = _kind(e)
                        if kind != retry.kind:
                            retry.kind = kind
                            log.error("paused partition still cannot be taken", unit=name, reason=kind,
                                      error=str(e), attempts=retry.attempts)
                    delay = min(delay * 2, RETRY_MAX_S)
                self.waiting.pop(tp.partition, None)
                self.consumer.resume(tp)
                log.info("paused partition taken and resumed", unit=name, attempts=retry.attempts)
        finally:
            retry.done.set()

    async def stop_waiting(self, revoked: Any) -> None:
        """Revoked partitions are not retried any more: their retries are cancelled and awaited (a retry may
        have taken its unit meanwhile: the revocation then releases it like any other)."""
        retries = [r for tp in revoked if (r := self.waiting.pop(tp.partition, None)) is not None]
        for r in retries:
            r.scope.cancel()
        for r in retries:
            await r.done.wait()

    def note_revoked(self, revoked: Any) -> None:
        """Count a revocation; its partitions are no longer fed here."""
        self.revocations += 1
        for tp in revoked:
            self.owned.discard(tp.partition)
            self.fed.pop(tp.partition, None)

    def note_assigned(self, assigned: Any) -> None:
        """Count an assignment, take each partition's starting offset (its unit's position, if it holds one)
        and log what the instance gained and lost since the previous assignment."""
        self.assignments += 1
        now = {tp.partition for tp in assigned}
        self.owned = set(now)
        for p in now:
            unit = self.d.units.get(unit_name(p))
            position = None if unit is None else unit.positions.get(SOURCE)
            if position is not None:
                self.fed[p] = position.offset
        gained, lost = sorted(now - self._last), sorted(self._last - now)
        self._last = now
        log.info("partition assignment changed", topic=self.config.topic, gained=[unit_name(p) for p in gained],
                 lost=[unit_name(p) for p in lost], owned=len(now), assignments=self.assignments,
                 revocations=self.revocations)

    def lag(self) -> dict[int, int]:
        """Owned partition → records not fed yet: the broker's high-water mark (from the last fetch) minus
        the offset after the last record fed. Partitions not fetched yet, or read from their start with
        nothing fed yet, are left out (``end_offsets()`` is not used: Tansu answers it wrongly)."""
        out: dict[int, int] = {}
        consumer = self.consumer
        if consumer is None:
            return out
        for tp in consumer.assignment():
            at = self.fed.get(tp.partition)
            hw = consumer.highwater(tp) if at is not None else None
            if hw is not None and at is not None:
                out[tp.partition] = max(hw - at, 0)
        return out

    async def commit(self, positions: dict[str, dict[str, FilePosition]]) -> None:
        """After a snapshot is published: commit the offsets it holds."""
        offsets = {TopicPartition(p.name, p.dev): p.offset for unit in positions.values()
                   for source, p in unit.items() if source == SOURCE}
        if offsets and self.consumer is not None:
            try:
                await self.consumer.commit(offsets)
            except Exception as e:  # a lost group membership: the next owner resumes from the snapshot anyway
                log.warning("offset commit failed; the snapshot still holds the offsets", error=repr(e))


class _Retry:
    """A paused partition's retry: its cancel scope (a revocation ends it) and what its last failure was."""

    def __init__(self, tp: Any, kind: str) -> None:
        self.tp = tp
        self.kind = kind  #: the last failure's kind, so that a repeat of it is not logged again
        self.attempts = 0
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()  #: set once the retry has ended (taken, cancelled, or never started)


def _kind(error: Exception) -> str:
    """What stops a partition from being taken, for the log: its store locked by another owner, its state
    unreadable (the message says which file and why), or anything else (a bug: its type)."""
    if isinstance(error, PartitionBusy):
        return "outbox store locked by another owner"
    if isinstance(error, StartError):
        return "state cannot be loaded"
    return type(error).__name__


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions assigned: open their units and seek (or pause and retry); revoked: snapshot, commit and drop
    them. Each partition is adopted or released in a task of its own: one's wait does not delay another's."""

    def __init__(self, pump: KafkaPump) -> None:
        self.pump = pump

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.pump.note_revoked(revoked)
        await self.pump.stop_waiting(revoked)
        d = self.pump.d
        names = [unit_name(tp.partition) for tp in revoked if unit_name(tp.partition) in d.units]
        if not names:
            return
        try:
            await d.snapshot("revoked", fork=False, units=names)
        except SnapshotFailed:  # counted and logged by ``snapshot``; what it means for the handover is said here
            log.error("partitions handed over without their final snapshot: the next owner resumes from the "
                      "previous one and decides the events after it again; the partition's outbox store, handed "
                      "on with it, drops the sends this instance already made", units=names)
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(self._release, name)
        log.info("partitions revoked", units=names)

    async def _release(self, name: str) -> None:
        try:
            await self.pump.d.close_unit(name)
        except Exception as e:  # noqa: BLE001 - one partition's failure must not stop the others' release
            log.error("partition release failed: its outbox store may stay locked until this process exits",
                      unit=name, error=repr(e))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        async with anyio.create_task_group() as tg:
            for tp in assigned:
                tg.start_soon(self._take, tp)
        log.info("partitions assigned", units=sorted(unit_name(tp.partition) for tp in assigned),
                 waiting=sorted(unit_name(p) for p in self.pump.waiting))
        self.pump.note_assigned(assigned)

    async def _take(self, tp: Any) -> None:
        if tp.partition in self.pump.waiting:
            return  # paused and retried already (no revocation in between)
        try:
            await self.pump.take(tp)
        except Exception as e:  # noqa: BLE001 - paused and retried; the other partitions go on
            self.pump.wait_for(tp, e)
