"""The delivery outbox: every decided send reaches its channel once, or the dead-letter file with a reason.

Each send the engine decides is handed to ``submit`` (by the daemon, the
engine's sink) — synchronous, never waits on a channel — and the outbox does
the rest in its own tasks: per-channel lanes with a rate limit (messages/s)
and a concurrency limit, retries with exponential backoff and jitter, and a
dead-letter file for sends that failed for good. Durable state, all in one
directory:

- ``journal.jsonl`` — every accepted send, appended at ``submit``. Only
  ``memory_limit`` pending sends are held in memory; the rest wait in the
  journal ("spilled") and are read back as memory frees up, and after a restart.
- ``ledger.log`` (its lines: ``_ledger``) — per trigger id: ``A`` an attempt
  is starting (made durable *before* the channel is called), ``R`` it did not
  deliver, ``D`` delivered, ``F`` dead-lettered; and ``H`` the floor. Delivered and dead-lettered ids are
  never sent again, across restarts. An ``A`` with no outcome after a crash
  means "outcome unknown": retried only for a channel whose peer drops
  repeated ids (``Channel.idempotent``), else dead-lettered — never sent twice.
- ``dead_letter.jsonl`` — one JSON line per send that failed for good.

Forgetting is in event time, never against the wall clock. Left alone, the
outbox remembers every id. Its owner (the daemon, after each published
snapshot) may say with ``advance_horizon`` that nothing kept can decide a
trigger before a stream time again; at the next compaction, ids whose trigger
time lies more than ``retention_ms`` before that horizon are forgotten, the
journal having been rewritten without them first, and the ledger records the
new floor (``H``). A later submit of an id below the floor that is not pending
is refused (``expired``): the outbox can no longer prove it was not sent.

Appends are fsynced in batches (group commit: whatever accumulated during the previous fsync);
both files are compacted at start-up and whenever one has grown by
``compact_bytes`` since the last compaction.
"""

from __future__ import annotations

import heapq
import os
import random
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

__all__ = ["ChannelLimits", "DeadLetter", "DecidedSend", "LaneStats", "Outbox", "OutboxConfig", "OutboxStats"]

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

    __slots__ = ("ctx", "attempts")

    def __init__(self, ctx: SendContext, attempts: int = 0) -> None:
        self.ctx = ctx
        self.attempts = attempts


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


class Outbox:
    """Takes decided sends from the engine and delivers them through channels, exactly once or dead-lettered."""

    # made by ``run`` (``_open``, the task group): declared here, so that "not opened yet" stays "not set"
    _journal: BinaryIO
    _ledger_file: BinaryIO
    _dead_file: BinaryIO
    _tg: anyio.abc.TaskGroup

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
        self._done: dict[str, int] = {}  # id -> trigger ts (delivered or dead-lettered)
        self._floor = 0  # ids with a trigger ts below it are forgotten (persisted as an ``H`` record)
        self._horizon: int | None = None  # nothing kept can decide a trigger before it (None: not told)
        self._journal_base = 0  # sizes right after the last compaction
        self._ledger_base = 0
        self._pending: set[str] = set()
        self._in_flight: dict[str, _Entry] = {}
        self._in_memory = 0
        self._spilled = 0
        self._cursor = 0  # journal offset: entries before it are in memory or done
        self._seq = 0
        self._stats = OutboxStats()
        self._state = "new"
        # group commit
        self._ledger_buf: list[bytes] = []
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

    # ------------------------------------------------------------------ the sender's side

    def submit(self, send: SendContext | DecidedSend, *, priority: int | None = None) -> bool:
        """Accept one send (a ``SendContext`` or the engine's ``Send``); False if its id was already accepted.

        ``priority`` orders a ``Send``'s lane (default 50); a ``SendContext`` carries its own."""
        if self._state not in ("running", "stopping"):
            raise RuntimeError(f"outbox is {self._state}: submit only while it runs")
        ctx = send if isinstance(send, SendContext) else _context(send, priority)
        if ctx.id in self._pending or ctx.id in self._done:
            self._stats.duplicates += 1
            return False
        if ctx.ts < self._floor:
            self._expire(ctx)
            return False
        self._stats.submitted += 1
        self._pending.add(ctx.id)
        self._journal.write(_ENCODE(ctx) + b"\n")
        self._request_flush()
        lane = self._lanes.get(ctx.channel)
        if lane is None:
            self._dead_letter(_Entry(ctx), f"no channel named {ctx.channel!r} is configured")
        elif self._spilled == 0 and self._in_memory < self.config.memory_limit:
            self._cursor = self._journal.tell()
            self._to_memory(lane, _Entry(ctx))
        else:
            self._spilled += 1
        self._notify()
        return True

    def _expire(self, ctx: SendContext) -> None:
        """Refuse a send below the floor: it may have been sent before its id was forgotten."""
        self._stats.expired += 1
        if self._stats.expired == 1:
            log.warning("sends refused: their trigger time is below the outbox floor, so whether they were "
                        "already sent is no longer known (counted as expired; a summary follows at stop)",
                        floor=self._floor, ts=ctx.ts, scenario=ctx.scenario, channel=ctx.channel)

    @property
    def expired(self) -> int:
        """Submits refused so far because their trigger time was below the floor (cheap: no statistics copy)."""
        return self._stats.expired

    @property
    def floor(self) -> int:
        """Ids with a trigger time below this are no longer remembered; such submits are refused."""
        return self._floor

    def advance_horizon(self, horizon: int) -> None:
        """Nothing kept (snapshots, journal) can decide a trigger with a time before ``horizon`` again.

        Called by the owner of the state that re-submits after a restart (the daemon, after each
        published snapshot). From the next compaction on, ids more than ``retention_ms`` before it
        may be forgotten. Without a call the outbox never forgets an id.
        """
        self._horizon = horizon

    def statistics(self) -> OutboxStats:
        """A snapshot of the counts."""
        s = msgspec.structs.replace(self._stats)
        s.pending = len(self._pending)
        s.in_memory = self._in_memory
        s.spilled = self._spilled
        s.in_flight = len(self._in_flight)
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

        The daemon publishes a state snapshot only once the sends that state implies are durable.
        """
        return self._request_flush()

    async def durable(self, mark: int) -> None:
        """Wait until everything accepted before ``mark`` is fsynced."""
        await self._durable(mark)

    def stop(self) -> None:
        """Ask ``run`` to finish: sends in flight get ``close_timeout_s``, pending ones stay for the next start."""
        self._stop.set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the files, start the channels and lanes; ``await tg.start(outbox.run)`` returns when it accepts sends."""
        self._make_events()
        self._open()  # start-up: reading the files blocks briefly, before anything else runs
        self._dirty.set()  # outcomes decided while opening go to disk at the first flush
        try:
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
            self._in_flight[entry.ctx.id] = entry
            self._tg.start_soon(self._attempt, lane, entry)
            self._notify()

    async def _attempt(self, lane: _Lane, entry: _Entry) -> None:
        """One try of one send: render, mark durable, call the channel, act on the outcome."""
        ctx = entry.ctx
        try:
            if ctx.id in self._done:  # the ledger is checked before every send
                return
            entry.attempts += 1
            try:
                text = ctx.text or (self.templates.render(ctx.template, ctx.channel, ctx.params) if self.templates else "")
            except TemplateError as exc:
                self._dead_letter(entry, f"template: {exc}")
                return
            attempt_ctx = msgspec.structs.replace(ctx, text=text, attempt=entry.attempts)
            await self._durable(self._ledger(b"A", ctx.id))
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
            self._in_flight.pop(ctx.id, None)
            lane.slots.release()
            if ctx.id not in self._pending:  # settled for good: memory is free
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
        ctx = entry.ctx
        if outcome.status == "delivered":
            self._ledger(b"D", ctx.id, ctx.ts)
            self._done[ctx.id] = ctx.ts
            self._pending.discard(ctx.id)
            self._stats.delivered += 1
            lane.stats.delivered += 1
        elif outcome.status == "retry" and entry.attempts < self.config.max_attempts:
            self._ledger(b"R", ctx.id)
            self._stats.retried += 1
            lane.stats.retried += 1
            delay = self._backoff_ms(entry.attempts)
            if outcome.retry_after_ms:
                delay = max(delay, outcome.retry_after_ms)
            self._seq += 1
            lane.push(self.clock() + delay, self._seq, entry)
        elif outcome.status == "retry":
            self._dead_letter(entry, f"gave up after {entry.attempts} attempts; last: {outcome.reason}")
        else:
            self._dead_letter(entry, outcome.reason or "failed")

    def _backoff_ms(self, attempts: int) -> int:
        """Exponential backoff with equal jitter: half the doubled delay, plus a random share of the other half."""
        ceiling = min(self.config.backoff_max_ms, self.config.backoff_base_ms << (attempts - 1))
        return ceiling // 2 + int(self._rng.random() * (ceiling - ceiling // 2))

    def _dead_letter(self, entry: _Entry, reason: str) -> None:
        """Give a send up for good, with its reason, in the dead-letter file."""
        ctx = entry.ctx
        letter = DeadLetter(ctx.id, ctx.channel, reason, entry.attempts, self.clock(), ctx)
        self._dead_buf.append(_ENCODE(letter) + b"\n")
        self._ledger(b"F", ctx.id, ctx.ts)
        self._done[ctx.id] = ctx.ts
        self._pending.discard(ctx.id)
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
        """Read spilled sends back from the journal while memory has room."""
        if self._spilled == 0 or self._in_memory >= self.config.memory_limit or self._state != "running":
            return
        self._journal.flush()
        with open(self._journal_path, "rb") as f:
            f.seek(self._cursor)
            while self._spilled and self._in_memory < self.config.memory_limit:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                self._cursor += len(line)
                ctx = _SEND_DECODER.decode(line)
                if ctx.id not in self._pending or ctx.id in self._in_flight:
                    continue
                self._spilled -= 1
                lane = self._lanes.get(ctx.channel)
                if lane is None:
                    self._dead_letter(_Entry(ctx), f"no channel named {ctx.channel!r} is configured")
                else:
                    self._to_memory(lane, _Entry(ctx))

    def _notify(self) -> None:
        if self._state == "new":
            return
        self._changed.set()
        self._changed = anyio.Event()

    # ------------------------------------------------------------------ durability

    def _ledger(self, kind: bytes, trigger_id: str, ts: int = 0) -> int:
        """Queue one ledger record for the next group commit; returns its generation."""
        self._ledger_buf.append(record(kind, trigger_id, ts))
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
            ledger, dead = b"".join(self._ledger_buf), b"".join(self._dead_buf)
            self._ledger_buf.clear()
            self._dead_buf.clear()
            self._journal.flush()
            await anyio.to_thread.run_sync(self._write_and_sync, ledger, dead)
            self._gen_synced = generation
            self._synced.set()
            self._synced = anyio.Event()
            self._maybe_compact()

    def _write_and_sync(self, ledger: bytes, dead: bytes) -> None:
        """Append and fsync (runs in a worker thread)."""
        if ledger:
            self._ledger_file.write(ledger)
            self._ledger_file.flush()
            os.fsync(self._ledger_file.fileno())
        if dead:
            self._dead_file.write(dead)
            self._dead_file.flush()
            os.fsync(self._dead_file.fileno())
        os.fsync(self._journal.fileno())

    def _open(self) -> None:
        """Load the ledger and journal, resolve attempts a crash interrupted, compact, and open for appending."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._journal_path = self._dir / "journal.jsonl"
        self._ledger_path = self._dir / "ledger.log"
        ledger = read_ledger(self._ledger_path)
        attempted = ledger.in_doubt
        self._done, self._floor = ledger.done, ledger.floor
        # nothing is forgotten here: an id leaves memory only at a compaction that also leaves it out of the
        # journal (a journal line below the floor is therefore a send still pending, never a forgotten one)
        pending: list[SendContext] = []
        for line in complete_lines(self._journal_path):
            try:
                ctx = _SEND_DECODER.decode(line)
            except msgspec.DecodeError:
                log.error("unreadable journal line skipped", line=line[:200])
                continue
            if ctx.id in self._done or ctx.id in self._pending:
                continue
            self._pending.add(ctx.id)
            pending.append(ctx)
        self._dead_file = open(self._dir / "dead_letter.jsonl", "ab")  # noqa: SIM115 - closed in _close_files
        interrupted = []
        for ctx in pending:
            if ctx.id in attempted:
                lane = self._lanes.get(ctx.channel)
                if lane is None or not lane.channel.idempotent:
                    interrupted.append(ctx)
        for ctx in interrupted:
            self._dead_letter(_Entry(ctx, 1), "outcome unknown: the outbox stopped while this send was in flight")
        if self._dead_buf:  # on disk before the ledger and journal drop these sends: a crash now loses no letter
            self._dead_file.write(b"".join(self._dead_buf))
            self._dead_file.flush()
            os.fsync(self._dead_file.fileno())
            self._dead_buf.clear()
        pending = [ctx for ctx in pending if ctx.id in self._pending]
        self._rewrite_ledger()  # first: the outcomes decided just now are durable before the journal drops them
        self._rewrite_journal(pending)
        self._spilled = len(pending)
        self._cursor = 0
        if self._floor:
            log.info("outbox opened", floor=self._floor, remembered=len(self._done), pending=len(pending))

    def _rewrite_journal(self, sends: list[SendContext]) -> None:
        """Replace the journal with just these sends (atomic rename), and reopen it for appending."""
        if getattr(self, "_journal", None) is not None:
            self._journal.close()
        atomic_write(self._journal_path, b"".join(_ENCODE(c) + b"\n" for c in sends))
        self._journal = open(self._journal_path, "ab", buffering=1 << 20)  # noqa: SIM115
        self._journal_base = self._journal.tell()

    def _rewrite_ledger(self) -> None:
        """Replace the ledger with the remembered outcomes (and attempts in flight), and reopen it."""
        if getattr(self, "_ledger_file", None) is not None:
            self._ledger_file.close()
        lines = [record(b"H", "", self._floor)] if self._floor else []
        lines += [record(b"D", k, ts) for k, ts in self._done.items()]
        lines += [record(b"A", k) for k in self._in_flight]
        atomic_write(self._ledger_path, b"".join(lines) + b"".join(self._ledger_buf))
        self._ledger_buf.clear()
        self._ledger_file = open(self._ledger_path, "ab")  # noqa: SIM115
        self._ledger_base = self._ledger_file.tell()

    def _maybe_compact(self) -> None:
        """Compact once the journal or the ledger has grown by ``compact_bytes`` since the last time."""
        limit = self.config.compact_bytes
        if self._journal.tell() - self._journal_base > limit or self._ledger_file.tell() - self._ledger_base > limit:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the journal with just the pending sends, then the ledger, forgetting what the horizon allows.

        The journal can be rewritten only while nothing is spilled (the pending sends are all in
        memory), and ids are forgotten only together with that rewrite: the new journal holds none of
        them, and the ledger is rewritten after it (a crash in between leaves the old ledger: safe).
        """
        if self._spilled:
            # the journal cannot be rewritten while sends wait in it: compact the ledger alone (the outcomes
            # stay; attempts and retries are dropped), and look again once either file grew by compact_bytes
            self._journal_base = self._journal.tell()
            self._rewrite_ledger()
            return
        sends = [e.ctx for lane in self._lanes.values() for (_, _, _, e) in lane.heap if e.ctx.id in self._pending]
        sends += [e.ctx for e in self._in_flight.values() if e.ctx.id in self._pending]
        self._rewrite_journal(sends)
        self._cursor = self._journal.tell()
        if self._horizon is not None and self._horizon - self.config.retention_ms > self._floor:
            self._floor = floor = self._horizon - self.config.retention_ms
            before = len(self._done)
            self._done = {k: ts for k, ts in self._done.items() if ts >= floor}
            log.info("outbox forgot old ids", floor=floor, forgotten=before - len(self._done),
                     remembered=len(self._done))
        self._rewrite_ledger()

    def _close_files(self) -> None:
        """Write what is buffered, fsync, close."""
        if not hasattr(self, "_ledger_file"):
            return
        if self._stats.expired:
            log.warning("sends refused as expired: trigger time below the outbox floor", expired=self._stats.expired,
                        floor=self._floor)
        try:
            self._journal.flush()
            self._write_and_sync(b"".join(self._ledger_buf), b"".join(self._dead_buf))
            self._ledger_buf.clear()
            self._dead_buf.clear()
        finally:
            for f in (self._journal, self._ledger_file, self._dead_file):
                f.close()


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
