"""Replay on several cores: the parent splits the input once, workers decode and run their share.

Subscribers are spread over worker processes by a stable hash, ``shard_of``
(CRC-32 of the msisdn), so each subscriber's state lives in exactly one
process. The parent reads the input in blocks and decodes of each line only
its ts and msisdn (msgspec skips the other fields: a fraction of a full
decode). It judges lateness against the stream's time over all events, as one
engine would, reports late lines and lines without a valid ts and msisdn
itself, and sends every other raw line to its subscriber's worker: per worker
and block, one frame over a pipe with the stream's time, the block's first
line number and shard vector (which worker got each line) and the worker's
lines joined by newlines. A worker fully decodes its frames with the
event-union decoder, feeds its engine, reports the lines only the full decode
rejects (an unknown type, a field of the wrong type) by their global line
numbers, and at the end moves its time to the stream's last ts, so deadlines
fire as they would in one engine. Each frame also carries the stream's first
ts, where a worker arms its schedules (``Engine.started``): one engine chooses
the first instant there, and a worker whose subscribers come later, or only in
tags.jsonl, must not skip the instants before its own first event. Scenario state is per subscriber, so each
worker decides for its subscribers exactly what one engine decides; the
parent merges the workers' outputs in (ts, id) order and all problems in line
order, which gives one worker's output byte for byte and one worker's report.
Pipes are enlarged to hold a few frames and a write blocks when a worker falls
that far behind, so memory stays flat on any input size. Problems reach
``on_problem`` at the end, in line order.

A policy's channel ``capacity`` (one count for every subscriber) holds over
the workers only when every engine the factory builds shares one
``CapacityGrants`` store (``kairos replay`` gives them a temporary folder);
then the count is exact, but when it binds, which triggers get a period's last
places follows the order the workers reach them, so the output may differ
from one worker's there. Without a store such a plan is refused.

One difference from a single engine remains, by design: a line with a valid
ts and msisdn that the full decode rejects (an unknown type, a bad field)
still moves the stream's time in the parent, so a later line older than it
is judged late, where one engine (which never saw its ts) would process it;
likewise such a line can confirm or deny a time jump the parent screens
(``engine._screen``), which one engine decides without it.

Workers are forked: they inherit the compiled plan (its functions are not
picklable) and the reference data, shared copy-on-write.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import heapq
import itertools
import multiprocessing
import multiprocessing.connection
import signal
import struct
import tempfile
import typing
import zlib
from pathlib import Path
from typing import IO, Any
from collections.abc import Callable, Iterable, Iterator

import msgspec

from kairos.engine._engine import Engine, Send
from kairos.engine._events import Event, Msisdn, Timestamp, event_union
from kairos.engine._replay import (InputProblem, OrderedWriter, ReplayReport, TagWriter, _explain, _release,
                                   line_blocks, measures_of, merge_measures, merge_tag_files, problem_order, replay)
from kairos.engine._jump_defaults import DEFAULT_MAX_JUMP_MS
from kairos.engine._screen import WILD_END, JumpScreen, wild_reason
from kairos.engine._settle import Settler, settle

EngineFactory = Callable[[Callable[[Send], None]], Engine]
Connection = multiprocessing.connection.Connection

#: Bytes of input per worker and block: one frame per worker and block, large enough that a
#: frame's fixed cost (a write, a read, a header) vanishes, small enough to stay in cache.
BATCH_BYTES = 256 * 1024
#: A worker's pipe holds this much, so the parent runs ahead of a busy worker by a few frames.
PIPE_BYTES = 1024 * 1024

#: A frame's header: the stream's time after the frame's lines, the block's first line number,
#: how many of its lines the frame holds (−1: the end of the input), how many the block has
#: and the stream's first ts (``Router.began``).
_HEAD = struct.Struct("<qqqqq")
#: In a block's shard vector: a line that goes to no worker (blank, malformed or late).
NOBODY = 255
# RecursionError: JSON nested ~1000 deep
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


class _Route(msgspec.Struct, gc=False):
    """What the parent decodes of a line: enough to judge lateness and pick the worker.
    The constraints are ``Event``'s, so a line it refuses one engine refuses too."""

    ts: Timestamp
    msisdn: Msisdn


class Batch(typing.NamedTuple):
    """A worker's lines of one block, raw and joined by ``\\n``, and where they were.

    ``shards`` holds the worker of each line of the block (``NOBODY`` for lines
    that go to none), so a worker finds its lines' global numbers, ``first`` + index,
    only when it needs them: to report a line it cannot decode.
    """

    now: int  # the stream's time (the last ts over all events) after the block
    first: int
    count: int  # type: ignore[assignment]  # shadows tuple.count, which nothing calls on a Batch
    shards: bytes
    lines: bytes
    began: int = -(2**62)  # the stream's first ts (``Router.began``; the start value: no event yet)

    def numbers(self, w: int) -> list[int]:
        """The global line numbers of worker ``w``'s lines, in order."""
        first = self.first
        return [first + i for i, s in enumerate(self.shards) if s == w]


def shard_of(msisdn: str, workers: int) -> int:
    """The worker (0 … workers−1) that owns ``msisdn``: CRC-32 of its UTF-8 bytes.

    Stable across processes, runs and machines (unlike Python's salted ``hash``),
    so a daemon and a replay spread the same subscribers the same way.
    """
    return zlib.crc32(msisdn.encode()) % workers


def replay_workers(
    engine_factory: EngineFactory,
    events: str | Path,
    out: IO[bytes],
    *,
    workers: int,
    on_problem: Callable[[InputProblem], None] | None = None,
    keep_problems: int = 100,
    max_jump: int | None = DEFAULT_MAX_JUMP_MS,
    lateness: int = 0,
    tags_out: IO[bytes] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """``replay`` over ``workers`` processes; the output equals one worker's, byte for byte.

    ``progress`` as in ``replay``: the lines and bytes the parent has routed so far.

    ``tags_out``: the tag writes, each worker's merged in (ts, msisdn) order, as one ``replay`` writes them.

    ``max_jump`` as in ``replay`` (the parent screens); ``lateness`` needs one worker (the
    parent routes lines in file order, it does not sort them).

    ``events`` must be a file. With ``workers == 1`` this is plain ``replay`` in this
    process. Input problems are kept until the end, then given to ``on_problem`` in
    line order (the workers find theirs in parallel). Raises ``RuntimeError`` if a
    worker dies; an error or interrupt in this process stops every worker.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1:
        _check_partitionable(engine_factory(_discard))
        if lateness:
            raise ValueError("an allowed lateness sorts events in one process: use --workers 1, or a log "
                             "partitioned by subscriber (kairos split), whose partitions are sorted apart")
    if workers == 1:
        with open(events, "rb") as stream:
            return replay(engine_factory, stream, out, on_problem=on_problem, keep_problems=keep_problems,
                          max_jump=max_jump, lateness=lateness, tags_out=tags_out, progress=progress)
    router = Router(workers, max_jump)
    with tempfile.TemporaryDirectory(prefix="kairos-workers-") as tmp, open(events, "rb") as stream:
        parts = [Path(tmp) / f"part-{w}.jsonl" for w in range(workers)]
        tag_parts = None if tags_out is None else [Path(tmp) / f"tags-{w}.jsonl" for w in range(workers)]
        procs: list[Any] = []
        try:
            # the plan and reference data, frozen out of the collector's reach: the workers'
            # collections then neither walk them nor write to (and so copy) their pages
            gc.freeze()
            try:
                feeds, results = _start(engine_factory, parts, procs, tag_parts)
            finally:
                gc.unfreeze()
            try:
                for frames in router.route(stream):
                    for feed, frame in zip(feeds, frames):  # noqa: B905 (one frame per feed)
                        if frame is not None:
                            feed.send_bytes(frame)
                    if progress is not None:
                        progress(router.lines, stream.tell())
                end = _HEAD.pack(router.now, router.lines + 1, -1, 0, router.began)
                for feed in feeds:
                    feed.send_bytes(end)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a worker died: the others see their pipes close, and the error is raised below
            for feed in feeds:
                feed.close()
            reports = [_report(result) for result in results]
            for p in procs:
                p.join()
        except BaseException:  # an error or Ctrl-C here: no worker may outlive the parent
            stop_all(procs)
            raise
        crashed = [p.name for p in procs if p.exitcode != 0]
        if crashed or None in reports:
            raise_failed(crashed or [p.name for p, r in zip(procs, reports) if r is None])  # noqa: B905 (one report per process)
        by_scenario = _merge(parts, out)
        if tag_parts is not None and tags_out is not None:
            merge_tag_files(tag_parts, tags_out)
    done = [r for r in reports if r is not None]
    problems = sorted(itertools.chain(router.problems, *(r.problems for r in done)), key=problem_order)
    if on_problem is not None:
        for p in problems:
            on_problem(p)
    return ReplayReport(
        lines=router.lines,
        events=sum(r.events for r in done),
        failed=sum(r.failed for r in done),
        failed_deadlines=sum(r.failed_deadlines for r in done),
        malformed=router.malformed + sum(r.malformed for r in done),
        late=router.late,
        sends=sum(r.sends for r in done),
        deferred=sum(r.deferred for r in done),
        sends_by_scenario=by_scenario,
        problems=problems[:keep_problems],
        trigger_loops=sum(r.trigger_loops for r in done),
        wild=router.wild,
        duplicates=sum(r.duplicates for r in done),
        tag_writes=sum(r.tag_writes for r in done),
        measures=merge_measures([r.measures for r in done]),
    )



def _start(engine_factory: EngineFactory, parts: list[Path], procs: list[Any], tag_parts: list[Path] | None = None,
           ) -> tuple[list[Connection], list[Connection]]:
    """Fork one worker per part file (appended to ``procs`` as they start); returns the
    pipes that feed them and the pipes their reports come back on. ``tag_parts``: each worker's
    file of tag writes (None: the tag writes are not wanted)."""
    ctx = multiprocessing.get_context("fork")
    feeds: list[Connection] = []
    results: list[Connection] = []
    for w, part in enumerate(parts):
        receive, feed = ctx.Pipe(duplex=False)
        result, report = ctx.Pipe(duplex=False)
        _enlarge(feed)
        tag_part = None if tag_parts is None else tag_parts[w]
        p = ctx.Process(target=_worker, args=(engine_factory, receive, w, part, report, [*feeds, feed], tag_part,
                                              len(parts)),
                        name=f"kairos-worker-{w}")
        p.start()
        procs.append(p)
        receive.close()
        report.close()
        feeds.append(feed)
        results.append(result)
    return feeds, results


def stop_all(procs: list[Any]) -> None:
    """Terminate the workers still running and reap them all: none may outlive the parent."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join()


def raise_failed(names: list[str]) -> typing.NoReturn:
    """The error for workers that died or sent no report (their own traceback went to stderr)."""
    raise RuntimeError(f"replay worker(s) {', '.join(names)} failed; see the error above")


def _report(result: Connection) -> ReplayReport | None:
    """A worker's report, or None if it died without one."""
    with result:
        try:
            return msgspec.msgpack.decode(result.recv_bytes(), type=ReplayReport)
        except EOFError:
            return None


def _enlarge(conn: Connection) -> None:
    """Let the pipe hold a few frames (Linux); elsewhere it keeps the system's size."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(conn.fileno(), setsize, PIPE_BYTES)


class Router:
    """The parent's share of the work: splits JSON lines among ``workers`` by subscriber.

    Decodes of each line only its ts and msisdn, judges lateness against the
    stream's time over all lines, screens time jumps as one replay does
    (``engine._screen``: a block whose lines are in order and within ``max_jump``
    of the stream's time costs one comparison), and keeps the problems it finds
    (late lines, wild timestamps and lines without a valid ts and msisdn), in the
    full decoder's wording. A jump the end of a block leaves undecided is carried,
    with the lines after it, into the next block.
    """

    def __init__(self, workers: int, max_jump: int | None = DEFAULT_MAX_JUMP_MS) -> None:
        if not 1 <= workers < NOBODY:
            raise ValueError(f"workers must be from 1 to {NOBODY - 1}, not {workers}")
        self.workers = workers
        self.now = _START  # the stream's time: the largest ts so far, as in Engine
        #: the ts of the first line routed, where one engine arms its schedules (``_START``: none yet); each
        #: frame carries it, so a worker whose subscribers come later, or never, arms them there too
        self.began = _START
        self.lines = 0
        self.malformed = 0
        self.late = 0
        self.wild = 0
        self.problems: list[InputProblem] = []
        self.max_jump = max_jump
        self._screen = None if max_jump is None else JumpScreen(max_jump)
        self._route = msgspec.json.Decoder(_Route)
        self._full = msgspec.json.Decoder(event_union())

    def route(self, stream: IO[bytes], block_bytes: int | None = None) -> Iterator[list[bytes | None]]:
        """Per block of input, one frame per worker (``None``: no lines for it this time).

        This loop is the part of a replay that does not split over workers, so its
        per-line work is a few C calls: one decode, one split, a CRC and an append.
        """
        decode_lines = self._route.decode_lines
        crc32 = zlib.crc32
        n = self.workers
        pack = _HEAD.pack
        jump = self.max_jump if self.max_jump is not None else 2**63
        blocks = line_blocks(stream, block_bytes or BATCH_BYTES * n)
        block = next(blocks, None)
        carry = b""
        while block is not None:
            following = next(blocks, None)
            if carry:
                block = carry + block
                carry = b""
            final = following is None
            lines = block.split(b"\n")
            if not lines[-1]:
                lines.pop()  # after the block's last newline; else the input's last line, without one
            count = len(lines)
            first = self.lines + 1
            self.lines += count
            try:
                routes = decode_lines(block)
            except _DECODE_ERRORS:
                routes = None
            if routes is not None and len(routes) == count and b"\r" not in block:  # \r: see EventReader
                stamps = [r.ts for r in routes]
                if stamps[0] >= self.now and stamps[-1] - self.now <= jump and sorted(stamps) == stamps:
                    if self.now == _START:
                        self.began = stamps[0]
                    self.now = stamps[-1]
                    shards = [crc32(r.msisdn.encode()) % n for r in routes]  # shard_of, inlined
                else:
                    shards = self._slow(lines, routes, first, final)
            else:
                # lines split on \n only, numbered as EventReader numbers them
                shards = self._slow(lines, None, first, final)
            if len(shards) < len(lines):  # a jump still undecided: its lines go round again with the next block
                carry = b"\n".join(lines[len(shards):]) + b"\n"
                self.lines = first + len(shards) - 1
                lines = lines[:len(shards)]
            block = following
            if not lines:
                continue
            mine: list[list[bytes]] = [[] for _ in range(n)]
            add = [m.append for m in mine]
            for line, w in zip(lines, shards):  # noqa: B905 (hot path; one shard per line)
                if w != NOBODY:
                    add[w](line)
            vector = bytes(shards)
            now = self.now
            began = self.began
            yield [b"".join((pack(now, first, len(m), len(vector), began), vector, b"\n".join(m))) if m else None
                   for m in mine]

    def _slow(self, lines: list[bytes], routes: list[Any] | None, first: int, final: bool) -> list[int]:
        """A block out of order, holding a jump, or a blank or bad line, routed line by line as one
        replay would take it: blank lines skipped, bad ones reported with their line number, jumps
        screened. Returns the shards of the lines decided; fewer than the block's when a jump is
        still undecided at its end (not ``final``): those lines are the next block's."""
        shards = [NOBODY] * len(lines)
        screen = self._screen
        if screen is not None:
            screen.now = None if self.now == _START else self.now
        decode = self._route.decode
        for i, line in enumerate(lines):
            if routes is not None:
                r = routes[i]
            else:
                if not line.strip():
                    continue
                try:
                    r = decode(line)
                except _DECODE_ERRORS as e:
                    self._malformed(first + i, line, e)
                    continue
            if screen is None:
                self._take(i, r, lines, shards, first)
                continue
            through, wild = screen.screen(r.ts, (i, r))
            for j, _ in wild:
                self._wild(first + j, lines[j])
            for j, rj in through:
                self._take(j, rj, lines, shards, first)
        if screen is not None and screen.held:
            if not final:
                cut = screen.held[0][1][0]
                screen.held.clear()
                while self.problems and self.problems[-1].line >= first + cut:  # found again next time
                    if self.problems.pop().reason.endswith(WILD_END):  # a jump held inside the first one
                        self.wild -= 1
                    else:
                        self.malformed -= 1
                return shards[:cut]
            through, wild = screen.end()
            for j, _ in wild:  # pragma: no cover - without ``until`` the end lets a held jump through
                self._wild(first + j, lines[j])
            for j, rj in through:
                self._take(j, rj, lines, shards, first)
        return shards

    def _take(self, i: int, r: Any, lines: list[bytes], shards: list[int], first: int) -> None:
        """A line the screen let through: late, or its worker's."""
        if r.ts < self.now:
            self._judge_late(first + i, lines[i], self.now)
            return
        if self.now == _START:
            self.began = r.ts
        self.now = r.ts
        shards[i] = shard_of(r.msisdn, self.workers)

    def _malformed(self, n: int, line: bytes, e: Exception) -> None:
        """A line without a valid ts and msisdn: reported with the full decoder's message,
        which names the first bad field in the line, as one worker's report does."""
        try:
            self._full.decode(line)
        except _DECODE_ERRORS as full:
            e = full
        self.malformed += 1
        self.problems.append(InputProblem(n, _explain(e)))

    def _decoded(self, n: int, line: bytes) -> Event | None:
        """The line fully decoded, or None after reporting it malformed (one replay never sees the ts of
        a line its full decoder rejects, so such a line is malformed before it can be wild or late)."""
        try:
            return self._full.decode(line)  # type: ignore[no-any-return]  # a union built at run time
        except _DECODE_ERRORS as e:
            self.malformed += 1
            self.problems.append(InputProblem(n, _explain(e)))
            return None

    def _wild(self, n: int, line: bytes) -> None:
        """A wild timestamp — unless the full decode rejects the line."""
        ev = self._decoded(n, line)
        if ev is not None:
            self.wild += 1
            self.problems.append(InputProblem(n, wild_reason(ev.ts, self.max_jump)))  # type: ignore[arg-type]  # only a max_jump makes a line wild

    def _judge_late(self, n: int, line: bytes, now: int) -> None:
        """An event older than the stream's time: late, unless the full decode rejects it."""
        ev = self._decoded(n, line)
        if ev is not None:
            self.late += 1
            self.problems.append(InputProblem(n, f"event at ts {ev.ts} is older than the stream's time {now}; "
                                                 "the file must be sorted by ts"))


#: the stream's time before its first event (as ``Engine.now`` starts)
_START = -(2**62)


def _check_partitionable(engine: Engine, apart: str = "workers",
                         remedy: str = "run this plan with --workers 1") -> None:
    """Refuse a plan whose decisions depend on more than one subscriber's state, unless shared.

    Every pattern and gate is per subscriber, and so are the policy's caps and
    arbitration; a channel capacity (so many calls a day for everybody) is not:
    split over workers (``apart``) it holds only when the engines take its places
    from one shared store (``Engine(capacity=...)``), else each would grant it anew.
    """
    policy = engine.plan.policy
    if policy is not None and policy.capacity and (engine.policy is None or engine.policy.grants is None):
        raise ValueError(
            f"the policy limits a channel's capacity across all subscribers, which {apart} share only "
            f"through a capacity store given to every engine; {remedy}"
        )


def _discard(_: object) -> None:
    return None


def _worker(
    engine_factory: EngineFactory,
    receive: Connection,
    w: int,
    part: Path,
    result: Connection,
    inherited: list[Connection],
    tag_part: Path | None = None,
    workers: int = 1,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    for feed in inherited:  # the parent's ends of the pipes: held open here, they would hide its exit
        feed.close()
    with open(part, "wb") as out, contextlib.ExitStack() as stack:
        tags = None if tag_part is None else stack.enter_context(open(tag_part, "wb"))
        try:
            report = replay_share(engine_factory, _frames(receive), out, w, tags, workers)
        except _ParentGone:
            return
    result.send_bytes(msgspec.msgpack.encode(report))
    result.close()


class _ParentGone(Exception):
    """The parent closed the pipe before the end of the input (it stops on a failure)."""


def _frames(receive: Connection) -> Iterator[Batch]:
    """The batches a worker receives, up to the end frame."""
    head = _HEAD.size
    while True:
        try:
            frame = receive.recv_bytes()
        except EOFError:
            raise _ParentGone from None
        now, first, count, total, began = _HEAD.unpack_from(frame)
        if count < 0:
            yield Batch(now, first, 0, b"", b"", began)
            return
        yield Batch(now, first, count, frame[head:head + total], frame[head + total:], began)


def replay_share(engine_factory: EngineFactory, batches: Iterable[Batch], out: IO[bytes], w: int,
                 tags_out: IO[bytes] | None = None, workers: int = 1) -> ReplayReport:
    """Worker ``w``'s replay of the lines a ``Router`` sent it, in order; sends go to ``out``.

    Lines the full decoder rejects are reported with their global line numbers
    (every one: the parent merges and trims); at the end the engine's time moves to
    the last batch's stream time, where one engine's time would stand; schedules are armed at the
    stream's first ts (``Batch.began``), where one engine arms them. ``lines`` is
    the number of lines received; ``late`` is always 0 (the parent judged lateness).
    """
    problems: list[InputProblem] = []
    writer = OrderedWriter(out)
    engine = engine_factory(writer)
    if engine.universe is not None and workers > 1:  # a schedule visits the tag rows of this worker's shard
        engine.universe.only = lambda m: shard_of(m, workers) == w
    holds = engine.holds_sends  # a policy holding sends for arbitration: write in order as they are released
    tags = None if tags_out is None else TagWriter(tags_out)
    if tags is not None:
        engine.tag_sink = tags
    if holds:
        writer.reorder()
        if tags is not None:  # a held send's trigger event writes at its own, earlier time
            tags.reorder()
    decoder = msgspec.json.Decoder(event_union())
    decode_lines = decoder.decode_lines
    now = engine.now
    lines = malformed = 0
    numbers: list[int] | None = None  # the global line numbers of the events fed (found when one fails)
    batch = Batch(now, 0, 0, b"", b"")

    def failed(i: int | None, ev: Event | None, exc: BaseException) -> None:
        nonlocal numbers
        reason = engine.describe_fault(exc)
        if i is None:
            problems.append(InputProblem(0, reason, what="deadline", ts=engine.now))
            return
        if numbers is None:
            numbers = batch.numbers(w)
        problems.append(InputProblem(numbers[i], reason, what="event"))

    engine.on_fault = failed
    settle()  # the parent screened jumps: this engine takes what it is sent
    settler = Settler()
    schedules = bool(engine.schedules)
    for batch in batches:
        numbers = None
        settler.tick(batch.count)
        now = batch.now
        if schedules and batch.began > _START:  # arm where one engine of the whole stream arms (once)
            engine.started(batch.began)
        count = batch.count
        if not count:
            continue
        lines += count
        try:
            events: list[Event] | None = decode_lines(batch.lines)
        except _DECODE_ERRORS:
            events = None
        if events is None or len(events) != count or b"\r" in batch.lines:
            events = []
            numbers = []
            decode = decoder.decode
            for n, line in zip(batch.numbers(w), batch.lines.split(b"\n")):  # noqa: B905 (hot path; one number per line)
                try:
                    events.append(decode(line))
                except _DECODE_ERRORS as e:
                    malformed += 1
                    problems.append(InputProblem(n, _explain(e)))
                    continue
                numbers.append(n)
        engine.feed(events)
        if holds:
            _release(engine, writer, tags)
    if now > engine.now:
        engine.advance(now)
    engine.finish()
    writer.release(2**63)
    writer.flush()
    if tags is not None:
        tags.flush()
    failed_events = engine.faults - engine.deadline_faults
    return ReplayReport(
        lines=lines,
        events=engine.events_in - failed_events,
        failed=failed_events,
        failed_deadlines=engine.deadline_faults,
        malformed=malformed,
        late=engine.late_events,
        sends=writer.written,
        sends_by_scenario=dict(writer.by_scenario),
        deferred=writer.deferred,
        problems=problems,
        trigger_loops=engine.trigger_loops,
        duplicates=engine.duplicates,
        tag_writes=sum(st.tag_writes for st in engine.stats),
        measures=measures_of(engine),
    )


class _Key(msgspec.Struct):
    ts: int
    id: str
    scenario: str


def _keyed(path: Path) -> Iterator[tuple[tuple[int, str], str, bytes]]:
    decode = msgspec.json.Decoder(_Key).decode
    with open(path, "rb") as f:
        for line in f:
            k = decode(line)
            yield (k.ts, k.id), k.scenario, line


def _merge(parts: list[Path], out: IO[bytes]) -> dict[str, int]:
    """The workers' outputs, each already in (ts, id) order, merged into one;
    returns the sends per scenario in order of first send, as one worker counts them."""
    write = out.write
    by_scenario: dict[str, int] = {}
    for _, scenario, line in heapq.merge(*(_keyed(p) for p in parts), key=_first):
        write(line)
        by_scenario[scenario] = by_scenario.get(scenario, 0) + 1
    return by_scenario


def _first(item: tuple[tuple[int, str], str, bytes]) -> tuple[int, str]:
    return item[0]
