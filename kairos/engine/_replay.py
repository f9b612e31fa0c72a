"""Replay: a recorded JSON-lines event file through the engine, in event time.

Decoding is batched (one reused msgspec decoder, ``decode_lines`` over a block
of lines); only a block holding a bad line is decoded line by line again, so a
malformed event is reported with its line number, counted and skipped while
the rest is processed. Sends are written ordered by (ts, id), which makes the
output byte-identical run to run and equal to a merge of several workers'.
"""

from __future__ import annotations

import heapq
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import msgspec
import numpy as np

from kairos.engine._engine import Engine, ScenarioStats, Send, TagWrite
from kairos.engine._events import Event, event_union
from kairos.engine._jump_defaults import DEFAULT_MAX_JUMP_MS
from kairos.engine._screen import Feeder
from kairos.engine._settle import Settler, settle

BLOCK_BYTES = 64 * 1024  # small enough that a decoded block is still in cache when it is processed

class InputProblem(msgspec.Struct, frozen=True):
    """A line of input that was not processed, and why."""

    line: int
    reason: str
    file: str = ""  # set when the input is several files (a partitioned log): the line's own file
    #: what was skipped: a "line" (not an event, or not let in), an "event" whose processing failed,
    #: or a "deadline" (``line`` 0, at ``ts``) whose firing failed
    what: str = "line"
    ts: int = 0


def problem_order(p: InputProblem) -> tuple[bool, int, str, int, str]:
    """The order problems are reported in, the same in every form of replay: lines in file order,
    then failed deadlines in time order (a deadline belongs to no line)."""
    deadline = p.what == "deadline"
    return deadline, p.ts if deadline else 0, p.file, p.line, p.reason


def line_blocks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    """Blocks of whole lines read ``size`` bytes at a time: each ends with a newline,
    but the input's last line if it has none."""
    for view in line_views(stream, size):
        yield bytes(view)


def line_views(stream: IO[bytes], size: int) -> Iterator[memoryview]:
    """``line_blocks`` without its copy: views into one reused buffer, each valid only
    until the next is asked for (decode it, or copy it, before then).

    The stream reads straight into the buffer and a line cut by the block's end moves
    to its front, so a block is copied once, by the read: at 200 000 lines a second,
    each copy saved is a few per cent of the time spent reading.
    """
    readinto = getattr(stream, "readinto1", None) or getattr(stream, "readinto", None)
    if readinto is None:  # a stream that only reads: copy as it does
        yield from map(memoryview, _read_blocks(stream, size))  # type: ignore[arg-type]  # mypy cannot infer memoryview[int] through map
        return
    buf = bytearray(size)
    have = 0  # bytes at the buffer's front: the start of a line the last block cut
    while True:
        if have == len(buf):  # a line longer than the buffer: a larger one (views may still hold this)
            grown = bytearray(2 * len(buf))
            grown[:have] = buf
            buf = grown
        view = memoryview(buf)
        n = readinto(view[have:])
        end = have + (n or 0)
        if not n:
            if end:
                yield view[:end]
            return
        cut = buf.rfind(b"\n", have, end) + 1
        if not cut:
            have = end
            continue
        yield view[:cut]
        buf[:end - cut] = buf[cut:end]
        have = end - cut


def _read_blocks(stream: IO[bytes], size: int) -> Iterator[bytes]:
    read = getattr(stream, "read1", stream.read)
    rest = b""
    while True:
        chunk = read(size)
        if chunk:
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                rest += chunk
                continue
            yield rest + chunk[:cut] if rest else chunk[:cut]
            rest = chunk[cut:]
        elif rest:
            yield rest
            return
        else:
            return


def count_newlines(block: memoryview) -> int:
    """How many ``\n`` a block holds: numpy compares and counts at memory speed, where
    ``bytes.count`` of one byte walks it a byte at a time (70 ns a JSON line, 7 % of W1)."""
    return int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))


class EventReader:
    """Decodes a binary JSON-lines stream into events, reporting bad lines."""

    def __init__(self, stream: IO[bytes], on_problem: Callable[[InputProblem], None]) -> None:
        self._stream = stream
        self._on_problem = on_problem
        self._decoder = msgspec.json.Decoder(event_union())
        self.lines = 0
        self.malformed = 0
        self.bytes = 0  # read so far: how far through the input a progress display is

    def blocks(self) -> Iterator[tuple[list[Event], list[int] | int]]:
        """Decoded blocks: (events, line numbers) — or (events, first line) when
        the block decoded whole and line n is simply first + index."""
        decode_lines = self._decoder.decode_lines
        newlines = count_newlines
        for block in line_views(self._stream, BLOCK_BYTES):
            size = len(block)
            count = newlines(block) + (block[size - 1] != 10)  # the last line may have no newline
            # the block is decoded as it was read, never split into line objects, unless
            # it holds a bad or blank line: then it is decoded again line by line
            first = self.lines + 1
            self.lines += count
            self.bytes += size
            try:
                events = decode_lines(block)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                events = None
            # a \r can make two values of one line while a blank line hides the extra one from the count
            if events is not None and len(events) == count and block.obj.find(b"\r", 0, size) < 0:  # type: ignore[attr-defined]  # .obj is our bytearray
                yield events, first
            else:
                yield self._one_by_one(bytes(block).split(b"\n"), first)  # only \n ends a line

    def __iter__(self) -> Iterator[Event]:
        for events, _ in self.blocks():
            yield from events

    def _one_by_one(self, block: list[bytes], first: int) -> tuple[list[Event], list[int]]:
        decode = self._decoder.decode
        events: list[Event] = []
        lines: list[int] = []
        for n, line in enumerate(block, first):
            if not line.strip():
                continue
            try:
                events.append(decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as e:  # JSON nested ~1000 deep
                self.malformed += 1
                self._on_problem(InputProblem(n, _explain(e)))
                continue
            lines.append(n)
        return events, lines


def _explain(e: Exception) -> str:
    text = str(e)
    if text.startswith("Invalid value") and "`$.type`" in text:
        return text.replace("Invalid value", "unknown event type", 1)
    return text


class OrderedWriter:
    """Writes sends as JSON lines in (ts, id) order.

    The engine emits sends in non-decreasing ts, so only the sends of the
    current ts are held back and sorted by id before they are written. When a
    contact policy decides some triggers late (arbitration, capacity), call
    ``reorder()`` first: sends are then kept until ``release(watermark)`` says
    no earlier send can come any more.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._encode = msgspec.json.Encoder().encode
        self._held: list[Send] = []
        self._held_ts: int | None = None
        self._late: list[tuple[int, str, Send]] | None = None
        self.written = 0
        self.by_scenario: dict[str, int] = {}
        self.deferred = 0  #: sends whose send_at is after their trigger's ts (``after``, quiet or working hours)

    def __call__(self, send: Send) -> None:
        if self._late is not None:
            heapq.heappush(self._late, (send.ts, send.id, send))
            return
        if send.ts != self._held_ts:
            self.flush()
            self._held_ts = send.ts
        self._held.append(send)

    def reorder(self) -> None:
        """Sends may arrive out of ts order from now on; hold them for ``release``."""
        self._late = []

    def release(self, watermark: int) -> None:
        """Write every held send whose ts is before ``watermark``, in (ts, id) order."""
        late = self._late
        if not late:
            return
        while late and late[0][0] < watermark:
            self._held.append(heapq.heappop(late)[2])
        self.flush()

    def flush(self) -> None:
        held = self._held
        if not held:
            return
        if len(held) > 1:
            held.sort(key=_by_ts_id)
        encode = self._encode
        write = self._out.write
        counts = self.by_scenario
        deferred = 0
        for s in held:
            write(encode(s))
            write(b"\n")
            counts[s.scenario] = counts.get(s.scenario, 0) + 1
            if s.send_at != s.ts:
                deferred += 1
        self.deferred += deferred
        self.written += len(held)
        held.clear()


def _by_ts_id(s: Send) -> tuple[int, str]:
    return (s.ts, s.id)


class _TagKey(msgspec.Struct):
    ts: int
    msisdn: str


#: tag writes held in memory at most; more (a schedule writing for a million subscribers at one
#: instant, a long arbitration window) are sorted in runs on disk and merged as they are released
TAG_RUN = 50_000


class TagWriter:
    """Writes tag writes (``kairos replay --tags-out``) as JSON lines in (ts, msisdn) order, streaming.

    Without a policy that holds sends the engine writes tags in non-decreasing ts, so a write of a later
    ts releases every held one. With one (arbitration, capacity: ``reorder()``) a held send re-enters as
    a ``trigger`` event at its own, earlier time, and a ``set`` on that trigger writes at that time after
    later writes were made; the writes are then held until ``release(watermark)`` says none before it can
    come any more, as the sends are (``OrderedWriter``). Held writes are keyed (ts, msisdn, the order they
    were made in): one subscriber's writes at one time keep that order, which a reader applying the file
    needs, and which any split of the subscribers over workers or partitions gives again when their
    files are merged (``merge_tag_files``). Past ``run`` held writes they go to a temporary file as a
    sorted run, so memory stays flat however many writes are held.
    """

    def __init__(self, out: IO[bytes], run: int = TAG_RUN) -> None:
        self._out = out
        self._encode = msgspec.json.Encoder().encode
        self._run = run
        self._held: list[tuple[int, str, int, bytes]] = []  # a heap of (ts, msisdn, seq, line)
        self._seq = 0
        self._ts: int | None = None  # the ts of the last write, while writes come in ts order
        self._ordered = True
        self._runs: list[_Run] = []  # spilled in the order they were made: a tie goes to the earlier
        self.written = 0

    def __call__(self, write: TagWrite) -> None:
        ts = write.ts
        if self._ordered and ts != self._ts:
            self.release(ts)
            self._ts = ts
        self._seq += 1
        held = self._held
        heapq.heappush(held, (ts, write.msisdn, self._seq, self._encode(write)))
        if len(held) >= self._run:
            self._spill()

    def reorder(self) -> None:
        """Writes may arrive out of ts order from now on; hold them for ``release``."""
        self._ordered = False

    def _spill(self) -> None:
        run = tempfile.TemporaryFile(prefix="kairos-tags-")
        self._held.sort()
        run.write(b"".join(line + b"\n" for *_, line in self._held))
        run.seek(0)
        self._runs.append(_Run(run))
        self._held.clear()

    def release(self, watermark: int) -> None:
        """Write every held write whose ts is before ``watermark``, in (ts, msisdn, made) order."""
        held = self._held
        write = self._out.write
        if self._runs:
            sources = [r.below(watermark) for r in self._runs]
            for _, line in heapq.merge(*sources, _held_below(held, watermark), key=_key_of):
                write(line)
                self.written += 1
            for r in self._runs:
                if r.head is None:
                    r.close()
            self._runs = [r for r in self._runs if r.head is not None]
            return
        while held and held[0][0] < watermark:
            write(heapq.heappop(held)[3])
            write(b"\n")
            self.written += 1

    def flush(self) -> None:
        """Write every held write (the end of the input)."""
        self.release(2**63)


class _Run:
    """A sorted run of tag writes on disk, read as it is released (``head``: its next line, or None)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._lines = _keyed_lines(file)
        self.head = next(self._lines, None)

    def below(self, watermark: int) -> Iterator[tuple[tuple[int, str], bytes]]:
        """The run's lines before ``watermark``; the first line at or after it stays ``head``."""
        while self.head is not None and self.head[0][0] < watermark:
            item = self.head
            self.head = next(self._lines, None)
            yield item

    def close(self) -> None:
        self._file.close()


def _held_below(held: list[tuple[int, str, int, bytes]], watermark: int,
                ) -> Iterator[tuple[tuple[int, str], bytes]]:
    while held and held[0][0] < watermark:
        ts, msisdn, _, line = heapq.heappop(held)
        yield (ts, msisdn), line + b"\n"


def _key_of(item: tuple[tuple[int, str], bytes]) -> tuple[int, str]:
    return item[0]


def _keyed_lines(stream: IO[bytes]) -> Iterator[tuple[tuple[int, str], bytes]]:
    """Each line of a file of tag writes with its (ts, msisdn) key."""
    decode = msgspec.json.Decoder(_TagKey).decode
    for line in stream:
        k = decode(line)
        yield (k.ts, k.msisdn), line


def merge_tag_files(parts: list[Path], out: IO[bytes]) -> int:
    """Files of tag writes, each in (ts, msisdn) order and each subscriber's writes in one of them,
    merged into ``out`` as one ``TagWriter`` over all the subscribers writes them; returns how many."""
    n = 0
    with ExitStack() as stack:
        streams = [stack.enter_context(open(p, "rb")) for p in parts if p.exists()]
        for _, line in heapq.merge(*(_keyed_lines(f) for f in streams), key=_key_of):
            out.write(line)
            n += 1
    return n
class Measures(msgspec.Struct):
    """What a measuring engine counted (``--stats``, ``--report``), in a form that crosses a process
    boundary, so the counts of workers and partitions merge into one replay's (``merge_measures``).

    ``observed`` holds, per engine, what its observer collected (its ``collected()``, if it has one:
    plain data the caller merges; ``kairos replay --by`` counts there), in engine order.
    """

    stats: list[ScenarioStats]
    unmatched_feedback: int = 0
    observed: list[Any] = msgspec.field(default_factory=list)


def measures_of(engine: Engine) -> Measures | None:
    """The engine's counts once it finished; None without a policy stage (it measures nothing)."""
    if engine.policy is None:
        return None
    collected = getattr(engine.observer, "collected", None)
    return Measures(list(engine.stats), engine.policy.unmatched_feedback,
                    [] if collected is None else [collected()])


def merge_measures(parts: list[Measures | None]) -> Measures | None:
    """Several engines' counts as one engine's over all their subscribers (None: none measured)."""
    done = [m for m in parts if m is not None]
    if not done:
        return None
    stats = [ScenarioStats() for _ in done[0].stats]
    for m in done:
        for total, st in zip(stats, m.stats, strict=True):
            _add(total, st)
    return Measures(stats, sum(m.unmatched_feedback for m in done), [o for m in done for o in m.observed])


def _add(into: ScenarioStats, counts: ScenarioStats) -> None:
    """Add ``counts`` to ``into``, field by field: numbers add, dicts of numbers (nested too) add by key;
    so a count the engine gains later is merged without touching this."""
    for name in ScenarioStats.__struct_fields__:
        setattr(into, name, _sum(getattr(into, name), getattr(counts, name)))


def _sum(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _sum(out[key], value) if key in out else value
        return out
    return a + b


class ReplayReport(msgspec.Struct):
    """What a replay read, processed and wrote."""

    lines: int
    events: int
    malformed: int
    late: int
    sends: int
    sends_by_scenario: dict[str, int]
    problems: list[InputProblem]
    trigger_loops: int = 0  # trigger chains cut at the engine's depth limit (a scenario re-triggering itself)
    wild: int = 0  # events rejected as wild timestamps (engine._screen): a jump the lines after it deny
    duplicates: int = 0  # events skipped as identical to one already taken (the engine's dedup_window_ms)

    failed: int = 0  # events whose processing raised (engine.faults): skipped, reported with their line
    failed_deadlines: int = 0  # deadlines whose firing raised (skipped, reported)
    tag_writes: int = 0  # triggers whose ``set`` clause wrote tags (lines of ``--tags-out``)
    deferred: int = 0  # sends whose send_at is after their trigger (``after``, quiet or working hours)
    #: what the engines counted (merged over workers and partitions); None when none measured
    measures: Measures | None = None

    @property
    def skipped(self) -> int:
        """Lines not processed: malformed, wild timestamps, late events and events whose processing failed."""
        return self.malformed + self.wild + self.late + self.failed


def replay(
    engine_factory: Callable[[Callable[[Send], None]], Engine],
    events: IO[bytes],
    out: IO[bytes],
    *,
    on_problem: Callable[[InputProblem], None] | None = None,
    keep_problems: int = 100,
    until: int | None = None,
    since: int | None = None,
    max_jump: int | None = DEFAULT_MAX_JUMP_MS,
    lateness: int = 0,
    tags_out: IO[bytes] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Run every event of ``events`` through a new engine; write sends to ``out``.

    ``progress``: called after each block (tens of kilobytes, hundreds of lines) with the lines and
    bytes read so far, for a display that redraws itself at its own pace (never per event).

    ``tags_out``: where the tag writes of ``set`` clauses go, one JSON line each (``TagWriter``).

    ``until``: a ts the engine's time moves to at the end, when later than its last
    event's (a partition of a larger log, whose deadlines fire up to the log's end). ``since``: the
    larger log's first ts, where the engine's schedules choose their first instant (``Engine.started``).
    ``max_jump``: a jump in time larger than this is screened (``engine._screen``; None:
    never). ``lateness``: events within this many ms behind the newest are sorted into place."""
    kept: list[InputProblem] = []
    found: list[InputProblem] = []  # a block's problems: decoding finds some, feeding others

    def problem(p: InputProblem) -> None:
        found.append(p)

    def report_found() -> None:
        """The block's problems in line order, so standard error reads like the file."""
        found.sort(key=problem_order)
        for p in found:
            if len(kept) < keep_problems:
                kept.append(p)
            if on_problem is not None:
                on_problem(p)
        found.clear()

    deadlines: list[InputProblem] = []  # failed deadlines: reported after the lines, in time order

    writer = OrderedWriter(out)
    engine = engine_factory(writer)
    tags = None if tags_out is None else TagWriter(tags_out)
    if tags is not None:
        engine.tag_sink = tags
    if engine.holds_sends:
        writer.reorder()
        if tags is not None:  # a held send's trigger event writes at its own, earlier time
            tags.reorder()

    def failed(n: int | None, exc: BaseException) -> None:
        reason = engine.describe_fault(exc)
        if n is None:
            deadlines.append(InputProblem(0, reason, what="deadline", ts=engine.now))
        else:
            found.append(InputProblem(n, reason, what="event"))

    if since is not None:
        engine.started(since)
    reader = EventReader(events, problem)
    feeder = Feeder(engine, lambda n, reason: problem(InputProblem(n, reason)), max_jump=max_jump, lateness=lateness,
                    on_failed=failed)
    settle()
    settler = Settler()
    for block, lines in reader.blocks():
        settler.tick(len(block))
        feeder.block(block, lines)
        if engine.holds_sends:
            _release(engine, writer, tags)
        if not feeder.holding:  # a held jump's lines are judged later: their problems come in line order then
            report_found()
        if progress is not None:
            progress(reader.lines, reader.bytes)
    feeder.end(until)
    if engine.holds_sends:
        _release(engine, writer, tags)
    report_found()
    if until is not None and until > engine.now:
        engine.advance(until)
    engine.finish()
    writer.release(2**63)
    writer.flush()
    if tags is not None:
        tags.flush()
    found.extend(sorted(deadlines, key=problem_order))
    report_found()
    failed_events = engine.faults - engine.deadline_faults
    return ReplayReport(
        lines=reader.lines,
        events=engine.events_in - failed_events,
        malformed=reader.malformed,
        late=engine.late_events + feeder.late,
        sends=writer.written,
        sends_by_scenario=dict(writer.by_scenario),
        deferred=writer.deferred,
        problems=kept,
        trigger_loops=engine.trigger_loops,
        wild=feeder.wild,
        duplicates=engine.duplicates,
        failed=failed_events,
        failed_deadlines=engine.deadline_faults,
        tag_writes=sum(st.tag_writes for st in engine.stats),
        measures=measures_of(engine),
    )


def _release(engine: Engine, writer: OrderedWriter, tags: TagWriter | None) -> None:
    """Write the sends and tag writes no held trigger can come before any more (a policy that holds)."""
    watermark = engine.send_watermark()
    writer.release(watermark)
    if tags is not None:
        tags.release(watermark)


def _line_of(p: InputProblem) -> int:
    return p.line


def stderr_problem_printer(name: str, limit: int = 20) -> Callable[[InputProblem], None]:
    """Prints the first ``limit`` problems as ``FILE:LINE: error: …`` on stderr."""
    count = 0

    def show(p: InputProblem) -> None:
        nonlocal count
        count += 1
        if count <= limit:
            where = f"{p.file or name}:{p.line}" if p.what != "deadline" else f"{p.file or name}"
            at = f" at ts {p.ts}" if p.what == "deadline" else ""
            print(f"{where}: error: {p.reason} ({p.what}{at} skipped)", file=sys.stderr)
        elif count == limit + 1:
            print(f"{name}: further skipped lines are counted but not shown", file=sys.stderr)

    return show



