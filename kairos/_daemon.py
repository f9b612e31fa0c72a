"""``kairos run``: the engine daemon — sources → event time → engine → outbox → channels, with snapshots.

One anyio task group on uvloop. Start-up, in order: the configuration is
validated, the scenarios compiled and bound to the reference data, the last
snapshot loaded (engine state, buffered events, source positions), the
outbox started (its journal and ledger remember every send accepted or made),
then the sources resume from their saved positions. Events after the snapshot
are read again, the same decisions are made with the same trigger ids, and
the outbox drops the repeats: nothing is lost and nothing is sent twice.

Snapshots are periodic and at shutdown; a snapshot is published only after
every send its state implies is durable in the outbox. SIGTERM/SIGINT: stop
reading, take the final snapshot, stop the outbox, exit 0.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import structlog

import dsl
from adapters import Channel, ChannelConfigError, ChannelLoadError, Feedback, discover_channels, wall_ms
from adapters._filechannel import FileChannel
from adapters._sources import FilePosition, FileTail, StdinSource
from engine import (
    BindError,
    Engine,
    Reference,
    ReferenceError,
    Send,
    SnapshotError,
    decode_snapshot,
    encode_snapshot,
    event_schema,
    event_union,
    restore_snapshot,
)
from engine._eventtime import EventTime
from engine._outbox import Outbox, OutboxConfig
from kairos._config import Config, ConfigError, FileSourceConfig, load_config
from kairos._http import HttpServer
from kairos._reload import AuditLog, Reloader, changes, versions
from kairos._snapfiles import SnapshotFiles
from plan import Plan

log = structlog.get_logger("kairos.daemon")

EXIT_OK, EXIT_INVALID = 0, 1

#: late events and bad lines are logged one by one up to this many, then every ``LOG_EVERY``-th
LOG_FIRST, LOG_EVERY = 20, 1000


class StartError(Exception):
    """The daemon cannot start; the message says what to fix."""


class DaemonState(msgspec.Struct):
    """What the daemon adds to the engine's snapshot."""

    positions: dict[str, FilePosition]
    buffered: msgspec.Raw  #: events waiting in the reorder buffer, as a msgpack list of the event union
    max_ts: int


class Daemon:
    """The running daemon's parts; ``run`` is the whole life."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.plan = compile_scenarios(config)
        try:
            self.reference = Reference.load(config.reference) if config.reference else Reference()
            self.engine = Engine(self.plan, self.reference, sink=self._on_send, tz=config.tz)
        except (BindError, ReferenceError) as e:
            raise StartError(str(e)) from None
        self.clock = EventTime(self.engine, config.time.allowed_lateness_ms, on_late=self._on_late)
        self.files = SnapshotFiles(config.snapshot_path, fork=config.snapshot.fork,
                                   keep_previous=config.snapshot.keep_previous)
        self.positions: dict[str, FilePosition] = {}
        self._decoder = msgspec.json.Decoder(event_union())
        self._event_list = msgspec.msgpack.Decoder(list[event_union()])  # type: ignore[misc]
        self._encoder = msgspec.msgpack.Encoder()
        self.decode_errors = 0
        self.events_by_type: dict[type, int] = {}
        self.sends_by: dict[tuple[str, str], int] = {}  # (scenario, channel) → sends accepted
        self.ready = False
        self.sends = 0
        self.duplicate_sends = 0
        self._last_input = time.monotonic()
        before = self._restore()
        self.outbox = Outbox(_outbox_config(config), self._channels())
        self.reloader = Reloader(self, AuditLog(config.audit_path), poll_s=config.reload.poll_ms / 1000)
        self.reloader.audit.write(changes(before, versions(self.plan), "start"))

    def swap(self, plan: Plan, engine: Engine) -> None:
        """A reload's new plan and engine take over (between two events)."""
        self.plan = plan
        self.engine = engine
        self.clock.engine = engine

    # --- start-up ------------------------------------------------------------

    def _restore(self) -> dict[str, str]:
        """Load the snapshot if there is one; returns the scenario versions it was taken under."""
        data, path = self.files.read(), self.files.path
        if data is None and self.files.prev.exists():
            data, path = self.files.prev.read_bytes(), self.files.prev
            log.warning("no snapshot but a previous one: a crash interrupted publishing; using it", path=str(path))
        if data is None:
            log.info("no snapshot: starting with empty state", path=str(self.files.path))
            return {}
        try:
            snap = decode_snapshot(data)
            report = restore_snapshot(self.engine, snap.engine)
            extra = msgspec.msgpack.decode(snap.extra, type=DaemonState)
        except (SnapshotError, msgspec.DecodeError) as e:
            raise StartError(
                f"{path}: {e}. Move the file away to start with empty state (sends already made are "
                "still never repeated: the outbox ledger remembers them)"
            ) from None
        self.positions = dict(extra.positions)
        self.clock.restore(self._event_list.decode(extra.buffered), extra.max_ts)
        log.info("snapshot loaded", path=str(path), taken_at=snap.taken_at, stream_time=self.engine.now,
                 kept=report.kept, dropped_changed=report.pattern_dropped, gates_dropped=report.gates_dropped,
                 withdrawn=report.withdrawn, buffered=len(self.clock._heap),
                 positions={k: v.offset for k, v in self.positions.items()})
        return report.versions

    def _channels(self) -> dict[str, Channel]:
        classes = {"file": FileChannel}
        try:
            classes.update(discover_channels())
        except ChannelLoadError as e:
            raise StartError(str(e)) from None
        out: dict[str, Channel] = {}
        for name, section in self.config.channels.items():
            section = dict(section)
            plugin = section.pop("plugin", name)
            cls = classes.get(plugin)
            if cls is None:
                raise StartError(f"channels.{name}: no channel plugin named {plugin!r}; "
                                 f"registered: {', '.join(sorted(classes))}")
            try:
                out[name] = cls.from_config(section, name=name, feedback=self._on_feedback)
            except ChannelConfigError as e:
                raise StartError(f"channels.{name}: {e}") from None
        return out

    # --- the hot side: synchronous, between awaits --------------------------

    def ingest(self, source: str, data: bytes, position: FilePosition | None) -> None:
        """A block of whole JSON lines from ``source``, then its position after them."""
        try:
            events = self._decoder.decode_lines(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            events = self._one_by_one(source, data)
        counts = self.events_by_type
        for ev in events:
            cls = ev.__class__
            counts[cls] = counts.get(cls, 0) + 1
        self.clock.push(events)
        if position is not None:
            self.positions[source] = position
        self._last_input = time.monotonic()

    def _one_by_one(self, source: str, data: bytes) -> list[Any]:
        decode = self._decoder.decode
        events = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                events.append(decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                self.decode_errors += 1
                n = self.decode_errors
                if n <= LOG_FIRST or n % LOG_EVERY == 0:
                    log.warning("bad input line skipped", source=source, error=str(e), line=line[:200].decode("utf-8", "replace"),
                                decode_errors=n)
        return events

    def _on_late(self, ev: Any, now: int) -> None:
        n = self.clock.late + 0
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.warning("late event not processed", msisdn=ev.msisdn, type=type(ev).__name__.lower(), ts=ev.ts,
                        stream_time=now, late_events=n)

    def _on_send(self, send: Send) -> None:
        if self.outbox.submit(send):
            self.sends += 1
            key = (send.scenario, send.channel)
            self.sends_by[key] = self.sends_by.get(key, 0) + 1
        else:
            self.duplicate_sends += 1  # decided again after a restart: already in the outbox

    def _on_feedback(self, fb: Feedback) -> None:
        """A channel's feedback re-enters as a ``feedback`` event."""
        self.clock.push([self._decoder.decode(msgspec.json.encode(fb))])

    # --- snapshots -------------------------------------------------------------

    def _produce(self) -> bytes:
        extra = DaemonState(dict(self.positions), msgspec.Raw(self._encoder.encode(self.clock.buffered())),
                            self.clock.max_ts)
        return encode_snapshot(self.engine, taken_at=wall_ms(), extra=self._encoder.encode(extra))

    async def snapshot(self, reason: str, *, fork: bool | None = None) -> None:
        """Capture the state now; publish it once the outbox holds every send it implies."""
        outbox = self.outbox

        def durable() -> Any:
            return outbox.durable(outbox.mark())

        info = await self.files.take(self._produce, durable, fork=fork)
        log.info("snapshot taken", reason=reason, pause_ms=round(info.pause_ms, 2),
                 duration_ms=round(info.duration_ms, 1), bytes=info.bytes, forked=info.forked,
                 stream_time=self.engine.now)

    # --- tasks ---------------------------------------------------------------

    async def _pump(self, name: str, source: Any) -> None:
        async for data, position in source.blocks():
            self.ingest(name, data, position)
            await anyio.lowlevel.checkpoint()  # let the outbox and the timers run between blocks
        log.info("source ended", source=name)

    async def _idle(self) -> None:
        cfg = self.config.time
        step = min(cfg.idle_after_ms, 250) / 1000
        while True:
            await anyio.sleep(step)
            if (time.monotonic() - self._last_input) * 1000 >= cfg.idle_after_ms:
                target = wall_ms() - cfg.allowed_lateness_ms
                if target > self.engine.now:
                    self.clock.advance_to(target)

    async def _periodic(self) -> None:
        interval = self.config.snapshot.interval_s
        while True:
            await anyio.sleep(interval)
            try:
                await self.snapshot("periodic")
            except OSError as e:
                log.error("snapshot failed; the previous one stays", error=str(e))

    async def _signals(self, stopping: anyio.Event, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reloader.reload("signal")
                    continue
                log.info("signal received: shutting down", signal=signal.Signals(signum).name)
                stopping.set()
                return

    def _sources(self) -> list[tuple[str, Any]]:
        out = []
        for s in self.config.sources:
            if isinstance(s, FileSourceConfig):
                out.append((s.name, FileTail(s.path, poll_s=s.poll_ms / 1000, start=self.positions.get(s.name),
                                             pattern=s.pattern)))
            else:
                out.append((s.name, StdinSource()))
        return out

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status."""
        stopping = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(self.outbox.run)
            async with anyio.create_task_group() as work:
                await work.start(self._signals, stopping)  # signals are ours before "ready" is said
                for name, source in self._sources():
                    work.start_soon(self._pump, name, source)
                if self.config.time.idle_advance:
                    work.start_soon(self._idle)
                if self.config.snapshot.interval_s > 0:
                    work.start_soon(self._periodic)
                if self.config.reload.watch:
                    work.start_soon(self.reloader.watch)
                if self.config.http.listen:
                    http = self.config.http
                    host, port = http.address
                    server = HttpServer(self, host, port, admin_token=http.admin_token, ingest_token=http.ingest_token)
                    await work.start(server.run)
                self.ready = True
                log.info("ready", scenarios=[s.name for s in self.plan.scenarios],
                         sources=[s.name for s in self.config.sources], pid=os.getpid())
                await stopping.wait()
                self.ready = False
                work.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await self.snapshot("shutdown", fork=False)
            self.outbox.stop()
        log.info("stopped", events=self.engine.events_in, late=self.clock.late, decode_errors=self.decode_errors,
                 sends=self.sends, repeated_decisions_dropped=self.duplicate_sends)
        return EXIT_OK


def compile_scenarios(config: Config) -> Plan:
    """The configured scenarios, checked against the configured channels."""
    try:
        return dsl.compile_paths([config.scenarios], event_schema(), frozenset(config.channels))
    except dsl.CheckError as e:
        raise StartError(str(e)) from None
    except OSError as e:
        raise StartError(f"scenarios: {e}") from None


def _outbox_config(config: Config) -> OutboxConfig:
    try:
        return msgspec.convert({**config.outbox, "directory": str(config.outbox_dir)}, OutboxConfig)
    except msgspec.ValidationError as e:
        raise StartError(f"outbox: {e}") from None


def configure_logging(level: str) -> None:
    """structlog JSON lines on standard error."""
    import logging

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def run_daemon(config_path: str | Path) -> int:
    """``kairos run --config FILE``: validate, start, run until a signal; returns the exit status."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        print(f"kairos run: {e}", file=sys.stderr)
        return EXIT_INVALID
    configure_logging(config.log.level)
    try:
        daemon = Daemon(config)
    except StartError as e:
        print(f"kairos run: {e}", file=sys.stderr)
        return EXIT_INVALID
    return anyio.run(daemon.run, backend="asyncio", backend_options={"use_uvloop": True})
