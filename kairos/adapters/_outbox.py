"""The delivery outbox: every decided send reaches its channel once, or the dead-letter file with a reason.

Each send the engine decides is handed to ``submit`` (by the daemon, the
engine's sink) — synchronous, never waits on a channel — and the outbox does
the rest in its own tasks: per-channel lanes with a rate limit (messages/s)
and a concurrency limit, retries with exponential backoff and jitter, and a
dead-letter file for sends that failed for good. Durable state is kept in
*stores*, each a directory of its own (``dead_letter.jsonl`` is the instance's,
in ``config.directory``):

- ``journal.jsonl`` — every accepted send, appended at ``submit``. Only
  ``memory_limit`` pending sends are held in memory; the rest wait in the
  journal ("spilled") and are read back as memory frees up, and after a restart.
- ``ledger.log`` (its lines: ``_ledger``) — per trigger id: ``A`` an attempt
  is starting (made durable *before* the channel is called), ``R`` it did not
  deliver, ``D`` delivered, ``F`` dead-lettered; and ``H`` the floor. Delivered and dead-lettered ids are
  never sent again, across restarts. An ``A`` with no outcome after a crash
  means "outcome unknown": retried only for a channel whose peer drops
  repeated ids (``Channel.idempotent``), else dead-lettered — never sent twice.
- ``lock`` — the owner's exclusive ``fcntl.lockf`` lock (freed by the kernel
  when its process dies); it holds ``pid@host`` for the log of a waiting adopter.
- ``dead_letter.jsonl`` — one JSON line per send that failed for good.

A store belongs to a unit of state, not to the process: the default store
(``config.directory``) is the unpartitioned daemon's; a partitioned daemon
``adopt``-s one per partition it is given (``partitions_dir/p-NNNN.outbox``,
beside the partition's snapshot) and ``release``-s it when the partition
leaves, so the next owner — another instance — knows what was already sent,
and delivers what was left pending. The lock fences two live owners: an
adopter waits (``adopt_wait_s``) for the previous owner to finish releasing.
Lanes, limits, the memory limit and the group commit are shared by the stores.

Forgetting is in event time, never against the wall clock. Left alone, the
outbox remembers every id. Its owner (the daemon, after each published
snapshot) may say with ``advance_horizon`` that nothing kept can decide a
trigger of a store before a stream time again (one horizon and floor per store); at the next compaction, ids whose trigger
time lies more than ``retention_ms`` before that horizon are forgotten, the
journal having been rewritten without them first, and the ledger records the
new floor (``H``). A later submit of an id below the floor that is not pending
is refused (``expired``): the outbox can no longer prove it was not sent.

Appends are fsynced in batches (group commit: whatever accumulated during the previous fsync);
both files are compacted at start-up and whenever one has grown by
``compact_bytes`` since the last compaction.
"""

from __future__ import annotations

import fcntl
import heapq
import os
import random
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import anyio
import anyio.abc
import msgspec
import structlog

from kairos.adapters._channel import Channel, Outcome, SendContext, wall_ms
from kairos.adapters._ledger import atomic_write, complete_lines, read_ledger, record
from kairos.adapters._templates import TemplateCatalog, TemplateError

__all__ = ["ChannelLimits", "DeadLetter", "DecidedSend", "LaneStats", "Outbox", "OutboxConfig", "OutboxStats",
           "StoreBusy"]

log = structlog.get_logger("kairos.outbox")

_DAY_MS = 86_400_000


class ChannelLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How hard one channel may be driven."""

    rate: float = 0.0  #: messages per second; 0: unlimited
    concurrency: int = 4  #: sends in flight at once
    timeout_s: float = 30.0  #: bound on one ``send`` call; past it the outcome is unknown


class OutboxConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the outbox keeps its files and how it retries."""

    directory: str
    memory_limit: int = 10_000  #: pending sends held in memory; beyond, they wait on disk
    max_attempts: int = 10  #: attempts before a temporary failure is dead-lettered
    backoff_base_ms: int = 500  #: first retry delay; doubled per attempt
    backoff_max_ms: int = 300_000
    fsync_interval_ms: int = 0  #: extra wait to gather a group commit; 0: flush as soon as the last one is done
    #: margin below the safe horizon (``advance_horizon``): a delivered id is forgotten only once its
    #: trigger time is this far before the earliest trigger time any kept snapshot could decide again
    retention_ms: int = 7 * _DAY_MS
    compact_bytes: int = 64 << 20  #: rewrite the journal and ledger when one has grown by this since the last time
    close_timeout_s: float = 5.0  #: how long closing waits for sends in flight and channels
    #: how long ``adopt`` waits for a store's previous owner to release its lock (a partition handed over)
    adopt_wait_s: float = 30.0
    channels: dict[str, ChannelLimits] = msgspec.field(default_factory=dict)
    default_limits: ChannelLimits = msgspec.field(default_factory=ChannelLimits)


class DeadLetter(msgspec.Struct, frozen=True):
    """One line of ``dead_letter.jsonl``."""

    id: str
    channel: str
    reason: str
    attempts: int
    at: int  #: when it was given up, epoch ms
    send: SendContext


class LaneStats(msgspec.Struct):
    """One channel's counts."""

    queued: int = 0
    in_flight: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0


class OutboxStats(msgspec.Struct):
    """The outbox's counts: what came in, where it is, how it ended."""

    submitted: int = 0
    duplicates: int = 0  #: submits of an id already pending, delivered or dead-lettered
    expired: int = 0  #: submits refused: trigger time below the floor, so whether it was sent is forgotten
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    pending: int = 0  #: accepted, not yet delivered or dead-lettered
    in_memory: int = 0  #: pending sends held in memory (queued + in flight)
    spilled: int = 0  #: pending sends waiting on disk only
    in_flight: int = 0
    channels: dict[str, LaneStats] = msgspec.field(default_factory=dict)


class _Entry:
    """A pending send in memory."""

    __slots__ = ("ctx", "store", "attempts", "queued")

    def __init__(self, ctx: SendContext, store: _Store, attempts: int = 0) -> None:
        self.ctx = ctx
        self.store = store  #: where it is journalled, and its outcome recorded
        self.attempts = attempts
        self.queued = True  #: False once it left memory without an outcome (its store was released)


class _Lane:
    """One channel's queue (a heap by due time), limits and counts."""

    def __init__(self, name: str, channel: Channel, limits: ChannelLimits) -> None:
        self.name, self.channel, self.limits = name, channel, limits
        self.heap: list[tuple[int, int, int, _Entry]] = []  # (due ms, -priority, seq, entry)
        self.wake: anyio.Event | None = None  # made in ``Outbox.run``: events belong to the running loop
        self.slots = anyio.Semaphore(max(1, limits.concurrency))
        self.next_slot = 0.0
        self.stats = LaneStats()
        self.closed = False

    def push(self, due: int, seq: int, entry: _Entry) -> None:
        heapq.heappush(self.heap, (due, -entry.ctx.priority, seq, entry))
        if self.wake is not None:
            self.wake.set()


_SEND_DECODER = msgspec.json.Decoder(SendContext)
_ENCODE = msgspec.json.Encoder().encode


class DecidedSend(Protocol):
    """What ``submit`` reads of a send that is not a ``SendContext`` yet: the fields of the engine's
    ``Send``, which fits by shape (this package imports nothing of the engine)."""

    @property
    def id(self) -> str: ...
    @property
    def scenario(self) -> str: ...
    @property
    def msisdn(self) -> str: ...
    @property
    def ts(self) -> int: ...
    @property
    def send_at(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


class StoreBusy(Exception):
    """A store's lock is held by another owner (an instance still releasing the partition, or one that still
    owns it) and was not freed within ``adopt_wait_s``."""


#: the lock files this process holds. A POSIX lock belongs to the process, not to the descriptor: a second
#: ``lockf`` here would be granted, and closing any other descriptor of the file would drop the lock, so a
#: store held here is refused here before its lock file is even opened again
_HELD: set[str] = set()


class _Store:
    """One unit's durable outbox state: its journal, its ledger (with its floor and horizon), its lock file,
    and what of it is in memory. The unpartitioned daemon has one (the outbox directory); a partitioned one
    has one per partition it owns, beside the partition's snapshot, and hands it on with the partition."""

    # opened by ``Outbox._load``: declared here, so that "not opened yet" stays "not set"
    journal: BinaryIO
    ledger_file: BinaryIO

    def __init__(self, key: str, directory: Path) -> None:
        self.key, self.dir = key, directory
        self.journal_path = directory / "journal.jsonl"
        self.ledger_path = directory / "ledger.log"
        self.done: dict[str, int] = {}  # id -> trigger ts (delivered or dead-lettered)
        self.floor = 0  # ids with a trigger ts below it are forgotten (persisted as an ``H`` record)
        self.horizon: int | None = None  # nothing kept can decide a trigger before it (None: not told)
        self.pending: set[str] = set()
        self.in_flight: dict[str, _Entry] = {}
        self.spilled = 0
        self.cursor = 0  # journal offset: entries before it are in memory or done
        self.journal_base = 0  # sizes right after the last compaction
        self.ledger_base = 0
        self.ledger_buf: list[bytes] = []
        self.dirty = False  # written since the last group commit
        self.state = "open"  # "releasing": taking no more attempts; "closed": files closed, lock freed
        self._lock_fd: int | None = None
        self._lock_key = ""

    def try_lock(self) -> bool:
        """Take the store's exclusive lock (``fcntl.lockf`` on ``lock``; a crashed owner's is freed by the
        kernel) if it is free; False if another owner holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "lock"
        key = str(path.resolve())
        if key in _HELD:
            return False
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # this process holds no lock on the file: closing drops nothing
            return False
        _HELD.add(key)
        self._lock_fd, self._lock_key = fd, key
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}@{socket.gethostname()}\n".encode())
        return True

    def waiting(self, wait_s: float) -> None:
        log.warning("outbox store locked by its previous owner: waiting for it to release", store=self.key,
                    directory=str(self.dir), holder=self.holder(), wait_s=wait_s)

    def busy(self, wait_s: float) -> StoreBusy:
        return StoreBusy(f"{self.dir}: the outbox store is locked by {self.holder()}, which still owns it or has "
                         f"not finished releasing it (waited {wait_s:g}s); a partition must have one owner")

    def holder(self) -> str:
        """Who holds the lock, for the log: this process, or the ``pid@host`` its holder wrote."""
        path = self.dir / "lock"
        if str(path.resolve()) in _HELD:
            return "this process"
        try:
            return "pid@host " + path.read_text().strip()
        except OSError:
            return "another process"

    def unlock(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                _HELD.discard(self._lock_key)
                self._lock_fd = None

    def close(self) -> None:
        """Close the files (their content already written and fsynced by the caller) and free the lock."""
        self.state = "closed"
        try:
            for f in (getattr(self, "journal", None), getattr(self, "ledger_file", None)):
                if f is not None:
                    f.close()
        finally:
            self.unlock()

    def record(self, kind: bytes, trigger_id: str, ts: int = 0) -> None:
        self.ledger_buf.append(record(kind, trigger_id, ts))
        self.dirty = True

    def rewrite_journal(self, sends: list[SendContext]) -> None:
        """Replace the journal with just these sends (atomic rename), and reopen it for appending."""
        if getattr(self, "journal", None) is not None:
            self.journal.close()
        atomic_write(self.journal_path, b"".join(_ENCODE(c) + b"\n" for c in sends))
        self.journal = open(self.journal_path, "ab", buffering=1 << 20)  # noqa: SIM115 - closed in close
        self.journal_base = self.journal.tell()

    def _rewrite_ledger(self) -> None:
        """Replace the ledger with the remembered outcomes (and attempts in flight), and reopen it."""
        if getattr(self, "ledger_file", None) is not None:
            self.ledger_file.close()
        lines = [record(b"H", "", self.floor)] if self.floor else []
        lines += [record(b"D", k, ts) for k, ts in self.done.items()]
        lines += [record(b"A", k) for k in self.in_flight]
        atomic_write(self.ledger_path, b"".join(lines) + b"".join(self.ledger_buf))
        self.ledger_buf.clear()
        self.ledger_file = open(self.ledger_path, "ab")  # noqa: SIM115 - closed in close
        self.ledger_base = self.ledger_file.tell()

    def sync(self, ledger: bytes) -> None:
        """Append the ledger records and fsync both files (runs in a worker thread)."""
        if ledger:
            self.ledger_file.write(ledger)
            self.ledger_file.flush()
            os.fsync(self.ledger_file.fileno())
        os.fsync(self.journal.fileno())


class Outbox:
    """Takes decided sends from the engine and delivers them through channels, exactly once or dead-lettered.

    Its durable state is kept in stores: the default one (``""``) in ``config.directory``, opened by ``run``,
    and any number more, ``adopt``-ed and ``release``-d as the units they belong to arrive and leave (the
    partitions of a partitioned daemon). Lanes, limits and the group commit are shared by all."""

    # made by ``run`` (the task group): declared here, so that "not opened yet" stays "not set"
    _tg: anyio.abc.TaskGroup

    #: the store of ``config.directory``: the unpartitioned daemon's, and an older outbox's on upgrade
    DEFAULT = ""

    def __init__(
        self,
        config: OutboxConfig,
        channels: Mapping[str, Channel],
        *,
        templates: TemplateCatalog | None = None,
        clock: Callable[[], int] = wall_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.templates = templates
        self.clock = clock
        self._rng = rng or random.Random()
        self._dir = Path(config.directory)
        self._lanes = {
            name: _Lane(name, ch, config.channels.get(name, config.default_limits)) for name, ch in channels.items()
        }
        self._stores: dict[str, _Store] = {}
        #: stores being adopted by ``adopt_when_free`` (locked, their files being read): not open yet, but taken
        self._adopting: set[str] = set()
        self._floors: dict[str, int] = {}  # the floors of stores closed here, as they were at the close
        self._in_flight = 0
        self._in_memory = 0
        self._spilled = 0  #: the stores' spilled sends, summed: ``_refill`` returns at once while it is 0
        self._seq = 0
        self._stats = OutboxStats()
        self._state = "new"
        self._dead_file: BinaryIO | None = None
        # group commit
        self._dead_buf: list[bytes] = []
        self._gen_requested = 0
        self._gen_synced = 0

    def _make_events(self) -> None:
        """Events and locks of the running loop (anyio makes them per event loop)."""
        self._stop = anyio.Event()
        self._changed = anyio.Event()
        self._synced = anyio.Event()
        self._dirty = anyio.Event()
        self._flush_lock = anyio.Lock()
        for lane in self._lanes.values():
            lane.wake = anyio.Event()

    # ------------------------------------------------------------------ stores

    def adopt(self, store: str, directory: str | Path) -> None:
        """Take a unit's store: lock it (waiting up to ``adopt_wait_s`` for its previous owner to release it;
        ``StoreBusy`` past that), read its ledger and journal, and deliver what it left pending.

        Ids it delivered or dead-lettered are never sent again; an attempt it left without an outcome (its
        owner crashed mid-send) is retried only on an idempotent channel, else dead-lettered. Before ``run``
        (the daemon's start) or while it runs (a partition assigned); synchronous: the lock is taken before
        the caller loads the unit's snapshot, so the snapshot read is the one its last owner published."""
        s = self._store(store, directory)
        wait_s = self.config.adopt_wait_s
        deadline = time.monotonic() + wait_s
        if not s.try_lock():
            s.waiting(wait_s)
            while not s.try_lock():
                if time.monotonic() >= deadline:
                    raise s.busy(wait_s)
                time.sleep(0.05)
            log.info("outbox store lock taken", store=store, directory=str(s.dir))
        self._open_store(s)

    async def adopt_when_free(self, store: str, directory: str | Path, *, quiet: bool = False) -> None:
        """``adopt`` without blocking the event loop (a partition assigned while running): the lock is awaited
        (its previous owner may still be releasing it: the consumer's heartbeats go on meanwhile) and the files
        are read and rewritten in a worker thread, so a long ledger does not hold up the other partitions'
        events; ``quiet``: the wait is not logged (a caller that retries logs it once).

        Until it returns the store is taken: another ``adopt`` of it is refused (``ValueError``), and a
        ``release`` of it has nothing to release yet."""
        s = self._store(store, directory)
        self._adopting.add(store)
        try:
            wait_s = self.config.adopt_wait_s
            if not s.try_lock():
                if not quiet:
                    s.waiting(wait_s)
                with anyio.move_on_after(wait_s):
                    while not s.try_lock():
                        await anyio.sleep(0.05)
                if s._lock_fd is None:
                    raise s.busy(wait_s)
                log.info("outbox store lock taken", store=store, directory=str(s.dir))
            try:
                await self._load_off_loop(s)
                if self._state == "closed":  # the outbox stopped while the files were read: nothing takes them
                    raise RuntimeError(f"outbox is closed: store {store!r} not adopted")
            except BaseException:
                s.close()
                raise
            self._register(s)
        finally:
            self._adopting.discard(store)

    def _store(self, store: str, directory: str | Path) -> _Store:
        if store in self._stores or store in self._adopting:
            raise ValueError(f"outbox store {store!r} is already open")
        return _Store(store, Path(directory))

    def _open_store(self, s: _Store) -> None:
        """Load a locked store and start delivering what it holds."""
        try:
            self._load(s)
        except BaseException:
            s.close()
            raise
        self._register(s)

    def _register(self, s: _Store) -> None:
        """A loaded store joins the open ones: its sends are delivered from now on."""
        self._stores[s.key] = s
        self._spilled += s.spilled
        self._refill()
        self._notify()

    async def release(self, store: str, *, wait_s: float | None = None) -> None:
        """Hand a unit's store on: take no more of its sends, let its attempts in flight settle (for ``wait_s``;
        default: the longest channel ``timeout_s``, which bounds an attempt), write and fsync, close its files
        and free its lock. Its pending sends stay in its journal for the next owner."""
        s = self._stores.get(store)
        if s is None:
            return
        if self._state == "new":  # adopted, never run: nothing in flight, everything on disk
            del self._stores[store]
            self._floors[store] = s.floor
            s.close()
            return
        s.state = "releasing"
        for lane in self._lanes.values():
            kept = [item for item in lane.heap if item[3].store is not s]
            if len(kept) != len(lane.heap):
                self._in_memory -= len(lane.heap) - len(kept)
                heapq.heapify(kept)
                lane.heap = kept
        self._spilled -= s.spilled
        s.spilled = 0  # they stay in its journal
        bound = wait_s if wait_s is not None else max(
            (lane.limits.timeout_s for lane in self._lanes.values()), default=0.0) + 1.0
        with anyio.move_on_after(bound):
            while s.in_flight:
                await self._changed.wait()
        if s.in_flight:
            log.warning("store released with attempts still in flight: their outcome is unknown to the next owner",
                        store=store, in_flight=len(s.in_flight))
        if self._state != "closed":
            await self._flush()
        if s.state != "closed":  # run's end may have closed it meanwhile
            del self._stores[store]
            self._floors[store] = s.floor
            s.close()
        self._refill()
        self._notify()

    def stores(self) -> list[str]:
        """The stores open now."""
        return sorted(self._stores)

    # ------------------------------------------------------------------ the sender's side

    def submit(self, send: SendContext | DecidedSend, *, priority: int | None = None, store: str = DEFAULT) -> bool:
        """Accept one send (a ``SendContext`` or the engine's ``Send``) into ``store``; False if its id was
        already accepted.

        ``priority`` orders a ``Send``'s lane (default 50); a ``SendContext`` carries its own."""
        if self._state not in ("running", "stopping"):
            raise RuntimeError(f"outbox is {self._state}: submit only while it runs")
        s = self._stores.get(store)
        if s is None or s.state != "open":
            raise RuntimeError(f"outbox store {store!r} is not open here")
        ctx = send if isinstance(send, SendContext) else _context(send, priority)
        legacy = self._stores.get(self.DEFAULT)
        if (ctx.id in s.pending or ctx.id in s.done
                or (legacy is not None and legacy is not s and (ctx.id in legacy.done or ctx.id in legacy.pending))):
            self._stats.duplicates += 1
            return False
        if ctx.ts < s.floor:
            self._expire(s, ctx)
            return False
        self._stats.submitted += 1
        s.pending.add(ctx.id)
        s.journal.write(_ENCODE(ctx) + b"\n")
        s.dirty = True
        self._request_flush()
        lane = self._lanes.get(ctx.channel)
        if lane is None:
            self._dead_letter(_Entry(ctx, s), f"no channel named {ctx.channel!r} is configured")
        elif s.spilled == 0 and self._in_memory < self.config.memory_limit:
            s.cursor = s.journal.tell()
            self._to_memory(lane, _Entry(ctx, s))
        else:
            s.spilled += 1
            self._spilled += 1
        self._notify()
        return True

    def _expire(self, s: _Store, ctx: SendContext) -> None:
        """Refuse a send below the floor: it may have been sent before its id was forgotten."""
        self._stats.expired += 1
        if self._stats.expired == 1:
            log.warning("sends refused: their trigger time is below the outbox floor, so whether they were "
                        "already sent is no longer known (counted as expired; a summary follows at stop)",
                        store=s.key, floor=s.floor, ts=ctx.ts, scenario=ctx.scenario, channel=ctx.channel)

    @property
    def expired(self) -> int:
        """Submits refused so far because their trigger time was below the floor (cheap: no statistics copy)."""
        return self._stats.expired

    @property
    def floor(self) -> int:
        """Ids of the default store with a trigger time below this are no longer remembered; such submits are
        refused (``floor_of`` for another store)."""
        return self.floor_of(self.DEFAULT)

    def floor_of(self, store: str) -> int:
        """A store's floor (as it was when closed here; 0 for a store never open here)."""
        s = self._stores.get(store)
        return s.floor if s is not None else self._floors.get(store, 0)

    def advance_horizon(self, horizon: int, *, store: str = DEFAULT) -> None:
        """Nothing kept (snapshots, journal) can decide a trigger of ``store`` with a time before ``horizon`` again.

        Called by the owner of the state that re-submits after a restart (the daemon, after each
        published snapshot, per unit). From the next compaction on, the store's ids more than
        ``retention_ms`` before it may be forgotten. Without a call a store never forgets an id.
        """
        s = self._stores.get(store)
        if s is not None:
            s.horizon = horizon

    def statistics(self) -> OutboxStats:
        """A snapshot of the counts (summed over the stores)."""
        s = msgspec.structs.replace(self._stats)
        s.pending = sum(len(st.pending) for st in self._stores.values())
        s.in_memory = self._in_memory
        s.spilled = self._spilled
        s.in_flight = self._in_flight
        s.channels = {}
        for name, lane in self._lanes.items():
            ls = msgspec.structs.replace(lane.stats)
            ls.queued = len(lane.heap)
            s.channels[name] = ls
        return s

    async def wait_for(self, predicate: Callable[[OutboxStats], bool]) -> OutboxStats:
        """Wait until the statistics satisfy ``predicate`` (for tests and graceful shutdowns); call after ``run`` started."""
        while True:
            stats = self.statistics()
            if predicate(stats):
                return stats
            await self._changed.wait()

    async def wait_idle(self) -> OutboxStats:
        """Wait until nothing is pending."""
        return await self.wait_for(lambda s: s.pending == 0)

    def mark(self) -> int:
        """A point after every send accepted so far; ``await durable(mark)`` waits until they are all on disk.

        The daemon publishes a state snapshot only once the sends that state implies are durable."""
        return self._request_flush()

    async def durable(self, mark: int) -> None:
        """Wait until everything accepted before ``mark`` is fsynced (in every store)."""
        await self._durable(mark)

    def stop(self) -> None:
        """Ask ``run`` to finish: sends in flight get ``close_timeout_s``, pending ones stay for the next start."""
        self._stop.set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the default store, start the channels and lanes; ``await tg.start(outbox.run)`` returns when it
        accepts sends."""
        self._make_events()
        try:
            if self.DEFAULT not in self._stores:  # start-up: reading the files blocks briefly, before anything else runs
                self.adopt(self.DEFAULT, self._dir)
            self._dirty.set()  # outcomes decided while opening go to disk at the first flush
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for lane in self._lanes.values():
                    await lane.channel.start(tg)
                tg.start_soon(self._flusher)
                self._state = "running"
                for lane in self._lanes.values():
                    tg.start_soon(self._lane_loop, lane)
                self._refill()
                task_status.started()
                await self._stop.wait()
                self._state = "stopping"
                for lane in self._lanes.values():
                    if lane.wake is not None:  # made by ``_make_events``, above
                        lane.wake.set()
                with anyio.move_on_after(self.config.close_timeout_s):
                    await self.wait_for(lambda s: s.in_flight == 0)
                await self._close_channels()  # while their background tasks still run: a clean unbind
                tg.cancel_scope.cancel()
        finally:
            await self._close_channels()
            self._close_files()
            self._state = "closed"
            self._notify()

    async def _close_channels(self) -> None:
        """Close every channel once, shielded from cancellation and bounded in time."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.config.close_timeout_s):
            for lane in self._lanes.values():
                if lane.closed:
                    continue
                lane.closed = True
                try:
                    await lane.channel.close()
                except Exception:  # one channel's failure must not keep the others open
                    log.exception("channel close failed", channel=lane.name)

    # ------------------------------------------------------------------ delivery

    async def _lane_loop(self, lane: _Lane) -> None:
        """Hand due sends of one channel to attempts, within its rate and concurrency limits."""
        while self._state == "running":
            if not lane.heap or lane.heap[0][0] > self.clock():
                wait_s = None if not lane.heap else (lane.heap[0][0] - self.clock()) / 1000
                with anyio.move_on_after(wait_s if wait_s is not None else float("inf")):
                    if lane.wake is not None:  # made by ``_make_events``, before any lane loop starts
                        await lane.wake.wait()
                lane.wake = anyio.Event()
                continue
            await lane.slots.acquire()  # released by the attempt
            if lane.limits.rate > 0:
                now = time.monotonic()
                if lane.next_slot > now:
                    await anyio.sleep(lane.next_slot - now)
                lane.next_slot = max(now, lane.next_slot) + 1.0 / lane.limits.rate
            if self._state != "running" or not lane.heap or lane.heap[0][0] > self.clock():
                lane.slots.release()
                continue
            entry = heapq.heappop(lane.heap)[3]
            entry.store.in_flight[entry.ctx.id] = entry
            self._in_flight += 1
            self._tg.start_soon(self._attempt, lane, entry)
            self._notify()

    async def _attempt(self, lane: _Lane, entry: _Entry) -> None:
        """One try of one send: render, mark durable, call the channel, act on the outcome."""
        ctx, s = entry.ctx, entry.store
        try:
            if ctx.id in s.done or s.state != "open":  # the ledger is checked before every send
                entry.queued = False
                return
            entry.attempts += 1
            try:
                text = ctx.text or (self.templates.render(ctx.template, ctx.channel, ctx.params) if self.templates else "")
            except TemplateError as exc:
                self._dead_letter(entry, f"template: {exc}")
                return
            attempt_ctx = msgspec.structs.replace(ctx, text=text, attempt=entry.attempts)
            await self._durable(self._ledger(s, b"A", ctx.id))
            try:
                with anyio.fail_after(lane.limits.timeout_s):
                    outcome = await lane.channel.send(attempt_ctx)
                if not isinstance(outcome, Outcome):
                    raise TypeError(f"send returned {type(outcome).__name__}, not Outcome")
            except TimeoutError:
                outcome = self._unknown(lane, f"send did not return within {lane.limits.timeout_s}s")
            except Exception as exc:  # a plugin's exception: the send may or may not have happened
                log.warning("channel send raised", channel=lane.name, id=ctx.id, error=repr(exc))
                outcome = self._unknown(lane, f"send raised {exc!r}")
            self._settle(lane, entry, outcome)
        finally:
            s.in_flight.pop(ctx.id, None)
            self._in_flight -= 1
            lane.slots.release()
            if ctx.id not in s.pending or not entry.queued:  # settled for good, or its store left: memory is free
                self._in_memory -= 1
                self._refill()
            self._notify()

    def _unknown(self, lane: _Lane, reason: str) -> Outcome:
        """A send whose outcome is unknown: retry only where the peer drops repeats."""
        if lane.channel.idempotent:
            return Outcome.retry(f"outcome unknown: {reason}")
        return Outcome.failed(f"outcome unknown, not retried (the channel cannot drop a repeat): {reason}")

    def _settle(self, lane: _Lane, entry: _Entry, outcome: Outcome) -> None:
        """Record an attempt's outcome: done, back in the queue after a backoff, or dead-lettered."""
        ctx, s = entry.ctx, entry.store
        if s.state == "closed":  # released before the attempt settled: its ``A`` stays in doubt for the next owner
            log.warning("an attempt settled after its store was released; the next owner treats it as in doubt",
                        store=s.key, id=ctx.id, status=outcome.status)
            entry.queued = False
            return
        if outcome.status == "delivered":
            self._ledger(s, b"D", ctx.id, ctx.ts)
            s.done[ctx.id] = ctx.ts
            s.pending.discard(ctx.id)
            self._stats.delivered += 1
            lane.stats.delivered += 1
        elif outcome.status == "retry" and entry.attempts < self.config.max_attempts:
            if not outcome.in_doubt:  # else the ``A`` stays open: after a crash the send counts as in doubt
                self._ledger(s, b"R", ctx.id)
            self._stats.retried += 1
            lane.stats.retried += 1
            if s.state != "open":  # releasing: it stays in the journal for the next owner
                entry.queued = False
                return
            delay = self._backoff_ms(entry.attempts)
            if outcome.retry_after_ms:
                delay = max(delay, outcome.retry_after_ms)
            self._seq += 1
            lane.push(self.clock() + delay, self._seq, entry)
        elif outcome.status == "retry":
            n = entry.attempts
            self._dead_letter(entry, f"gave up after {n} attempt{'s' * (n != 1)}; last: {outcome.reason}")
        else:
            self._dead_letter(entry, outcome.reason or "failed")

    def _backoff_ms(self, attempts: int) -> int:
        """Exponential backoff with equal jitter: half the doubled delay, plus a random share of the other half."""
        ceiling = min(self.config.backoff_max_ms, self.config.backoff_base_ms << (attempts - 1))
        return ceiling // 2 + int(self._rng.random() * (ceiling - ceiling // 2))

    def _dead_letter(self, entry: _Entry, reason: str) -> None:
        """Give a send up for good, with its reason, in the dead-letter file."""
        ctx, s = entry.ctx, entry.store
        letter = DeadLetter(ctx.id, ctx.channel, reason, entry.attempts, self.clock(), ctx)
        self._dead_buf.append(_ENCODE(letter) + b"\n")
        self._ledger(s, b"F", ctx.id, ctx.ts)
        s.done[ctx.id] = ctx.ts
        s.pending.discard(ctx.id)
        self._stats.dead_lettered += 1
        lane = self._lanes.get(ctx.channel)
        if lane is not None:
            lane.stats.dead_lettered += 1
        log.warning("send dead-lettered", id=ctx.id, channel=ctx.channel, reason=reason)

    def _to_memory(self, lane: _Lane, entry: _Entry) -> None:
        self._in_memory += 1
        self._seq += 1
        lane.push(entry.ctx.send_at, self._seq, entry)

    def _refill(self) -> None:
        """Read spilled sends back from the stores' journals while memory has room."""
        if not self._spilled or self._in_memory >= self.config.memory_limit or self._state != "running":
            return
        for s in list(self._stores.values()):
            if s.spilled and s.state == "open":
                self._refill_store(s)
            if self._in_memory >= self.config.memory_limit:
                return

    def _refill_store(self, s: _Store) -> None:
        s.journal.flush()
        with open(s.journal_path, "rb") as f:
            f.seek(s.cursor)
            while s.spilled and self._in_memory < self.config.memory_limit:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                s.cursor += len(line)
                ctx = _SEND_DECODER.decode(line)
                if ctx.id not in s.pending or ctx.id in s.in_flight:
                    continue
                s.spilled -= 1
                self._spilled -= 1
                lane = self._lanes.get(ctx.channel)
                if lane is None:
                    self._dead_letter(_Entry(ctx, s), f"no channel named {ctx.channel!r} is configured")
                else:
                    self._to_memory(lane, _Entry(ctx, s))

    def _notify(self) -> None:
        if self._state == "new":
            return
        self._changed.set()
        self._changed = anyio.Event()

    # ------------------------------------------------------------------ durability

    def _ledger(self, s: _Store, kind: bytes, trigger_id: str, ts: int = 0) -> int:
        """Queue one ledger record of store ``s`` for the next group commit; returns its generation."""
        if s.state != "closed":
            s.record(kind, trigger_id, ts)
        return self._request_flush()

    def _request_flush(self) -> int:
        self._gen_requested += 1
        if self._state != "new":
            self._dirty.set()
        return self._gen_requested

    async def _durable(self, generation: int) -> None:
        """Wait until the records up to ``generation`` are on disk."""
        while self._gen_synced < generation:
            await self._synced.wait()

    async def _flusher(self) -> None:
        """Group commit: write and fsync whatever accumulated while the previous flush ran."""
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            await anyio.sleep(self.config.fsync_interval_ms / 1000)
            await self._flush()

    async def _flush(self) -> None:
        """Write and fsync the buffered records; shielded, so a cancellation cannot drop a taken batch."""
        with anyio.CancelScope(shield=True):
            await self._flush_unshielded()

    async def _flush_unshielded(self) -> None:
        async with self._flush_lock:
            generation = self._gen_requested
            batch = []
            for s in self._stores.values():
                if s.dirty and s.state != "closed":
                    s.dirty = False
                    s.journal.flush()
                    batch.append((s, b"".join(s.ledger_buf)))
                    s.ledger_buf.clear()
            dead = b"".join(self._dead_buf)
            self._dead_buf.clear()
            await anyio.to_thread.run_sync(self._write_and_sync, batch, dead)
            self._gen_synced = generation
            self._synced.set()
            self._synced = anyio.Event()
            for s, _ in batch:
                if s.state == "open":
                    self._maybe_compact(s)

    def _write_and_sync(self, batch: list[tuple[_Store, bytes]], dead: bytes) -> None:
        """Append and fsync (runs in a worker thread)."""
        if dead:
            f = self._dead_out()
            f.write(dead)
            f.flush()
            os.fsync(f.fileno())
        for s, ledger in batch:
            s.sync(ledger)

    def _dead_out(self) -> BinaryIO:
        """The dead-letter file, opened at the first letter (it is the instance's, in ``config.directory``)."""
        if self._dead_file is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._dead_file = open(self._dir / "dead_letter.jsonl", "ab")  # noqa: SIM115 - closed in _close_files
        return self._dead_file

    def _load(self, s: _Store) -> None:
        """Load a store's ledger and journal, resolve attempts a crash interrupted, compact, and open for
        appending (on the calling thread: the start-up's stores, before anything else runs)."""
        attempted, pending = self._read(s)
        pending, letters, interrupted = self._resolve(s, attempted, pending)
        if letters:
            self._write_letters(letters)
        self._write_back(s, pending)
        self._opened(s, attempted, interrupted)

    async def _load_off_loop(self, s: _Store) -> None:
        """``_load`` with the reading and writing in worker threads: the loop runs the other stores meanwhile.

        Only what touches the outbox's shared state (dead-lettering the sends a crash interrupted) runs on
        the loop; the store itself is not registered yet, so nothing else reads or writes it meanwhile."""
        attempted, pending = await anyio.to_thread.run_sync(self._read, s)
        pending, letters, interrupted = self._resolve(s, attempted, pending)
        # shielded: once sends are dead-lettered, the letters and the rewritten ledger go to disk together
        with anyio.CancelScope(shield=True):
            if letters and self._state == "new":  # before ``run``: no flusher yet
                await anyio.to_thread.run_sync(self._write_letters, letters)
            elif letters:
                async with self._flush_lock:  # the flusher appends to the dead-letter file too
                    await anyio.to_thread.run_sync(self._write_letters, letters)
            await anyio.to_thread.run_sync(self._write_back, s, pending)
        self._opened(s, attempted, interrupted)

    @staticmethod
    def _read(s: _Store) -> tuple[set[str], list[SendContext]]:
        """Read the store's ledger and journal into it (its outcomes, floor and pending ids); returns the ids
        the ledger has in doubt and the pending sends, in journal order. Touches nothing but the store."""
        ledger = read_ledger(s.ledger_path)
        s.done, s.floor = ledger.done, ledger.floor
        # nothing is forgotten here: an id leaves memory only at a compaction that also leaves it out of the
        # journal (a journal line below the floor is therefore a send still pending, never a forgotten one)
        pending: list[SendContext] = []
        for line in complete_lines(s.journal_path):
            try:
                ctx = _SEND_DECODER.decode(line)
            except msgspec.DecodeError:
                log.error("unreadable journal line skipped", store=s.key, line=line[:200])
                continue
            if ctx.id in s.done or ctx.id in s.pending:
                continue
            s.pending.add(ctx.id)
            pending.append(ctx)
        return ledger.in_doubt, pending

    def _resolve(self, s: _Store, attempted: set[str],
                 pending: list[SendContext]) -> tuple[list[SendContext], bytes, int]:
        """Dead-letter the pending sends a crash left in doubt on a channel that cannot drop a repeat; returns
        the sends still pending, the letters to write (before the ledger and journal drop those sends) and
        how many there are."""
        interrupted = []
        for ctx in pending:
            if ctx.id in attempted:
                lane = self._lanes.get(ctx.channel)
                if lane is None or not lane.channel.idempotent:
                    interrupted.append(ctx)
        dead_before = len(self._dead_buf)
        for ctx in interrupted:
            self._dead_letter(_Entry(ctx, s, 1), "outcome unknown: the outbox stopped while this send was in flight")
        letters = b"".join(self._dead_buf[dead_before:])
        del self._dead_buf[dead_before:]  # written by the caller, not by the next group commit
        return [ctx for ctx in pending if ctx.id in s.pending], letters, len(interrupted)

    def _write_letters(self, letters: bytes) -> None:
        """Append dead letters and fsync: on disk before the ledger and journal drop their sends, so a crash
        now loses no letter."""
        f = self._dead_out()
        f.write(letters)
        f.flush()
        os.fsync(f.fileno())

    @staticmethod
    def _write_back(s: _Store, pending: list[SendContext]) -> None:
        """Rewrite the store's ledger (first: the outcomes decided while loading are durable before the journal
        drops them), then its journal with just the pending sends, which wait there ("spilled") for memory."""
        s._rewrite_ledger()
        s.rewrite_journal(pending)
        s.spilled = len(pending)
        s.cursor = 0

    def _opened(self, s: _Store, attempted: set[str], interrupted: int) -> None:
        if s.floor or s.key != self.DEFAULT:
            log.info("outbox store opened", store=s.key or "default", floor=s.floor, remembered=len(s.done),
                     pending=s.spilled, in_doubt=len(attempted & s.pending) + interrupted)

    def _maybe_compact(self, s: _Store) -> None:
        """Compact once the journal or the ledger has grown by ``compact_bytes`` since the last time."""
        limit = self.config.compact_bytes
        if s.journal.tell() - s.journal_base > limit or s.ledger_file.tell() - s.ledger_base > limit:
            self._compact(s)

    def _compact(self, s: _Store) -> None:
        """Rewrite the journal with just the pending sends, then the ledger, forgetting what the horizon allows.

        The journal can be rewritten only while nothing is spilled (the pending sends are all in
        memory), and ids are forgotten only together with that rewrite: the new journal holds none of
        them, and the ledger is rewritten after it (a crash in between leaves the old ledger: safe).
        """
        if s.spilled:
            # the journal cannot be rewritten while sends wait in it: compact the ledger alone (the outcomes
            # stay; attempts and retries are dropped), and look again once either file grew by compact_bytes
            s.journal_base = s.journal.tell()
            s._rewrite_ledger()
            return
        sends = [e.ctx for lane in self._lanes.values() for (_, _, _, e) in lane.heap
                 if e.store is s and e.ctx.id in s.pending]
        sends += [e.ctx for e in s.in_flight.values() if e.ctx.id in s.pending]
        s.rewrite_journal(sends)
        s.cursor = s.journal.tell()
        if s.horizon is not None and s.horizon - self.config.retention_ms > s.floor:
            s.floor = floor = s.horizon - self.config.retention_ms
            before = len(s.done)
            s.done = {k: ts for k, ts in s.done.items() if ts >= floor}
            log.info("outbox forgot old ids", store=s.key or "default", floor=floor, forgotten=before - len(s.done),
                     remembered=len(s.done))
        s._rewrite_ledger()

    def _close_files(self) -> None:
        """Write what is buffered, fsync, close every store and free its lock."""
        if self._stats.expired:
            log.warning("sends refused as expired: trigger time below the outbox floor", expired=self._stats.expired,
                        floors={k or "default": s.floor for k, s in self._stores.items()})
        try:
            dead = b"".join(self._dead_buf)
            self._dead_buf.clear()
            batch = []
            for s in self._stores.values():
                s.journal.flush()
                batch.append((s, b"".join(s.ledger_buf)))
                s.ledger_buf.clear()
            self._write_and_sync(batch, dead)
        finally:
            for s in self._stores.values():
                self._floors[s.key] = s.floor
                s.close()
            self._stores.clear()
            self._spilled = 0
            if self._dead_file is not None:
                self._dead_file.close()
                self._dead_file = None


def _context(send: DecidedSend, priority: int | None) -> SendContext:
    """A ``SendContext`` from the engine's ``Send`` (any object with its fields)."""
    return SendContext(
        id=send.id,
        scenario=send.scenario,
        msisdn=send.msisdn,
        ts=send.ts,
        send_at=send.send_at,
        channel=send.channel,
        template=send.template,
        params=dict(send.params),
        priority=priority if priority is not None else getattr(send, "priority", 50),
    )
