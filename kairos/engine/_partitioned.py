"""Replay of a partitioned log on several cores: each worker replays whole partitions, nothing is routed.

A partitioned log is a set of files by partition number, each holding, in ts
order, the events of the subscribers its partition owns — what a Kafka topic
keyed by msisdn holds (``kairos.adapters._partitions`` writes one as a folder
of ``p-NNNN.jsonl`` files with Kafka's partitioner and finds them again; the
caller hands the files over, so the engine knows no folder layout). Worker
``w`` replays the partitions ``p`` with ``p % workers == w``, one engine per
partition, as the daemon keeps state and event time per partition; the parent
merges the sends in (ts, id) order. A worker keeps of the reference's tag
table only its partitions' rows (``_keep_own_rows``), as a daemon's
partition unit does. No line crosses a process and nothing is
decoded twice, so unlike ``replay_workers`` (which must route one file line by
line in a parent that does not split over cores) two workers each do half of
one worker's work.

A partition's event time is its own: a line is late when it is older than
its partition's time, as in the daemon — on a log split from one sorted file,
never. At the end every partition's time moves to the last ts of the whole
log (the last the jump screen confirms over all partitions' tails: ``_log_end``),
so deadlines fire as they would in one engine; every partition's schedules are
armed at the log's first ts (``_log_start``), where one engine arms them, so a
partition whose events start later, or that has only tag rows, skips no
instant; and the output equals one
``replay`` of the file the log was split from, byte for byte — except, when a
policy's channel capacity binds, in which triggers get a period's last places
(the engines share one count through a ``CapacityGrants`` store, as
``replay_workers`` explains).
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection
import signal
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any
from collections.abc import Callable, Iterable, Mapping

import msgspec

from kairos.engine._engine import Engine, Send
from kairos.engine._events import event_union
from kairos.engine._reference import Reference
from kairos.engine._replay import InputProblem, ReplayReport, merge_measures, merge_tag_files, problem_order, replay
from kairos.engine._jump_defaults import DEFAULT_MAX_JUMP_MS
from kairos.engine._screen import confirmed_end, unrejected
from kairos.engine._workers import (Connection, EngineFactory, _check_partitionable, _discard, _merge, raise_failed,
                             stop_all)

class _Share(msgspec.Struct):
    """What a worker sends back: its partitions' reports, in partition order."""

    reports: list[ReplayReport]


def replay_partitioned(
    engine_factory: EngineFactory,
    partitions: Mapping[int, str | Path],
    out: IO[bytes],
    *,
    workers: int,
    on_problem: Callable[[InputProblem], None] | None = None,
    keep_problems: int = 100,
    max_jump: int | None = DEFAULT_MAX_JUMP_MS,
    lateness: int = 0,
    tags_out: IO[bytes] | None = None,
    owns: Callable[[int, str], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay a partitioned log — its files by partition number (``partition_files`` of a folder) —
    over ``workers`` processes (``1``: this one); sends go to ``out`` in (ts, id) order. Problems
    name their partition file and reach ``on_problem`` at the end. ``max_jump`` and ``lateness``
    as in ``replay``, per partition. ``tags_out``: the partitions' tag writes, merged in (ts, msisdn)
    order as one ``replay`` of the unsplit file writes them. ``owns(p, msisdn)``: partition ``p`` owns
    the subscriber, so a schedule of its engine visits that subscriber's tag row (None: every engine
    visits every row); on several workers, a worker keeps only its partitions' rows (``_keep_own_rows``).
    ``progress`` as in ``replay``: the lines and bytes all workers have read so far, from counters the
    workers write per block in memory they share with this process, which reads them while it waits
    (at most every ``PROGRESS_EVERY`` s)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if not partitions:
        raise ValueError("no partition files to replay")
    files = {p: Path(partitions[p]) for p in sorted(partitions)}
    #: an engine as the factory builds them: to refuse what partitions cannot replay apart, and to reach the
    #: reference its engines share, whose tag table each forked worker trims to its own rows
    trims = workers > 1 and owns is not None
    probe = engine_factory(_discard) if len(files) > 1 or trims else None
    if probe is not None and len(files) > 1:
        _check_partitionable(probe, "partitions replayed apart", "replay the unsplit file")
    until = _log_end([_tail_times(path) for path in files.values()], max_jump)
    since = _log_start(files.values())
    shares = [[p for p in files if p % workers == w] for w in range(workers)]
    with tempfile.TemporaryDirectory(prefix="kairos-partitions-") as tmp:
        parts = {p: Path(tmp) / f"sends-{p}.jsonl" for p in files}
        tag_parts = None if tags_out is None else {p: Path(tmp) / f"tags-{p}.jsonl" for p in files}

        # per worker: lines and bytes read so far (shared with forked workers: they write, we read)
        counts = None if progress is None else multiprocessing.get_context("fork").RawArray("q", 2 * workers)

        def run(w: int) -> _Share:
            if trims and probe is not None and owns is not None and shares[w]:  # a forked worker: its own object
                _keep_own_rows(probe.reference, owns, shares[w])
            reports = []
            for p in shares[w]:
                read = None if counts is None else _counting(counts, w, progress if workers == 1 else None)
                reports.append(_replay_one(_owning(engine_factory, owns, p), files[p], parts[p], until,
                                           keep_problems, max_jump, lateness,
                                           None if tag_parts is None else tag_parts[p], since, read))
            return _Share(reports)

        def tick() -> None:
            if progress is not None and counts is not None:
                progress(sum(counts[0::2]), sum(counts[1::2]))

        done = [run(0)] if workers == 1 else _in_processes(run, workers, None if progress is None else tick)
        by_scenario = _merge(list(parts.values()), out)
        if tag_parts is not None and tags_out is not None:
            merge_tag_files(list(tag_parts.values()), tags_out)
    reports = [r for share in done for r in share.reports]
    problems = sorted(itertools.chain(*(r.problems for r in reports)), key=problem_order)
    if on_problem is not None:
        for p in problems:
            on_problem(p)
    return ReplayReport(
        lines=sum(r.lines for r in reports),
        events=sum(r.events for r in reports),
        failed=sum(r.failed for r in reports),
        failed_deadlines=sum(r.failed_deadlines for r in reports),
        malformed=sum(r.malformed for r in reports),
        late=sum(r.late for r in reports),
        sends=sum(r.sends for r in reports),
        deferred=sum(r.deferred for r in reports),
        sends_by_scenario=by_scenario,
        problems=problems[:keep_problems],
        trigger_loops=sum(r.trigger_loops for r in reports),
        wild=sum(r.wild for r in reports),
        duplicates=sum(r.duplicates for r in reports),
        tag_writes=sum(r.tag_writes for r in reports),
        measures=merge_measures([r.measures for r in reports]),
    )


def _owning(factory: EngineFactory, owns: Callable[[int, str], bool] | None, p: int) -> EngineFactory:
    """``factory`` whose engines' schedules visit only the tag rows partition ``p`` owns."""
    if owns is None:
        return factory

    def make(sink: Callable[[Send], None]) -> Engine:
        engine = factory(sink)
        if engine.universe is not None:
            engine.universe.only = lambda m: owns(p, m)
        return engine

    return make


def _keep_own_rows(reference: Reference, owns: Callable[[int, str], bool], mine: list[int]) -> None:
    """In a worker: ``reference``'s tag table keeps only the rows of the partitions ``mine`` (the rows
    themselves are not copied), as a daemon's partition unit keeps its own. Every event probes that table (a
    schedule's universe, a tag read, a ``profile``): half a million entries, not a million, are fewer
    cache lines for two workers sharing a cache. An engine factory that does not build on this reference
    keeps every row, which ``owns`` still sorts out."""
    every = reference.tags
    _kept.append(every)  # not freed here: a million rows' deallocation would write to (and copy) every page
    reference.tags = {m: t for m, t in every.items() if any(owns(p, m) for p in mine)}


#: the full tag tables a worker replaced (``_keep_own_rows``), alive until the worker exits
_kept: list[dict[str, dict[str, Any]]] = []


def _counting(counts: Any, w: int, show: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
    """A ``replay`` progress hook for worker ``w``'s next partition: its lines and bytes, added to what
    the worker's earlier partitions read, go to ``counts`` (and to ``show``, when in this process)."""
    lines, size = counts[2 * w], counts[2 * w + 1]

    def read(n: int, done: int) -> None:
        counts[2 * w], counts[2 * w + 1] = lines + n, size + done
        if show is not None:
            show(sum(counts[0::2]), sum(counts[1::2]))

    return read


def _replay_one(engine_factory: EngineFactory, path: Path, part: Path, until: int, keep: int,
                max_jump: int | None, lateness: int, tag_part: Path | None = None,
                since: int | None = None, progress: Callable[[int, int], None] | None = None) -> ReplayReport:
    """One partition through its own engine, its schedules armed at ``since`` (the log's first ts), its
    time moved to ``until`` at the end (its tag writes to ``tag_part``, when wanted)."""
    name = str(path)
    with open(path, "rb") as events, open(part, "wb") as out, ExitStack() as stack:
        tags = None if tag_part is None else stack.enter_context(open(tag_part, "wb"))
        report = replay(engine_factory, events, out, keep_problems=keep, until=until, since=since, max_jump=max_jump,
                        lateness=lateness, tags_out=tags, progress=progress)
    report.problems = [InputProblem(p.line, p.reason, name, p.what, p.ts) for p in report.problems]
    return report


def _log_start(paths: Iterable[Path]) -> int | None:
    """The log's first ts: the earliest of the partitions' first events (None: no events). One replay of
    the file the log was split from arms its schedules there; every partition's engine must too, or a
    partition whose first event comes later (or that has none, its subscribers only in tags.jsonl)
    skips the instants before it. Lines the full decoder rejects are passed over, as a replay does."""
    decode = msgspec.json.Decoder(event_union()).decode
    heads = []
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                try:
                    heads.append(int(decode(line).ts))
                except (msgspec.DecodeError, RecursionError):  # a ValidationError is a DecodeError too
                    continue
                break
    return min(heads, default=None)


#: lines of each partition's tail screened to find where the log's time ends (``_log_end``)
TAIL_LINES = 64


def _log_end(tails: list[list[int]], max_jump: int | None) -> int:
    """The time every partition moves to at the end: the latest that the partitions' tails confirm
    together, as one replay of the file the log was split from would — or, when they confirm nothing,
    the latest ts of all (−1: no events).

    Each tail first loses the lines a later line of its own partition shows wild (they must not drag
    every partition's deadlines to the year 2100); what is left of all tails is screened as one
    stream, in ts order, so a real gap is confirmed by the events after it in all partitions together.
    """
    last = max((t[-1] for t in tails if t), default=-1)
    if max_jump is None:
        return last
    merged = sorted(itertools.chain.from_iterable(unrejected(t, max_jump) for t in tails))
    confirmed = confirmed_end(merged, max_jump)
    return last if confirmed is None else confirmed


def _tail_times(path: Path) -> list[int]:
    """The ts of a partition file's last ``TAIL_LINES`` events, in file order (empty: no events).

    Lines the full decoder rejects are passed over, as a replay passes over them: a bad
    last line must not hold back the time every partition moves to at the end.
    """
    decode = msgspec.json.Decoder(event_union()).decode
    with open(path, "rb") as f:
        end = f.seek(0, 2)
        back = 4096
        while True:
            start = max(0, end - back)
            f.seek(start)
            lines = f.read().split(b"\n")
            if start > 0:
                lines = lines[1:]  # cut by the seek
            stamps = []
            for line in lines:
                try:
                    stamps.append(int(decode(line).ts))
                except msgspec.DecodeError:  # a ValidationError is one too
                    continue
            if start == 0 or len(stamps) >= TAIL_LINES:
                break
            back *= 4
    return stamps[-TAIL_LINES:]


#: seconds between two looks at the workers' progress counters while waiting for them
PROGRESS_EVERY = 0.25


def _in_processes(run: Callable[[int], _Share], workers: int, tick: Callable[[], None] | None = None,
                  ) -> list[_Share]:
    """``run(w)`` for every worker in forked processes (they inherit the plan and reference); ``tick``
    is called every ``PROGRESS_EVERY`` s while they run."""
    ctx = multiprocessing.get_context("fork")
    procs: list[Any] = []
    results: list[Connection] = []
    try:
        for w in range(workers):
            result, report = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_worker, args=(run, w, report), name=f"kairos-partitions-{w}")
            p.start()
            procs.append(p)
            report.close()
            results.append(result)
        if tick is not None:
            waiting = list(results)
            while waiting:
                tick()
                ready = multiprocessing.connection.wait(waiting, timeout=PROGRESS_EVERY)
                waiting = [c for c in waiting if c not in ready]  # a report waits in its pipe until read
        shares = [_receive(result) for result in results]
        for p in procs:
            p.join()
    except BaseException:  # an error or Ctrl-C here: no worker may outlive the parent
        stop_all(procs)
        raise
    failed = [p.name for p, s in zip(procs, shares, strict=True) if s is None or p.exitcode != 0]
    if failed:
        raise_failed(failed)
    return [s for s in shares if s is not None]


def _worker(run: Callable[[int], _Share], w: int, report: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    report.send_bytes(msgspec.msgpack.encode(run(w)))
    report.close()


def _receive(result: Connection) -> _Share | None:
    with result:
        try:
            return msgspec.msgpack.decode(result.recv_bytes(), type=_Share)
        except EOFError:
            return None
