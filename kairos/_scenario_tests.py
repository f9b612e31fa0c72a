"""``kairos test``: a scenario's recorded story and the sends it must give, checked without pytest.

A test is a ``NAME.test.toml`` file: which scenarios (and reference data,
policy, templates, time zone) to run, over which recorded events (by default
``NAME.events.jsonl`` beside it), and the sends expected — scenario, msisdn,
local time, channel, template, optionally the parameters — and the triggers
expected to be suppressed, with the reason. Each test runs through the replay
``kairos replay`` uses (``kairos.engine.replay``), with an engine observer that
hears why a trigger was not sent; a failure prints a diff in local times. The
file format is taught by ``kairos test --help`` (``kairos._test_format``) and docs/catalogue.md.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import io
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from kairos import dsl
from kairos._compile import compile_plan, refuse_unknown_names
from kairos._test_format import EVENTS_SUFFIX, REASONS, SUFFIX
from kairos._template_check import check_templates
from kairos._words import count
from kairos.adapters import TemplateError
from kairos.engine import (
    DEFAULT_TZ,
    BindError,
    BuildError,
    Engine,
    InputProblem,
    LocalTime,
    Reference,
    ReferenceError,
    Send,
    replay,
)
from kairos.plan import Plan


class TestFileError(Exception):
    """A test that cannot run: its file (or its events or scenario file) is at fault, with the place."""

    def __init__(self, path: Path | str, line: int, message: str, col: int = 0) -> None:
        super().__init__(message)
        self.path, self.line, self.col, self.message = str(path), line, col, message

    def __str__(self) -> str:
        place = f"{self.path}:{self.line}" + (f":{self.col}" if self.col else "") if self.line else self.path
        return f"{place}: error: {self.message}"


@dataclass(frozen=True)
class ExpectedSend:
    """One ``[[send]]``: what must be sent (``params``, ``send_at``: checked only when given)."""

    scenario: str
    msisdn: str
    ts: int
    channel: str
    template: str
    params: dict[str, Any] | None
    send_at: int | None
    line: int


@dataclass(frozen=True)
class ExpectedSuppression:
    """One ``[[suppressed]]``: a trigger that must be stopped for ``reason`` (at ``ts``, when given)."""

    scenario: str
    msisdn: str
    reason: str
    ts: int | None
    line: int


@dataclass
class ScenarioTest:
    """A parsed ``NAME.test.toml``: what to run, and what it must give."""

    path: Path
    scenarios: list[Path]
    events: Path
    reference: Path | None = None
    policy: Path | bool | None = None
    templates: Path | None = None
    tz: str = DEFAULT_TZ
    only: tuple[str, ...] | None = None
    description: str = ""
    sends: list[ExpectedSend] = field(default_factory=list)
    suppressed: list[ExpectedSuppression] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """A test's result: passed, or the lines that say why not (a diff, or the error)."""

    path: Path
    passed: bool
    lines: tuple[str, ...] = ()


# --- finding and reading tests ------------------------------------------------------------------


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """The test files named: a ``*.test.toml`` file, or every one below a folder (sorted).
    Raises ``FileNotFoundError`` (no such path, a folder without tests) or ``ValueError`` (another file)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            below = sorted(p.rglob(f"*{SUFFIX}"))
            if not below:
                raise FileNotFoundError(f"{p}: no *{SUFFIX} files in this folder")
            found.extend(below)
        elif p.is_file():
            if not p.name.endswith(SUFFIX):
                raise ValueError(f"{p}: a test file's name ends in {SUFFIX}")
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return list(dict.fromkeys(found))


_TOP = {"description", "scenarios", "events", "reference", "policy", "templates", "tz", "only", "send",
        "suppressed"}
_SEND = {"scenario": str, "msisdn": str, "time": str, "channel": str, "template": str}
_SEND_OPTIONAL = {"params", "send_at"}
_SUPPRESSED = {"scenario": str, "msisdn": str, "reason": str}
_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ T]+(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) +)?)(\d\d?):(\d\d)(?::(\d\d)(?:\.(\d{3}))?)?")


def load(path: Path) -> ScenarioTest:
    """Read and check one test file; raises ``TestFileError`` at the first problem, with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TestFileError(path, 0, f"cannot read the test: {e}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
        if m:
            raise TestFileError(path, int(m[1]), msg[: m.start()], int(m[2])) from None
        if msg.endswith(" (at end of document)"):
            raise TestFileError(path, max(len(text.splitlines()), 1), msg.removesuffix(" (at end of document)")
                                + " at the end of the file") from None
        raise TestFileError(path, 0, msg) from None
    places = _Places(path, text)
    for key in doc:
        if key not in _TOP:
            raise places.error(f"unknown key '{key}'{_mean(key, _TOP)}", places.key(key))
    base = path.parent

    def here(name: str) -> Path:  # a path written in the test, shown as short as it can be
        return Path(os.path.normpath(base / name))

    scenarios = doc.get("scenarios")
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if not scenarios or not isinstance(scenarios, list) or not all(isinstance(s, str) for s in scenarios):
        raise places.error("'scenarios' must list the scenario files or folders to run, e.g. "
                           "scenarios = [\"../offers.kairos\"]", places.key("scenarios") or 1)
    tz = _string(doc, "tz", places) or DEFAULT_TZ
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise places.error(f"unknown time zone '{tz}': use an IANA name such as {DEFAULT_TZ}",
                           places.key("tz")) from None
    policy = doc.get("policy")
    if policy is not None and not isinstance(policy, (str, bool)):
        raise places.error("'policy' is a policy file, or false to leave out a policy among the scenario files",
                           places.key("policy"))
    only = doc.get("only")
    if only is not None and (not isinstance(only, list) or not all(isinstance(s, str) for s in only)):
        raise places.error("'only' lists scenario names, e.g. only = [\"data_90\"]", places.key("only"))
    events = _string(doc, "events", places)
    reference = _string(doc, "reference", places)
    templates = _string(doc, "templates", places)
    test = ScenarioTest(
        path=path,
        scenarios=[here(s) for s in scenarios],
        events=here(events) if events else path.with_name(path.name[: -len(SUFFIX)] + EVENTS_SUFFIX),
        reference=here(reference) if reference else None,
        policy=here(policy) if isinstance(policy, str) else (None if policy is True else policy),
        templates=here(templates) if templates else None,
        tz=tz,
        only=tuple(only) if only is not None else None,
        description=_string(doc, "description", places) or "",
    )
    clock = LocalTime(tz)
    for n, entry in enumerate(_entries(doc, "send", places)):
        line = places.table("send", n)
        _keys(entry, _SEND, _SEND_OPTIONAL, "send", places, line)
        params = entry.get("params")
        if params is not None and not isinstance(params, dict):
            raise places.error("'params' is a table, e.g. params = { pct = 91 }", places.key("params", line))
        send_at = entry.get("send_at")
        test.sends.append(ExpectedSend(
            entry["scenario"], entry["msisdn"], _time(entry["time"], clock, places, places.key("time", line)),
            entry["channel"], entry["template"], params,
            None if send_at is None else _time(send_at, clock, places, places.key("send_at", line)), line))
    for n, entry in enumerate(_entries(doc, "suppressed", places)):
        line = places.table("suppressed", n)
        _keys(entry, _SUPPRESSED, {"time"}, "suppressed", places, line)
        reason = entry["reason"]
        if reason not in REASONS:
            raise places.error(f"unknown reason '{reason}'{_mean(reason, REASONS)}; the reasons are "
                               + ", ".join(REASONS), places.key("reason", line))
        when = entry.get("time")
        test.suppressed.append(ExpectedSuppression(
            entry["scenario"], entry["msisdn"], reason,
            None if when is None else _time(when, clock, places, places.key("time", line)), line))
    return test


class _Places:
    """Lines of a test file's keys and tables, for errors (``tomllib`` keeps no positions)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def key(self, key: str, start: int = 1) -> int:
        """The line of ``key = …`` at or after line ``start`` (0: not found)."""
        pattern = re.compile(rf"\s*\"?{re.escape(key)}\"?\s*=")
        for n in range(max(start, 1), len(self.lines) + 1):
            if pattern.match(self.lines[n - 1]):
                return n
        return 0 if start == 1 else start

    def table(self, name: str, index: int) -> int:
        """The line of the ``index``-th ``[[name]]`` header (or of ``name = [...]``)."""
        pattern = re.compile(rf"\s*\[\[\s*\"?{re.escape(name)}\"?\s*\]\]")
        seen = 0
        for n, text in enumerate(self.lines, 1):
            if pattern.match(text):
                if seen == index:
                    return n
                seen += 1
        return self.key(name) or 1

    def error(self, message: str, line: int) -> TestFileError:
        return TestFileError(self.path, line, message)


def _string(doc: dict[str, Any], key: str, places: _Places) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise places.error(f"'{key}' must be a string", places.key(key))
    return value


def _entries(doc: dict[str, Any], name: str, places: _Places) -> list[dict[str, Any]]:
    value = doc.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise places.error(f"'{name}' is a list of tables: write each as [[{name}]]", places.key(name) or 1)
    return value


def _keys(entry: dict[str, Any], required: dict[str, type], optional: set[str], name: str,
          places: _Places, line: int) -> None:
    for key in entry:
        if key not in required and key not in optional:
            raise places.error(f"unknown key '{key}' in [[{name}]]{_mean(key, [*required, *optional])}",
                               places.key(key, line))
    for key, kind in required.items():
        if key not in entry:
            raise places.error(f"[[{name}]] needs '{key}'", line)
        if key != "time" and not isinstance(entry[key], kind):
            raise places.error(f"'{key}' must be a string", places.key(key, line))


def _time(value: Any, clock: LocalTime, places: _Places, line: int) -> int:
    """Epoch ms of a local time written ``YYYY-MM-DD [Ddd] HH:MM[:SS[.mmm]]`` (or a TOML local date-time)."""
    if isinstance(value, _dt.datetime) and value.tzinfo is None:
        value = value.isoformat(sep=" ")
    m = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise places.error(f"'{value}' is not a local time: write \"YYYY-MM-DD HH:MM\" (seconds optional)", line)
    y, mo, d, wd, h, mi, s, ms = m.groups()
    try:
        local = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=_dt.UTC)
    except ValueError as e:
        raise places.error(f"'{value}' is not a local time: {e}", line) from None
    if wd is not None and local.strftime("%a") != wd:
        raise places.error(f"'{value}': {local.date()} is a {local.strftime('%A')}", line)
    return clock.to_utc(int(local.timestamp()) * 1000 + int(ms or 0))


def _mean(word: str, choices: Sequence[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


# --- running -------------------------------------------------------------------------------------


class _Recorder:
    """The engine observer: every trigger stopped, with its reason (``kairos explain`` hears the same;
    details an observer may also be given are not needed here)."""

    def __init__(self, plan: Plan) -> None:
        self.names = [s.name for s in plan.scenarios]
        self.stopped: list[tuple[str, str, int, str]] = []  # scenario, msisdn, trigger ts, reason
        self.completed_for: set[tuple[str, str]] = set()

    def completed(self, i: int, m: str, t: int, e: Any, a: tuple[Any, ...], *_: Any) -> None:
        self.completed_for.add((self.names[i], m))

    def wrote(self, i: int, m: str, t: int, tags: dict[str, Any], *_: Any) -> None:
        pass

    def passed_over(self, i: int, m: str, t: int, *_: Any) -> None:
        pass

    def gated(self, i: int, m: str, t: int, reason: str, *_: Any) -> None:
        self.stopped.append((self.names[i], m, t, reason))

    def policy(self, i: int, m: str, t: int, trigger_id: str, verdict: str, detail: str, *_: Any) -> None:
        if verdict not in ("sent", "wait"):
            self.stopped.append((self.names[i], m, t, verdict))


#: compiled plans of one ``kairos test`` run, by what they were compiled from: tests of one catalogue
#: compile it once (a plan is immutable; the reference data is not, and is read for each test)
Plans = dict[tuple[tuple[Path, ...], Path | bool | None, Path | None], Plan]


def prepare(test: ScenarioTest, plans: Plans | None = None) -> tuple[Plan, Reference]:
    """The test's plan (checked against its templates) and reference data, as ``kairos replay`` builds
    them. Raises ``dsl.CheckError``, ``TemplateError``, ``BuildError``, ``BindError``, ``ReferenceError``, ``OSError``."""
    key = (tuple(test.scenarios), test.policy, test.templates)
    plan = plans.get(key) if plans is not None else None
    if plan is None:
        plan = _compile(test)
        if plans is not None:
            plans[key] = plan
    reference = Reference.load(test.reference) if test.reference else Reference()
    refuse_unknown_names(plan, reference)
    return plan, reference


#: lines of a scenario error shown under a failed test (a missing reference folder fails every use)
_SHOWN = 9


def _compile(test: ScenarioTest) -> Plan:
    for p in test.scenarios:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such scenario file or folder")
        if p.is_dir() and next(p.rglob("*.kairos"), None) is None:
            raise FileNotFoundError(f"{p}: no *.kairos files in this folder")
    paths: list[Path] = list(test.scenarios) + ([test.policy] if isinstance(test.policy, Path) else [])
    plan = compile_plan(paths)
    if test.policy is False:
        plan = msgspec.structs.replace(plan, policy=None)
    check_templates(plan, test.scenarios, str(test.templates) if test.templates else None)
    return plan


def run(test: ScenarioTest, plans: Plans | None = None) -> Outcome:
    """Replay the test's events through its scenarios and compare what was sent and stopped
    (``plans``: the plans compiled so far in this run, to reuse)."""
    try:
        plan, reference = prepare(test, plans)
    except dsl.CheckError as e:
        shown = str(e).rstrip("\n").splitlines()
        more = f"… and {len(shown) - _SHOWN} more lines" if len(shown) > _SHOWN else ""
        return Outcome(test.path, False, ("the scenarios do not check:", *shown[:_SHOWN], *([more] if more else [])))
    except (TemplateError, BuildError, BindError, ReferenceError, OSError) as e:
        return Outcome(test.path, False, (str(e),))
    names = {s.name for s in plan.scenarios}
    for exp in [*test.sends, *test.suppressed]:
        if exp.scenario not in names:
            return Outcome(test.path, False, (str(TestFileError(
                test.path, exp.line, f"no scenario '{exp.scenario}' among the test's scenarios{_mean(exp.scenario, names)}")),))
    for name in test.only or ():
        if name not in names:
            return Outcome(test.path, False, (str(TestFileError(
                test.path, _Places(test.path, test.path.read_text(encoding="utf-8")).key("only"),
                f"no scenario '{name}' among the test's scenarios{_mean(name, names)}")),))
    recorder = _Recorder(plan)
    problems: list[InputProblem] = []
    out = io.BytesIO()
    try:
        events: IO[bytes] = open(test.events, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        return Outcome(test.path, False, (f"cannot read the recorded events {test.events} (by default NAME"
                                          f"{EVENTS_SUFFIX} beside NAME{SUFFIX}; or events = \"FILE\"): {e.strerror}",))
    clock = LocalTime(test.tz)
    with events:
        try:
            # the observer only when suppressions are expected: otherwise the engine runs exactly as in replay
            # (an observed engine takes the general path where replay fuses a scenario's filter and gates)
            observer = recorder if test.suppressed else None
            replay(lambda sink: Engine(plan, reference, sink=sink, tz=test.tz, observer=observer), events, out,
                   on_problem=problems.append)
        except (BuildError, BindError) as e:  # the engine could not be built for this data
            return Outcome(test.path, False, (str(e),))
    if problems:
        shown = [f"{p.file or test.events}:{p.line}: error: {p.reason} ({p.what} skipped)" if p.what != "deadline"
                 else f"{test.events}: error: {p.reason} (deadline at {_when(clock, p.ts)} skipped)"
                 for p in problems[:10]]
        return Outcome(test.path, False, ("the recorded events have lines replay skips:", *shown))
    sent = [msgspec.json.decode(line, type=Send) for line in out.getvalue().splitlines()]
    diff = compare(test, sent, recorder, clock)
    return Outcome(test.path, not diff, tuple(diff))


def compare(test: ScenarioTest, sent: list[Send], recorder: _Recorder, clock: LocalTime) -> list[str]:
    """The differences between what the test expects and what was sent and stopped, as readable lines
    (empty: the test passed): sends missing, sent differently, not expected; suppressions not seen."""
    checked = [s for s in sent if test.only is None or s.scenario in test.only]
    left = list(checked)
    missing: list[ExpectedSend] = []
    for exp in test.sends:  # exact matches first, so a near miss pairs with what is left
        hit = next((s for s in left if _same(exp, s)), None)
        if hit is None:
            missing.append(exp)
        else:
            left.remove(hit)
    lines: list[str] = []
    for exp in missing:
        near = next((s for s in left if (s.scenario, s.msisdn, s.ts) == (exp.scenario, exp.msisdn, exp.ts)), None)
        if near is None:
            lines.append(f"missing send:    {_expected_text(exp, clock)}")
            continue
        left.remove(near)
        lines.append(f"sent differently: {exp.scenario} to {exp.msisdn} at {_when(clock, exp.ts)}")
        lines.append(f"    expected: {_action_text(exp.channel, exp.template, exp.params, exp.send_at, exp.ts, clock)}")
        lines.append(f"    sent:     {_action_text(near.channel, near.template, near.params, near.send_at, near.ts, clock)}")
    for s in left:
        lines.append(f"unexpected send: {s.scenario} to {s.msisdn} at {_when(clock, s.ts)}: "
                     f"{_action_text(s.channel, s.template, s.params, s.send_at, s.ts, clock)}")
    for exp in test.suppressed:
        at = "" if exp.ts is None else f" at {_when(clock, exp.ts)}"
        mine = [r for r in recorder.stopped if r[:2] == (exp.scenario, exp.msisdn) and (exp.ts is None or r[2] == exp.ts)]
        if any(r[3] == exp.reason for r in mine):
            continue
        if mine:
            other = ", ".join(f"{r[3]} at {_when(clock, r[2])}" for r in mine)
            lines.append(f"suppressed for another reason: {exp.scenario} to {exp.msisdn}{at}: "
                         f"expected {exp.reason}, was {other}")
            continue
        was_sent = [s for s in sent if (s.scenario, s.msisdn) == (exp.scenario, exp.msisdn)
                    and (exp.ts is None or s.ts == exp.ts)]
        if was_sent:
            why = "sent at " + ", ".join(_when(clock, s.ts) for s in was_sent)
        elif (exp.scenario, exp.msisdn) in recorder.completed_for:
            why = "not stopped at that time"
        else:
            why = "its pattern never completed for the subscriber"
        lines.append(f"missing suppression: {exp.scenario} to {exp.msisdn}{at} ({exp.reason}): {why}")
    return lines


def _same(exp: ExpectedSend, s: Send) -> bool:
    return ((exp.scenario, exp.msisdn, exp.ts, exp.channel, exp.template) == (s.scenario, s.msisdn, s.ts, s.channel, s.template)
            and (exp.params is None or exp.params == s.params)
            and (exp.send_at is None or exp.send_at == s.send_at))


def _when(clock: LocalTime, ts: int) -> str:
    """``2026-11-23 Mon 12:00`` (seconds and milliseconds only when there are some)."""
    local = clock.local_ms(ts)
    when = _dt.datetime.fromtimestamp(local // 1000, _dt.UTC)
    text = when.strftime("%Y-%m-%d %a %H:%M") + (when.strftime(":%S") if when.second or local % 1000 else "")
    return text if local % 1000 == 0 else f"{text}.{local % 1000:03d}"


def _action_text(channel: str, template: str, params: dict[str, Any] | None, send_at: int | None, ts: int,
                 clock: LocalTime) -> str:
    text = f"{channel} \"{template}\""
    if params:
        text += " " + _params_text(params)
    if send_at is not None and send_at != ts:
        text += f", send at {_when(clock, send_at)}"
    return text


def _params_text(params: dict[str, Any]) -> str:
    """Parameters as a TOML inline table, ready to paste into the test."""
    return "{ " + ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in params.items()) + " }"


def _expected_text(exp: ExpectedSend, clock: LocalTime) -> str:
    return f"{exp.scenario} to {exp.msisdn} at {_when(clock, exp.ts)}: " + _action_text(
        exp.channel, exp.template, exp.params, exp.send_at, exp.ts, clock)


# --- the command ---------------------------------------------------------------------------------


def run_paths(paths: Sequence[str | Path], out: IO[str]) -> int:
    """``kairos test PATH…``: one line per test, a diff under each failure, a summary; the exit status
    (0 all passed, 1 one failed or could not run). Raises ``FileNotFoundError``/``ValueError`` for a usage error."""
    files = discover(paths)
    failed = 0
    plans: Plans = {}
    for path in files:
        try:
            outcome = run(load(path), plans)
        except TestFileError as e:
            outcome = Outcome(path, False, (str(e),))
        failed += not outcome.passed
        print(f"{'ok    ' if outcome.passed else 'FAILED'} {path}", file=out)
        for line in outcome.lines:
            print(f"  {line}", file=out)
    n = len(files)
    verdict = "all passed" if not failed else f"{failed} failed"
    print(f"{count(n, 'test')}: {verdict}", file=out)
    return 1 if failed else 0
