"""The ``kairos`` command: check, replay, explain, split, produce, run, demo (LANGUAGE.md §8).

It parses the command line, compiles the scenarios (``kairos._compile``: the
language meets the runtime there) and hands the plan to an engine or to the
command's own module. The heavier commands' modules (``run``: the daemon,
``demo``: the traffic generator) are imported only when their command runs,
so ``kairos check`` starts without loading them.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING, Callable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kairos import dsl
from kairos._template_check import TEMPLATES_FILE
from kairos._words import count as counted
from kairos.engine import DEFAULT_MAX_JUMP_MS, DEFAULT_TZ, JUMP_CONFIRM

if TYPE_CHECKING:
    from kairos._groups import Grouping
    from kairos.adapters import GrantFolder
    from kairos.engine import Engine, Reference, ReplayReport, Send
    from kairos.plan import Plan

# Each command imports what it needs in its handler, so `kairos --help` and `kairos check` load no
# daemon, channel, numpy or replay code (tests/test_startup.py keeps them so).

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
#: ``kairos replay`` finished, but skipped lines (malformed, wild timestamps, out of order): see standard error
EXIT_SKIPPED = 3
#: ``kairos demo``'s days of traffic: Monday to the next month's 1st, so weekly and monthly scenarios run
DEMO_DAYS = 9

_EPILOG = """\
examples:
  kairos check scenarios/                       check every *.kairos file below scenarios/
  kairos replay --scenarios scenarios/ --events day.jsonl --reference scenarios/reference
                                                run the catalogue over a recorded day
  kairos replay --scenarios my.kairos --events - < events.jsonl
                                                events from standard input, sends to standard output
  kairos split --events day.jsonl --partitions 4 --out day.log
  kairos replay --scenarios scenarios/ --events day.log --workers 2
                                                the same day on two cores: split by subscriber once,
                                                each worker replays whole partitions
  kairos demo                                   nine generated days, the bundled scenarios, a summary
  kairos produce day.jsonl --bootstrap 127.0.0.1:9092 --topic events --partitions 8
                                                put a day on a Kafka topic keyed by msisdn (kairos run
                                                reads it with a kafka source; docs/operations.md "Scaling out")

The scenario language is described in docs/language.md; every command in docs/commands.md.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return int(args.handler(args))


#: set by a command whose process may end without the interpreter's teardown (``run``): ``check``
_quick_exit = False


def run() -> None:
    """The ``kairos`` console command: ``main()``, then the exit. After ``check`` the process ends without
    the interpreter's teardown (what it would free the process loses anyway): ~10 ms of ``check``'s
    150 ms budget (issue 16; ``python -m bench.startup``). Its output is flushed first."""
    status = main()
    if _quick_exit:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a reader gone (``| head``): nothing more to say to it
            pass
        os._exit(status)
    sys.exit(status)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kairos",
        description="Kairos: real-time scenario marketing for mobile operators. "
        "Scenarios are written in the Kairos language (*.kairos files); "
        "`check` validates them, `replay` runs them over recorded events.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action=_Version, nargs=0, default=argparse.SUPPRESS,
                   help="print the version (kairos X.Y.Z) and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser(
        "check",
        help="parse and check scenario files",
        description="Parse and check scenario files. Errors are printed as FILE:LINE:COL: error: "
        "MESSAGE with the source line and a caret; the exit status is 1 if any file has an error.",
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="a .kairos file or a folder of them")
    c.add_argument("--reference", metavar="DIR",
                   help="also check the names only reference data knows against this folder: each "
                   "list(\"NAME\") (lists/NAME.txt) and area (cells.csv) must be there, an error at its use "
                   "otherwise; a tags.NAME that no subscriber has in tags.jsonl and no scenario's `set` "
                   "writes is a warning (a profile event may bring it)")
    _templates_option(c)
    c.set_defaults(handler=_check)

    r = sub.add_parser(
        "replay",
        help="run scenarios over a recorded event file",
        description="Run scenarios over a recorded event file (JSON lines sorted by ts) in event "
        "time and write one JSON line per send: id, scenario, msisdn, ts, send_at, channel, "
        "template, params. The same input always gives the same output, byte for byte. "
        "Malformed lines, wild timestamps, out-of-order events and events whose processing failed "
        "(the scenario's FILE:LINE named) are reported with their line number on standard error, counted "
        "and skipped. Exit status: 0 all lines processed; 1 a scenario error; 2 a usage or file error; "
        "3 finished, but lines (or deadlines) were skipped (the last line of standard error counts them "
        "by reason).",
    )
    r.add_argument("--scenarios", nargs="+", required=True, metavar="PATH",
                   help=".kairos files or folders of them")
    r.add_argument("--events", required=True, metavar="FILE",
                   help="JSON lines; - for standard input; or a folder of p-NNNN.jsonl files, a log "
                   "partitioned by subscriber (as a Kafka topic keyed by msisdn): each partition is "
                   "replayed whole by one worker, nothing is routed")
    r.add_argument("--reference", metavar="DIR",
                   help="reference data folder: cells.csv, tags.jsonl, lists/NAME.txt, kb.csv")
    r.add_argument("--policy", metavar="FILE", help="a .kairos file holding the contact policy")
    r.add_argument("--out", default="-", metavar="FILE", help="where sends go; - (default) for standard output")
    r.add_argument("--tz", default=DEFAULT_TZ, type=_time_zone, help=f"local time zone for during/hour()/day() (default {DEFAULT_TZ})")
    r.add_argument("--quiet", action="store_true", help="no summary on standard error")
    r.add_argument("--stats", action="store_true",
                   help="print per scenario and channel: matched, suppressed by reason, sent, feedback, "
                   "conversion and uplift over the control group (standard error)")
    r.add_argument("--report", metavar="FILE.html",
                   help="write the same numbers as one self-contained HTML page with charts")
    r.add_argument("--by", action="append", default=[], metavar="tags.NAME",
                   help="with --stats or --report, also count each scenario's matched, suppressed (by reason) "
                   "and sent by the value the subscriber's tag NAME had when the scenario matched ((none): no "
                   "such tag). Repeat it for one table per tag (--by tags.region --by tags.brand: each adds up "
                   "to the totals); join tags with a comma for one table by their combination (--by "
                   "tags.region,tags.brand: a row per region and brand seen). The tag must be in the reference "
                   "data or read or written by a scenario. Grouping costs nothing without --by; with it, each "
                   "event takes the engine's general path (no fused fast path)")
    r.add_argument("--control-out", metavar="FILE",
                   help="write the triggers held out for the control group, one JSON line each, in the "
                   "format of a send (what would have been sent), so conversions can be joined by id")
    r.add_argument("--tags-out", metavar="FILE",
                   help="write one JSON line per tag write of a `set` clause: scenario, msisdn, ts and the tags "
                   "(null: removed), in (ts, msisdn) order; - for standard output (then --out must name a file)")
    r.add_argument("--workers", type=int, default=1, metavar="N",
                   help="spread subscribers over N processes (one per core) by a stable hash of "
                   "msisdn, or, with an --events FOLDER, give each whole partitions; the output is "
                   "identical to one worker's, and so are the counts of --stats, --report and --by, "
                   "merged (default 1; not with --events - or --control-out)")
    r.add_argument("--max-jump", type=_duration, default=DEFAULT_MAX_JUMP_MS, metavar="D",
                   help="an event more than D ahead of the stream's time is held until the lines after it "
                   f"show a real gap in the recording (the next {JUMP_CONFIRM} events go on from it: they are "
                   "processed) or a wild timestamp (an event after it goes back: it is skipped as malformed); "
                   "D is milliseconds or a number with ms, s, m, h, d (default 1h; 0: no screening)")
    r.add_argument("--allowed-lateness", type=_duration, default=0, metavar="D",
                   help="events up to D behind the newest are sorted into place, as the daemon's "
                   "time.allowed_lateness_ms does; older ones are late (default 0: the file must be sorted "
                   "by ts; not with --workers N on one file)")
    r.add_argument("--dedup-window", type=_duration, metavar="D",
                   help="skip an event identical to one already taken (an at-least-once feed's repeat), "
                   "remembering identities for D of event time (e.g. 10m; 0: only the current ms); a "
                   "line older than the stream's time stays late. Default: off")
    _templates_option(r)
    r.set_defaults(handler=_replay)

    x = sub.add_parser(
        "explain",
        help="one subscriber's timeline: events, partial matches, completions, policy decisions",
        description="Replay like `kairos replay` and print the timeline of one subscriber: their "
        "events, each scenario's partial matches and completions, and for every completion what the "
        "scenario's rules and the contact policy decided, and why (an audience that kept them out: its term "
        "that was false and the values it read). Exit status: 0 done; 1 a scenario or template error; "
        "2 a usage or file error.",
    )
    x.add_argument("--msisdn", required=True, help="the subscriber to follow")
    x.add_argument("--scenarios", nargs="+", required=True, metavar="PATH",
                   help=".kairos files or folders of them (all of them run: the contact policy weighs them together)")
    x.add_argument("--events", required=True, metavar="FILE", help="JSON lines sorted by ts; - for standard input")
    x.add_argument("--reference", metavar="DIR",
                   help="reference data folder: cells.csv, tags.jsonl, lists/NAME.txt, kb.csv")
    x.add_argument("--policy", metavar="FILE", help="a .kairos file holding the contact policy")
    x.add_argument("--tz", default=DEFAULT_TZ, type=_time_zone, metavar="ZONE",
                   help=f"local time zone for during/hour()/day() and the times shown (default {DEFAULT_TZ})")
    x.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="show only this scenario's completions, partial matches, decisions and summary, and "
                   "only the events of the types it reads (or at which something of it happened); repeat it for "
                   "several. Every scenario still runs")
    x.add_argument("--templates", metavar="FILE",
                   help="the template catalogue every action is checked against, as in replay, and each send's "
                   f"message is rendered from (default: a {TEMPLATES_FILE} in the first scenario folder passed, "
                   "or beside the first scenario file, that has one)")
    x.set_defaults(handler=_explain)

    d = sub.add_parser(
        "demo",
        help="generated days, the bundled scenarios, a readable result",
        description="Generate synthetic traffic for a few thousand subscribers, run the bundled "
        "scenario catalogue over it and show what was sent and why. Needs no setup.",
    )
    d.add_argument("--subscribers", type=int, default=2000,
                   help="subscribers to generate (default 2000: nine days of them replay in about 10 s)")
    span = d.add_mutually_exclusive_group()
    span.add_argument("--days", type=int, default=DEMO_DAYS,
                      help=f"days of traffic from Monday 23 November 2026 (default {DEMO_DAYS}: through Tuesday "
                      "1 December, so the weekly scenarios run on Monday 30 November over the week before and "
                      "the monthly ones on 1 December; the silent / low-use model's newly silent subscribers "
                      "need the months before a 1st: --days 72 reaches 1 February with December and January "
                      "behind it; each day adds about a second at 2000 subscribers)")
    span.add_argument("--hours", type=float, default=None, help="the span in hours instead (e.g. 24: one day)")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--examples", type=int, default=5, help="example sends to explain")
    d.set_defaults(handler=_demo)

    sp = sub.add_parser(
        "split",
        help="split a recorded event file by subscriber into a partitioned log",
        description="Split a JSON-lines event file by subscriber into a folder of p-NNNN.jsonl files, "
        "one per partition, with Kafka's default partitioner over the msisdn (what a producer keyed by "
        "msisdn writes, and what the daemon's partitioned source reads). Each file keeps the input's "
        "order. `kairos replay --events FOLDER --workers N` then replays the partitions on N cores "
        "with no routing, with the unsplit file's output.",
    )
    sp.add_argument("--events", required=True, metavar="FILE", help="JSON lines sorted by ts")
    sp.add_argument("--partitions", required=True, type=int, metavar="N",
                    help="how many partitions (a multiple of the cores you will replay on balances them)")
    sp.add_argument("--out", required=True, metavar="FOLDER", help="a new or empty folder")
    sp.set_defaults(handler=_split)

    pr = sub.add_parser(
        "produce",
        help="put a file of events on a Kafka topic, keyed by msisdn (to try the Kafka source)",
        description=textwrap.fill(
        "Produce each JSON line of FILE as one record of a Kafka topic, keyed by its msisdn: "
        "Kafka's default partitioner (murmur2 of the key, as operators' producers keyed by msisdn use) "
        "puts each subscriber's events in one partition, which is what `kairos run` with a kafka source "
        "expects. The topic is created with --partitions N if it is missing; an existing topic keeps its "
        "count. A line that is not a JSON object with a string msisdn is reported with its line number on "
        "standard error, counted and skipped; the rest are produced. Exit status: 0 every line produced; "
        "2 a usage, file or broker error; 3 produced, but lines were skipped. docs/operations.md (\"Scaling out\") "
        "runs two instances over such a topic.", 79),
        epilog="examples:\n"
        "  python -m kairos.traffic --subscribers 2000 --hours 2 --out day.jsonl --reference ref\n"
        "  kairos produce day.jsonl --bootstrap 127.0.0.1:9092 --topic events --partitions 8\n"
        "  python -m kairos.traffic --subscribers 2000 --out - | kairos produce - --bootstrap 127.0.0.1:9092 "
        "--topic events",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pr.add_argument("file", metavar="FILE", help="JSON lines (one event each); - for standard input")
    pr.add_argument("--bootstrap", required=True, metavar="HOST:PORT", help="the Kafka broker(s), comma-separated")
    pr.add_argument("--topic", required=True, metavar="NAME", help="the topic; sources[].topic of kairos run")
    pr.add_argument("--partitions", type=int, metavar="N",
                    help="create the topic with N partitions if it is missing (sources[].partitions of kairos "
                    "run must say the same N); needed when the topic is missing, checked when it exists")
    pr.set_defaults(handler=_produce)

    run = sub.add_parser(
        "run",
        help="the engine daemon (live sources, channels, snapshots)",
        description="Run the engine as a daemon: tail the configured sources, decide sends, deliver them "
        "through the outbox and channels, snapshot state periodically and at shutdown (SIGTERM). "
        "See kairos.example.toml and docs/operations.md.",
    )
    run.add_argument("--config", required=True, metavar="FILE", help="the daemon's TOML configuration")
    run.set_defaults(handler=_run)
    _test_parser(sub)
    return p


class _Version(argparse.Action):
    """``--version``: the version is looked up only when asked for (package metadata costs an import)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from kairos._version import version

        print(f"kairos {version()}")
        parser.exit()


def _refuse_empty_folders(paths: Sequence[str | Path]) -> None:
    """A scenario folder without ``*.kairos`` files is an error: a mistyped folder must not
    pass as a clean check (or an empty replay) of nothing."""
    for p in map(Path, paths):
        if p.is_dir() and next(p.rglob("*.kairos"), None) is None:
            raise FileNotFoundError(f"{p}: no *.kairos files in this folder")


def _time_zone(name: str) -> str:
    """``--tz``: an IANA zone name, refused at once (not with a traceback) if it is unknown."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone '{name}': use an IANA name such as {DEFAULT_TZ}"
        ) from None
    return name


_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration(text: str) -> int:
    """``--max-jump`` and ``--allowed-lateness``: milliseconds, or a whole number with a unit (90s, 1h)."""
    number = text.rstrip("smhd")
    unit = text[len(number):] or "ms"
    if not number.isdigit() or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration: write milliseconds or e.g. 500ms, 90s, 10m, 1h, 1d")
    return int(number) * _UNITS[unit]


def _templates_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--templates", metavar="FILE",
        help=f"the template catalogue every action is checked against (default: a {TEMPLATES_FILE} "
        "in the first scenario folder passed, or beside the first scenario file, that has one)",
    )


def _check(args: argparse.Namespace) -> int:
    from kairos._compile import build_check, catalogue_files, check_reference, compile_plan
    from kairos._template_check import check_templates
    from kairos.adapters import TemplateError
    from kairos.engine import BuildError, ReferenceError

    global _quick_exit
    _quick_exit = True
    collecting = gc.isenabled()
    gc.disable()  # a check builds many small objects and keeps them: collections find nothing (~7 ms)
    try:
        _refuse_empty_folders(args.paths)
        plan = compile_plan(args.paths)
        templates = check_templates(plan, args.paths, args.templates)
        build_check(plan)
        named = check_reference(plan, args.reference) if args.reference else []
        if any(d.severity == "error" for d in named):
            raise dsl.CheckError(named)
    except dsl.CheckError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    except ReferenceError as e:
        print(f"kairos check: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BuildError as e:
        print(f"kairos check: {e}", file=sys.stderr)
        return EXIT_INVALID
    except TemplateError as e:
        print(f"kairos check: {e}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as e:
        print(f"kairos check: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if collecting:
            gc.enable()
    n = len(plan.scenarios)
    policy = " and a policy" if plan.policy is not None else ""
    files = len(plan.files)
    checked = f"; templates checked against {templates}" if templates is not None else ""
    catalogues = catalogue_files(args.paths)
    if catalogues:  # the custom event types the scenarios were checked against
        checked += f"; event types of {', '.join(map(str, catalogues))}"
    if args.reference:
        for d in named:  # warnings only: an error was raised above
            print(d.render(), file=sys.stderr)
        warned = f" ({counted(len(named), 'warning')})" if named else ""
        checked += f"; names checked against {args.reference}{warned}"
    print(f"ok: {counted(n, 'scenario')}{policy} in {counted(files, 'file')}{checked}")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    # what one file replayed in this process needs; the rest (workers, partitions, --by, --stats,
    # --report) is imported where it is used: aiokafka and multiprocessing are ~40 % of the start-up
    import msgspec

    from kairos._compile import compile_plan, refuse_unknown_names
    from kairos._groups import ByError
    from kairos._template_check import check_templates
    from kairos.adapters import TemplateError
    from kairos.engine import (BindError, BuildError, Engine, LocalTime, Reference, ReferenceError, replay,
                               stderr_problem_printer)

    paths = list(args.scenarios) + ([args.policy] if args.policy else [])
    try:
        _refuse_empty_folders(paths)
        plan = compile_plan(paths)
        check_templates(plan, args.scenarios, args.templates)
        reference = Reference.load(args.reference) if args.reference else Reference()
        refuse_unknown_names(plan, reference)  # a list or area the data lacks, shown at its use
        Engine(plan, reference, sink=_discard, tz=args.tz)  # binding fails early on missing data
    except dsl.CheckError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    except BuildError as e:
        print(f"kairos replay: {e}", file=sys.stderr)
        return EXIT_INVALID
    except TemplateError as e:
        print(f"kairos replay: {e}", file=sys.stderr)
        return EXIT_INVALID
    except (BindError, ReferenceError, OSError) as e:
        print(f"kairos replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    measuring = bool(args.stats or args.report or args.control_out)
    partitioned = args.events != "-" and Path(args.events).is_dir()
    if args.workers < 1 or ((args.workers > 1 or partitioned) and (args.events == "-" or args.control_out)):
        print(
            "kairos replay: --workers N needs N >= 1 and an --events FILE every worker can read, and "
            "writes no --control-out, nor does a partitioned --events folder; use --workers 1 and one "
            "file for those",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.tags_out == "-" and args.out == "-":
        print("kairos replay: --tags-out - and the sends would share standard output; give --out FILE",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        groupings = _groupings(args, plan, reference)
    except ByError as e:
        print(f"kairos replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    control: Callable[[Send], None] | None = None
    engines: list[Engine] = []
    if args.report:
        from kairos._report import Series, render, sends_tee
    series = Series(LocalTime(args.tz)) if args.report else None
    #: a channel capacity split over workers or partitions: their engines take places from one folder
    grants: GrantFolder | None = None
    #: engines in other processes, or one per partition: the counts come merged in the replay's report
    apart = args.workers > 1 or partitioned

    def make_engine(sink: Callable[[Send], None]) -> Engine:
        if series is not None and not apart:  # apart, the parent counts the merged sends (sends_tee)
            inner = sink

            def sink(send: Send) -> None:
                series.add(send.scenario, send.send_at)
                inner(send)

        grouper = None
        if groupings:
            from kairos._groups import Grouper

            grouper = Grouper(plan, groupings)
        engine = Engine(plan, reference, sink=sink, tz=args.tz, measure=measuring, control_sink=control,
                        dedup_window_ms=args.dedup_window, capacity=grants, observer=grouper)
        if grouper is not None:
            grouper.engine = engine
        engines.append(engine)
        return engine

    with ExitStack() as stack:
        try:
            events = None if partitioned else _open_in(stack, args.events)
            out = _open_out(stack, args.out)
            if series is not None and apart:
                out = sends_tee(out, series)
            control_out = stack.enter_context(open(args.control_out, "wb")) if args.control_out else None
            tags_out = _open_out(stack, args.tags_out) if args.tags_out else None
        except OSError as e:
            print(f"kairos replay: {e}", file=sys.stderr)
            return EXIT_USAGE
        if (args.workers > 1 or partitioned) and plan.policy is not None and plan.policy.capacity:
            import tempfile

            from kairos.adapters import GrantFolder

            grants = GrantFolder(stack.enter_context(tempfile.TemporaryDirectory(prefix="kairos-capacity-")))
        if control_out is not None:
            encode = msgspec.json.Encoder().encode

            def control(send: Send) -> None:
                control_out.write(encode(send) + b"\n")
        else:
            control = None
        from kairos._progress import progress  # lazy: a progress line (tqdm) only on a terminal

        # how far through: the partitioned log's bytes, the file's, or the open stream's (standard input)
        source = _log_size(args.events) if partitioned else args.events if args.workers > 1 else events
        bar = progress("replay", source, sends_to_stdout="-" in (args.out, args.tags_out))
        if bar is not None:
            stack.callback(bar.close)  # cleared before the summary, and on an error
        started = time.perf_counter()
        printer = stderr_problem_printer("<stdin>" if args.events == "-" else args.events)
        if bar is not None:
            printer = bar.around(printer)
        screening = dict(max_jump=args.max_jump or None, lateness=args.allowed_lateness, tags_out=tags_out)
        if args.workers > 1 or partitioned:
            from kairos.adapters import partition_files, partition_of
            from kairos.engine import replay_partitioned, replay_workers

            try:
                if partitioned:
                    files = partition_files(args.events)
                    count = max(files) + 1
                    report = replay_partitioned(make_engine, files, out, workers=args.workers,
                                                on_problem=printer, owns=lambda p, m: partition_of(m, count) == p,
                                                progress=bar, **screening)
                else:
                    report = replay_workers(make_engine, args.events, out, workers=args.workers, on_problem=printer,
                                            progress=bar, **screening)
            except (ValueError, RuntimeError) as e:
                print(f"kairos replay: {e}", file=sys.stderr)
                return EXIT_USAGE
        else:
            assert events is not None
            report = replay(make_engine, events, out, on_problem=printer, progress=bar, **screening)
        out.flush()
        if tags_out is not None:
            tags_out.flush()
        elapsed = time.perf_counter() - started
    if not args.quiet:
        rate = report.events / elapsed if elapsed > 0 else 0.0
        wild = f", {counted(report.wild, 'wild timestamp')}" if report.wild else ""
        print(
            f"kairos replay: {counted(report.events, 'event')}, {report.malformed:,} malformed{wild} and "
            f"{report.late:,} out-of-order {'line' if report.late == 1 else 'lines'} skipped, "
            f"{_failed(report.failed)}{_dups(report.duplicates)}{counted(report.sends, 'send')}{_deferred(report.deferred, report.sends)}"
            f"{_writes(report.tag_writes)}{_loops(report.trigger_loops)} "
            f"({elapsed:.2f} s, {rate:,.0f} events/s)",
            file=sys.stderr,
        )
    held = sum(st.held for st in report.measures.stats) if report.measures is not None else 0  # only a policy holds
    if held:
        print(f"kairos replay: {counted(held, 'trigger')} still held by the contact policy at the "
              "end of input (an arbitration window or a capacity queue not yet closed); not sent",
              file=sys.stderr)
    if measuring:
        from kairos._groups import merge, tables
        from kairos._measure import feedback_seen, measure, table, unmatched_text

        measures = report.measures
        assert measures is not None  # measuring always builds the policy stage
        rows = measure(plan, measures.stats)
        # the policy's feedback retention, from an engine of this process (workers' engines are elsewhere)
        stage = (engines[0] if engines else Engine(plan, reference, sink=_discard, tz=args.tz, measure=True)).policy
        assert stage is not None
        names = [s.name for s in plan.scenarios]
        grouped = merge(measures.observed, len(groupings)) if groupings else None
        answered = feedback_seen(measures.stats, measures.unmatched_feedback)  # else conversion is unknown, not 0
        if args.stats:
            sys.stderr.write(table(rows, unmatched_text(measures.unmatched_feedback, stage.feedback.retention_ms),
                                   feedback=answered))
            if grouped is not None:
                sys.stderr.write(tables(grouped, groupings, names))
        if args.report:
            files = ", ".join(Path(f).name for f in plan.files)
            subtitle = (f"{report.events:,} events from {Path(args.events).name}; scenarios from {files}; "
                        f"{'with' if plan.policy else 'without'} a contact policy")
            try:
                Path(args.report).write_text(render(rows, series, title="Kairos scenario report",  # type: ignore[arg-type]
                                                    subtitle=subtitle, unmatched=measures.unmatched_feedback,
                                                    retention_ms=stage.feedback.retention_ms,
                                                    groupings=groupings, grouped=grouped, feedback=answered),
                                             encoding="utf-8")
            except OSError as e:
                print(f"kairos replay: cannot write the report: {e}", file=sys.stderr)
                return EXIT_USAGE
    if report.skipped or report.failed_deadlines:
        print(_skipped(report), file=sys.stderr)
        return EXIT_SKIPPED
    return EXIT_OK


def _groupings(args: argparse.Namespace, plan: Plan, reference: Reference) -> list[Grouping]:
    """The ``--by`` groupings, checked: a tag, written ``tags.NAME``, that someone has or a scenario uses."""
    from kairos._groups import ByError, check_known, known_tags, parse_by

    if not args.by:
        return []
    groupings = parse_by(args.by)
    if not (args.stats or args.report):
        raise ByError("--by groups the counts of --stats and --report: add --stats (a table on standard "
                      "error) or --report FILE.html")
    check_known(groupings, known_tags(plan, reference))
    return groupings


def _skipped(report: ReplayReport) -> str:
    """The last line of a replay that skipped lines or deadlines: how many, by reason, and the exit status."""
    reasons = [(report.malformed, "malformed"), (report.wild, "wild timestamp"), (report.late, "out of order"),
               (report.failed, "processing failed")]
    counts = ", ".join(f"{n:,} {what}" for n, what in reasons if n)
    lines = "line was" if report.skipped == 1 else "lines were"
    skipped = f"{report.skipped:,} {lines} skipped ({counts})" if report.skipped else ""
    d = report.failed_deadlines
    deadlines = f"{counted(d, 'deadline')} {'was' if d == 1 else 'were'} skipped (processing failed)" if d else ""
    both = " and ".join(part for part in (skipped, deadlines) if part)
    return f"kairos replay: finished, but {both}; exit status {EXIT_SKIPPED}"


def _failed(n: int) -> str:
    return f"{counted(n, 'event')} failed, " if n else ""


def _dups(n: int) -> str:
    return f"{counted(n, 'duplicate')} skipped, " if n else ""


def _deferred(n: int, sends: int) -> str:
    """The summary's count of sends that go out later than their trigger (``after``, quiet or working
    hours, a capacity), when there were any."""
    if not n:
        return ""
    return ", deferred past its trigger time" if sends == 1 else f", {n:,} of them deferred past their trigger time"


def _writes(n: int) -> str:
    """The summary's count of tag writes (``set`` clauses), when there were any."""
    return f", {counted(n, 'tag write')}" if n else ""


def _loops(cut: int) -> str:
    """The summary's note on trigger chains the engine cut: sends an author did not mean."""
    from kairos.engine import MAX_TRIGGER_DEPTH

    if not cut:
        return ""
    chains = "chain" if cut == 1 else "chains"
    return (f"; {cut:,} trigger {chains} cut after {MAX_TRIGGER_DEPTH} re-entries "
            "(does a scenario match its own triggers?)")


def _discard(_: object) -> None:
    return None


def _log_size(folder: str) -> int | None:
    """The bytes of a partitioned log's files (None: none there; replay says so)."""
    from kairos.adapters import partition_files

    try:
        return sum(p.stat().st_size for p in partition_files(folder).values())
    except (OSError, ValueError):
        return None


def _open_in(stack: ExitStack, name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    return stack.enter_context(open(name, "rb"))


def _open_out(stack: ExitStack, name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdout.buffer
    return stack.enter_context(open(name, "wb"))


def _split(args: argparse.Namespace) -> int:
    from kairos.adapters import split_file

    out = Path(args.out)
    if args.partitions < 1:
        print("kairos split: --partitions must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"kairos split: {out} exists and is not an empty folder; name a new one", file=sys.stderr)
        return EXIT_USAGE
    from kairos._progress import progress  # lazy: a progress line (tqdm) only on a terminal

    bar = progress("split", args.events, unit="lines")
    try:
        with ExitStack() as stack:
            if bar is not None:
                stack.callback(bar.close)  # cleared before anything else is printed
            counts = split_file(args.events, out, args.partitions, progress=bar)
    except OSError as e:
        print(f"kairos split: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"kairos split: {counted(sum(counts), 'line')} into {counted(args.partitions, 'partition')} in {out} "
          f"(smallest {min(counts):,}, largest {max(counts):,})", file=sys.stderr)
    return EXIT_OK


def _produce(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from kairos._produce import ProduceError, run_produce  # lazy: aiokafka loads only for produce

    if args.partitions is not None and args.partitions < 1:
        print("kairos produce: --partitions must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = run_produce(args.file, bootstrap=args.bootstrap, topic=args.topic, partitions=args.partitions)
    except (OSError, ProduceError, KafkaError) as e:
        print(f"kairos produce: {e or type(e).__name__}", file=sys.stderr)
        return EXIT_USAGE
    made = "created with" if report.created else "has"
    spread = ", ".join(f"{n:,}" for n in report.per_partition.values())
    print(f"kairos produce: {counted(report.produced, 'record')} to {report.topic} ({made} "
          f"{counted(report.partitions, 'partition')}; per partition {spread}), "
          f"{counted(len(report.malformed), 'malformed line')} skipped", file=sys.stderr)
    return EXIT_SKIPPED if report.malformed else EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from kairos._demo import run_demo  # lazy: the demo and its traffic generator (~0.1 s) load only for it

    hours = args.hours if args.hours is not None else 24.0 * args.days
    return run_demo(subscribers=args.subscribers, hours=hours, seed=args.seed, examples=args.examples)


def _explain(args: argparse.Namespace) -> int:
    from kairos._compile import compile_plan, refuse_unknown_names
    from kairos._explain import explain, unknown_scenarios
    from kairos._template_check import check_templates
    from kairos.adapters import TemplateCatalog, TemplateError
    from kairos.engine import BindError, BuildError, Engine, Reference, ReferenceError, stderr_problem_printer

    paths = list(args.scenarios) + ([args.policy] if args.policy else [])
    try:
        _refuse_empty_folders(paths)
        plan = compile_plan(paths)
        templates = check_templates(plan, args.scenarios, args.templates)
        catalog = TemplateCatalog.load(templates) if templates is not None else None
        reference = Reference.load(args.reference) if args.reference else Reference()
        refuse_unknown_names(plan, reference)  # a list or area the data lacks, shown at its use (as replay)
        Engine(plan, reference, sink=_discard, tz=args.tz)
    except dsl.CheckError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    except (BuildError, TemplateError) as e:
        print(f"kairos explain: {e}", file=sys.stderr)
        return EXIT_INVALID
    except (BindError, ReferenceError, OSError) as e:
        print(f"kairos explain: {e}", file=sys.stderr)
        return EXIT_USAGE
    unknown = unknown_scenarios(plan, args.scenario)
    if unknown is not None:
        print(f"kairos explain: {unknown}", file=sys.stderr)
        return EXIT_USAGE
    with ExitStack() as stack:
        try:
            events = _open_in(stack, args.events)
        except OSError as e:
            print(f"kairos explain: {e}", file=sys.stderr)
            return EXIT_USAGE
        name = "<stdin>" if args.events == "-" else args.events
        try:
            for line in explain(plan, reference, events, args.msisdn, tz=args.tz,
                                on_problem=stderr_problem_printer(name), scenarios=args.scenario, catalog=catalog):
                print(line)
        except BuildError as e:  # its observing engine generates other code than the one built above
            print(f"kairos explain: {e}", file=sys.stderr)
            return EXIT_INVALID
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from kairos._daemon import run_daemon  # lazy: the daemon (anyio, channels, HTTP, Kafka: ~0.1 s) only for run

    return run_daemon(args.config)


# --- kairos test: a scenario's recorded stories and the sends they must give (kairos/_scenario_tests.py) ---


def _test_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from kairos._test_format import FORMAT, SUFFIX

    t = sub.add_parser(
        "test",
        help="run scenario tests: recorded events and the sends they must give",
        description="Run each test (a NAME.test.toml file and its recorded NAME.events.jsonl) through the "
        "replay kairos replay uses; print one line per test and, for a failure, what was missing, sent "
        "differently, not expected or suppressed for another reason, in local time.",
        epilog="the test file:\n\n" + FORMAT + "\nexamples:\n  kairos test scenarios/tests"
        "                    every test below the folder\n  kairos test scenarios/tests/airport.test.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("paths", nargs="+", metavar="PATH", help=f"a *{SUFFIX} file, or a folder: every test below it")
    t.set_defaults(handler=_test)


def _test(args: argparse.Namespace) -> int:
    from kairos._scenario_tests import run_paths

    try:
        return run_paths(args.paths, sys.stdout)
    except (OSError, ValueError) as e:
        print(f"kairos test: {e}", file=sys.stderr)
        return EXIT_USAGE
