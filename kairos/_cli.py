"""The ``kairos`` command: check, replay, run, demo (LANGUAGE.md §8).

This is the one place that wires the scenario language (``dsl``) to the
runtime (``engine``): it compiles files against the engine's event schema and
hands the plan to an engine.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Sequence

import dsl
from adapters import TemplateCatalog, TemplateError
from engine import BindError, Engine, Reference, ReferenceError, event_schema, replay
from engine._localtime import DEFAULT_TZ
from engine._replay import stderr_problem_printer
from engine._workers import replay_workers
from kairos._template_check import TEMPLATES_FILE, find_templates, template_diagnostics
from plan import Plan

CHANNELS = frozenset({"sms", "popup", "call"})

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

_EPILOG = """\
examples:
  kairos check scenarios/                       check every *.kairos file below scenarios/
  kairos replay --scenarios scenarios/ --events day.jsonl --reference scenarios/reference
                                                run the catalogue over a recorded day
  kairos replay --scenarios my.kairos --events - < events.jsonl
                                                events from standard input, sends to standard output
  kairos demo                                   a generated day, the bundled scenarios, a summary

The scenario language is described in README.md ("The scenario author's guide").
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kairos",
        description="Kairos: real-time scenario marketing for mobile operators. "
        "Scenarios are written in the Kairos language (*.kairos files); "
        "`check` validates them, `replay` runs them over recorded events.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser(
        "check",
        help="parse and check scenario files",
        description="Parse and check scenario files. Errors are printed as FILE:LINE:COL: error: "
        "MESSAGE with the source line and a caret; the exit status is 1 if any file has an error.",
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="a .kairos file or a folder of them")
    _templates_option(c)
    c.set_defaults(handler=_check)

    r = sub.add_parser(
        "replay",
        help="run scenarios over a recorded event file",
        description="Run scenarios over a recorded event file (JSON lines sorted by ts) in event "
        "time and write one JSON line per send: id, scenario, msisdn, ts, send_at, channel, "
        "template, params. The same input always gives the same output, byte for byte. "
        "Malformed lines are reported with their line number on standard error, counted and skipped.",
    )
    r.add_argument("--scenarios", nargs="+", required=True, metavar="PATH",
                   help=".kairos files or folders of them")
    r.add_argument("--events", required=True, metavar="FILE", help="JSON lines; - for standard input")
    r.add_argument("--reference", metavar="DIR",
                   help="reference data folder: cells.csv, tags.jsonl, lists/NAME.txt, kb.csv")
    r.add_argument("--policy", metavar="FILE", help="a .kairos file holding the contact policy")
    r.add_argument("--out", default="-", metavar="FILE", help="where sends go; - (default) for standard output")
    r.add_argument("--tz", default=DEFAULT_TZ, help=f"local time zone for during/hour()/day() (default {DEFAULT_TZ})")
    r.add_argument("--quiet", action="store_true", help="no summary on standard error")
    r.add_argument("--workers", type=int, default=1, metavar="N",
                   help="spread subscribers over N processes (one per core) by a stable hash of "
                   "msisdn; the output is identical to one worker's (default 1; needs --events FILE)")
    _templates_option(r)
    r.set_defaults(handler=_replay)

    d = sub.add_parser(
        "demo",
        help="a generated day, the bundled scenarios, a readable result",
        description="Generate a synthetic day for a few thousand subscribers, run the bundled "
        "scenario catalogue over it and show what was sent and why. Needs no setup.",
    )
    d.add_argument("--subscribers", type=int, default=3000)
    d.add_argument("--hours", type=float, default=24.0)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--examples", type=int, default=5, help="example sends to explain")
    d.set_defaults(handler=_demo)

    run = sub.add_parser("run", help="the engine daemon (live sources, channels, snapshots)")
    run.add_argument("--config", required=True, metavar="FILE")
    run.set_defaults(handler=_run)
    return p


def compile_plan(paths: Sequence[str | Path]) -> Plan:
    """Compile scenario (and policy) files against the engine's event schema."""
    return dsl.compile_paths(list(paths), event_schema(), CHANNELS)


def _templates_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--templates", metavar="FILE",
        help=f"the template catalogue every action is checked against (default: a {TEMPLATES_FILE} "
        "in the first scenario folder passed, or beside the first scenario file, that has one)",
    )


def check_templates(plan: Plan, paths: Sequence[str | Path], templates: str | None) -> Path | None:
    """Check every action against the template catalogue; returns the catalogue used (None: none found).

    Raises ``dsl.CheckError`` (the actions at fault) or ``TemplateError`` (an unreadable catalogue).
    """
    path = Path(templates) if templates is not None else find_templates(paths)
    if path is None:
        return None
    problems = template_diagnostics(plan, TemplateCatalog.load(path))
    if problems:
        raise dsl.CheckError(problems)
    return path


def _check(args: argparse.Namespace) -> int:
    try:
        plan = compile_plan(args.paths)
        templates = check_templates(plan, args.paths, args.templates)
    except dsl.CheckError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    except TemplateError as e:
        print(f"kairos check: {e}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as e:
        print(f"kairos check: {e}", file=sys.stderr)
        return EXIT_USAGE
    n = len(plan.scenarios)
    policy = " and a policy" if plan.policy is not None else ""
    files = len(plan.files)
    checked = f"; templates checked against {templates}" if templates is not None else ""
    print(f"ok: {n} scenario{'s' * (n != 1)}{policy} in {files} file{'s' * (files != 1)}{checked}")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    paths = list(args.scenarios) + ([args.policy] if args.policy else [])
    try:
        plan = compile_plan(paths)
        check_templates(plan, args.scenarios, args.templates)
        reference = Reference.load(args.reference) if args.reference else Reference()
        Engine(plan, reference, sink=_discard, tz=args.tz)  # binding fails early on missing data
    except dsl.CheckError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    except TemplateError as e:
        print(f"kairos replay: {e}", file=sys.stderr)
        return EXIT_INVALID
    except (BindError, ReferenceError, OSError) as e:
        print(f"kairos replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers < 1 or (args.workers > 1 and args.events == "-"):
        print(
            "kairos replay: --workers N needs N >= 1 and an --events FILE every worker can read; "
            "use --workers 1 for standard input",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if plan.policy is not None:
        print(
            "kairos replay: warning: the contact policy is checked but not enforced by this "
            "version; sends are not filtered by it",
            file=sys.stderr,
        )
    with ExitStack() as stack:
        try:
            events = _open_in(stack, args.events)
            out = _open_out(stack, args.out)
        except OSError as e:
            print(f"kairos replay: {e}", file=sys.stderr)
            return EXIT_USAGE
        started = time.perf_counter()
        factory = lambda sink: Engine(plan, reference, sink=sink, tz=args.tz)  # noqa: E731
        printer = stderr_problem_printer("<stdin>" if args.events == "-" else args.events)
        if args.workers > 1:
            try:
                report = replay_workers(factory, args.events, out, workers=args.workers, on_problem=printer)
            except (ValueError, RuntimeError) as e:
                print(f"kairos replay: {e}", file=sys.stderr)
                return EXIT_USAGE
        else:
            report = replay(factory, events, out, on_problem=printer)
        out.flush()
        elapsed = time.perf_counter() - started
    if not args.quiet:
        rate = report.events / elapsed if elapsed > 0 else 0.0
        print(
            f"kairos replay: {report.events} events, {report.malformed} malformed and "
            f"{report.late} out-of-order lines skipped, {report.sends} sends "
            f"({elapsed:.2f} s, {rate:,.0f} events/s)",
            file=sys.stderr,
        )
    return EXIT_OK


def _discard(_: object) -> None:
    return None


def _open_in(stack: ExitStack, name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdin.buffer
    return stack.enter_context(open(name, "rb"))


def _open_out(stack: ExitStack, name: str) -> IO[bytes]:
    if name == "-":
        return sys.stdout.buffer
    return stack.enter_context(open(name, "wb"))


def _demo(args: argparse.Namespace) -> int:
    from kairos._demo import run_demo

    return run_demo(subscribers=args.subscribers, hours=args.hours, seed=args.seed, examples=args.examples)


def _run(args: argparse.Namespace) -> int:
    print(
        "kairos run: the daemon is not part of this version yet; use `kairos replay` to run "
        "scenarios over recorded events",
        file=sys.stderr,
    )
    return EXIT_USAGE
