"""Replay on several cores: subscribers spread over worker processes by a stable hash.

Every worker reads the whole input (decoding is the cheap part) and keeps only
the events of its own subscribers — those whose ``shard_of(msisdn)`` is its
number — so each subscriber's state lives in exactly one process. Every worker
still follows the stream's time over all events, so late events are judged as
one engine would judge them and, at the end of the input, every worker's time
stands at the last event. Scenario state is per subscriber, so each worker
decides for its subscribers exactly what one engine decides; the parent
merges the workers' outputs in (ts, id) order, which gives one worker's output
byte for byte. Worker 0 alone reports input problems, so each bad line is
reported once, with its line number.

Workers are forked: they inherit the compiled plan (its functions are not
picklable) and the reference data, shared copy-on-write.
"""

from __future__ import annotations

import heapq
import multiprocessing
import tempfile
import zlib
from pathlib import Path
from typing import IO, Callable, Iterator

import msgspec

from engine._engine import Engine, Send
from engine._events import Event
from engine._replay import EventReader, InputProblem, OrderedWriter, ReplayReport, replay

EngineFactory = Callable[[Callable[[Send], None]], Engine]


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
) -> ReplayReport:
    """``replay`` over ``workers`` processes; the output equals one worker's, byte for byte.

    ``events`` must be a file (each worker reads it). With ``workers == 1`` this is
    plain ``replay`` in this process.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers > 1:
        _check_partitionable(engine_factory(_discard))
    if workers == 1:
        with open(events, "rb") as stream:
            return replay(engine_factory, stream, out, on_problem=on_problem, keep_problems=keep_problems)
    ctx = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="kairos-workers-") as tmp:
        parts = [Path(tmp) / f"part-{w}.jsonl" for w in range(workers)]
        pipes = []
        procs = []
        for w in range(workers):
            receive, send = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=_worker,
                args=(engine_factory, str(events), parts[w], w, workers,
                      on_problem if w == 0 else None, keep_problems, send),
                name=f"kairos-worker-{w}",
            )
            p.start()
            send.close()
            pipes.append(receive)
            procs.append(p)
        reports: list[ReplayReport | None] = []
        for receive in pipes:
            try:
                reports.append(msgspec.msgpack.decode(receive.recv_bytes(), type=ReplayReport))
            except EOFError:
                reports.append(None)
            receive.close()
        for p in procs:
            p.join()
        failed = [p.name for p, r in zip(procs, reports) if r is None or p.exitcode != 0]
        if failed:
            raise RuntimeError(f"replay worker(s) {', '.join(failed)} failed; see the error above")
        by_scenario = _merge(parts, out)
    return _combine([r for r in reports if r is not None], by_scenario)


def _check_partitionable(engine: Engine) -> None:
    """Refuse a plan whose decisions depend on more than one subscriber's state.

    Every pattern and gate is per subscriber, and so are the policy's caps and
    arbitration; a channel capacity (so many calls a day for everybody) is not,
    and split over workers it would be granted once per worker.
    """
    policy = engine.plan.policy
    if policy is not None and getattr(policy, "capacity", None):
        raise ValueError(
            "the policy limits a channel's capacity across all subscribers, which workers "
            "cannot share; run this plan with --workers 1"
        )


def _discard(_: object) -> None:
    return None


def _worker(
    engine_factory: EngineFactory,
    events: str,
    part: Path,
    w: int,
    workers: int,
    on_problem: Callable[[InputProblem], None] | None,
    keep_problems: int,
    result: "multiprocessing.connection.Connection",
) -> None:
    with open(events, "rb") as stream, open(part, "wb") as out:
        report = replay_share(engine_factory, stream, out, w, workers, on_problem, keep_problems)
    result.send_bytes(msgspec.msgpack.encode(report))
    result.close()


def replay_share(
    engine_factory: EngineFactory,
    stream: IO[bytes],
    out: IO[bytes],
    w: int,
    workers: int,
    on_problem: Callable[[InputProblem], None] | None = None,
    keep_problems: int = 100,
) -> ReplayReport:
    """One worker's replay: the events of the subscribers ``shard_of`` gives to ``w``.

    ``lines``, ``malformed``, ``late`` and ``problems`` describe the whole input;
    ``events`` and ``sends`` only this worker's share.
    """
    kept: list[InputProblem] = []

    def problem(p: InputProblem) -> None:
        if len(kept) < keep_problems:
            kept.append(p)
        if on_problem is not None:
            on_problem(p)

    writer = OrderedWriter(out)
    engine = engine_factory(writer)
    holds = engine.holds_sends  # a policy holding sends for arbitration: write in order as they are released
    if holds:
        writer.reorder()
    reader = EventReader(stream, problem)
    crc32 = zlib.crc32
    now = engine.now
    late = 0
    for events, lines in reader.blocks():
        mine: list[Event] = []
        keep = mine.append
        for i, ev in enumerate(events):
            t = ev.ts
            if t < now:
                late += 1
                n = lines + i if isinstance(lines, int) else lines[i]
                problem(InputProblem(n, f"event at ts {t} is older than the stream's time {now}; "
                                        "the file must be sorted by ts"))
                continue
            now = t
            if crc32(ev.msisdn.encode()) % workers == w:
                keep(ev)
        engine.feed(mine)
        if holds:
            writer.release(engine.send_watermark())
    if now > engine.now:
        engine.advance(now)
    engine.finish()
    writer.release(2**63)
    writer.flush()
    return ReplayReport(
        lines=reader.lines,
        events=engine.events_in,
        malformed=reader.malformed,
        late=late,
        sends=writer.written,
        sends_by_scenario=dict(writer.by_scenario),
        problems=kept,
        trigger_loops=engine.trigger_loops,
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


def _combine(reports: list[ReplayReport], by_scenario: dict[str, int]) -> ReplayReport:
    first = reports[0]  # worker 0: the one that saw and reported the input's problems
    return ReplayReport(
        lines=first.lines,
        events=sum(r.events for r in reports),
        malformed=first.malformed,
        late=first.late,
        sends=sum(r.sends for r in reports),
        sends_by_scenario=by_scenario,
        problems=first.problems,
        trigger_loops=sum(r.trigger_loops for r in reports),
    )
