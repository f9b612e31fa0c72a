"""``kairos explain --msisdn M``: why did (or didn't) this subscriber get an offer?

The replay runs as usual (every subscriber: call-centre capacity is shared),
with an observer the engine calls only at completions and decisions — never
per event — so the normal path pays nothing for it. After each of the
subscriber's own events the driver reads each scenario's state for them and
describes the partial match when it changed.
"""

from __future__ import annotations

import difflib
from typing import IO, Any, Callable, Collection, Iterator

import msgspec

from kairos._measure import reasons_text
from kairos._why import term_args, why_false
from kairos._words import count
from kairos.adapters import TemplateCatalog, TemplateError
from kairos.engine import (
    DEFAULT_TZ,
    Engine,
    EventReader,
    InputProblem,
    LocalTime,
    Reference,
    Send,
    duration_text,
    local_text,
)
from kairos.plan import LAST_DAY, Absence, Aggregate, Dwell, Plan, Scenario, Schedule, Sequence, Single

PAD = " " * 26
HELD = "held at the end of input"  # a reason in the summary: the policy had not decided yet


class Timeline:
    """The engine observer for one subscriber: collects lines in the order things happen."""

    def __init__(self, plan: Plan, msisdn: str, clock: LocalTime, shown: Collection[int] | None = None) -> None:
        self.plan = plan
        self.msisdn = msisdn
        self.clock = clock
        #: the scenarios whose lines the timeline shows (``--scenario``); all of them by default
        self.shown = frozenset(range(len(plan.scenarios)) if shown is None else shown)
        #: scenario → the event and pattern events of its latest completion for the subscriber (an audience
        #: refusal follows its completion at once: ``gated`` evaluates the audience again with them)
        self.completion: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        self.lines: list[str] = []
        self.sent: set[int] = set()
        self.matched: dict[int, int] = {}  # scenario → completions for the subscriber
        self.reasons: dict[int, dict[str, int]] = {}  # scenario → why completions were not sent
        self.stopped: dict[int, bool] = {}  # scenario → its last decided trigger was stopped by the policy
        self.writes: dict[int, int] = {}  # scenario → triggers whose ``set`` clause wrote tags for the subscriber
        self.engine: Engine | None = None

    def at(self, ts: int) -> str:
        return local_text(self.clock, ts).ljust(24) + "  "

    def completed(self, i: int, m: str, t: int, e: Any, a: tuple[Any, ...]) -> None:
        if m == self.msisdn and i in self.shown:
            self.matched[i] = self.matched.get(i, 0) + 1
            self.completion[i] = (e, a)
            scn = self.plan.scenarios[i]
            self.lines.append(f"{self.at(t)}{scn.name}: the pattern completed ({_pattern_text(scn)})")
            if scn.terms and self.engine is not None:
                self.lines.extend(f"{PAD}  {text}" for text in _term_values(scn, self.engine, m, t))

    def wrote(self, i: int, m: str, t: int, tags: dict[str, Any]) -> None:
        """The trigger's ``set`` clause wrote ``tags`` (a ``null`` removed one)."""
        if m == self.msisdn and i in self.shown:
            self.writes[i] = self.writes.get(i, 0) + 1
            values = ", ".join(f"tags.{name} = {_value(v)}" for name, v in tags.items())
            self.lines.append(f"{PAD}  wrote {values}")

    def passed_over(self, i: int, m: str, t: int) -> None:
        """A schedule instant visited the subscriber and its ``where`` was not true."""
        if m == self.msisdn and i in self.shown:
            self._count(i, "where")
            scn = self.plan.scenarios[i]
            where = scn.pattern.where if isinstance(scn.pattern, Schedule) else None
            why = None if where is None or self.engine is None else why_false(where, None, (), self.engine.ctx,
                                                                               scn.terms)
            text = f"`{where.text if where else ''}` is not true for the subscriber" if why is None else why
            self.lines.append(f"{self.at(t)}{scn.name}: the schedule visited ({_pattern_text(scn)}); "
                              f"not completed: {text}")

    def gated(self, i: int, m: str, t: int, reason: str) -> None:
        if m == self.msisdn and i in self.shown:
            self._count(i, reason)
            scn = self.plan.scenarios[i]
            text = _gate_text(scn, reason)
            if reason == "audience" and scn.audience is not None and self.engine is not None:
                e, a = self.completion.get(i, (None, ()))
                why = why_false(scn.audience, e, a, self.engine.ctx, scn.terms)
                if why is not None:
                    text = f"audience — {why}"
            if reason in ("cooldown", "once") and self.stopped.get(i):
                text += " (that trigger was stopped by the contact policy, but cool-down and once count it)"
            self.lines.append(f"{PAD}  not triggered: {text}")

    def policy(self, i: int, m: str, t: int, trigger_id: str, verdict: str, detail: str) -> None:
        if m != self.msisdn or i not in self.shown:
            return
        now = t if self.engine is None else self.engine.now
        # a decision at the trigger's time sits under its completion; a later one
        # (an arbitration window closing, a capacity queue opening) gets its own time
        lead = f"{PAD}  " if now <= t else f"{self.at(now)}policy: "
        if verdict == "sent":
            self.sent.add(i)
            self.stopped[i] = False
            self.lines.append(f"{lead}trigger {trigger_id}: {detail}")
        elif verdict == "wait":
            self.lines.append(f"{lead}trigger {trigger_id}: {detail}")
        elif verdict == "held":
            self._count(i, HELD)
            self.lines.append(f"{self.at(now)}end of input: trigger {trigger_id}: not sent — {detail}")
        else:
            self._count(i, verdict)
            self.stopped[i] = True
            self.lines.append(f"{lead}trigger {trigger_id}: stopped by the contact policy ({verdict}): {detail}")

    def _count(self, i: int, reason: str) -> None:
        by = self.reasons.setdefault(i, {})
        by[reason] = by.get(reason, 0) + 1

    def summary(self, i: int, sends: int, partial: str) -> str | None:
        """The summary line of scenario ``i``; None when nothing happened for the subscriber."""
        name = self.plan.scenarios[i].name
        why = reasons_text(self.reasons.get(i, {}))
        if not self.plan.scenarios[i].actions and i in self.matched:  # it writes tags, never sends
            n = self.writes.get(i, 0)
            line = f"  {name}: wrote tags {count(n, 'time')}"
            return line + (f"; not triggered {sum(self.reasons[i].values())} — {why}" if self.reasons.get(i) else "")
        if sends:
            line = f"  {name}: sent {count(sends, 'time')}"
            return line + (f"; not sent {sum(self.reasons[i].values())} — {why}" if self.reasons.get(i) else "")
        if i in self.matched:
            n = self.matched[i]
            return f"  {name}: matched {count(n, 'time')}, never sent" + (f" — {why}" if why != "-" else "")
        if self.reasons.get(i):
            return f"  {name}: never completed — {why}"
        if partial:
            return f"  {name}: never matched; at the end: {partial}"
        return None


def _numbered(reader: EventReader) -> Iterator[tuple[Any, int]]:
    """Each event with its line number."""
    for events, lines in reader.blocks():
        if isinstance(lines, int):
            yield from zip(events, range(lines, lines + len(events)))
        else:
            yield from zip(events, lines)


def unknown_scenarios(plan: Plan, names: Collection[str]) -> str | None:
    """Why ``--scenario`` ``names`` cannot narrow the timeline (one is no scenario of ``plan``); None if they can."""
    known = [scn.name for scn in plan.scenarios]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean --scenario {close[0]}?" if close else ""
            listed = ", ".join(known[:20]) + (", …" if len(known) > 20 else "")
            return f"--scenario {name}: no scenario of that name{hint} The scenarios are: {listed}"
    return None


def explain(plan: Plan, reference: Reference, events: IO[bytes], msisdn: str, *, tz: str = DEFAULT_TZ,
            on_problem: Callable[[InputProblem], None] | None = None, scenarios: Collection[str] = (),
            catalog: TemplateCatalog | None = None) -> Iterator[str]:
    """The timeline of ``msisdn`` over a replay of ``events``, as printable lines.

    ``scenarios``: the names of the scenarios to show (all when empty; every scenario still runs, since the
    contact policy weighs them together); ``catalog``: the templates each send's message is rendered from.
    """
    clock = LocalTime(tz)
    shown = [i for i, scn in enumerate(plan.scenarios) if not scenarios or scn.name in scenarios]
    timeline = Timeline(plan, msisdn, clock, shown)
    sends: list[Send] = []

    def sink(send: Send) -> None:
        sends.append(send)
        if catalog is not None and send.msisdn == msisdn and send.scenario in names:
            timeline.lines.append(f"{PAD}  {_message(catalog, send)}")

    names = {plan.scenarios[i].name for i in shown}
    engine = timeline.engine = Engine(plan, reference, sink=sink, tz=tz, observer=timeline)
    #: the event types the shown scenarios read; with --scenario, the subscriber's other events are left out
    #: unless something of a shown scenario happened at them
    types = None if not scenarios else _types_read([plan.scenarios[i] for i in shown])
    hidden = 0
    problem = on_problem or (lambda p: None)
    reader = EventReader(events, problem)
    described: dict[int, str] = {}
    seen = 0
    line = 0

    def failed(_: int | None, ev: Any, exc: BaseException) -> None:  # reported as a replay reports it
        reason = engine.describe_fault(exc)
        problem(InputProblem(line, reason, what="event") if ev is not None
                else InputProblem(0, reason, what="deadline", ts=engine.now))

    engine.on_fault = failed
    which = count(len(plan.scenarios), "scenario") if not scenarios else \
        f"{', '.join(sorted(names))} (of {count(len(plan.scenarios), 'scenario')})"
    yield f"Timeline of {msisdn} ({tz}); {which}, {'a' if plan.policy else 'no'} contact policy"
    for ev, line in _numbered(reader):
        engine.on_event(ev)
        if ev.msisdn != msisdn:
            continue
        seen += 1
        lines = timeline.lines
        event_line = f"{timeline.at(ev.ts)}{ev.__struct_config__.tag} {_fields(ev)}"
        # what happened at this event's time came from it; earlier deadlines came before it
        split = next((k for k, line in enumerate(lines) if line.startswith(timeline.at(ev.ts))), len(lines))
        partials = []
        for i in shown:
            scn = plan.scenarios[i]
            text = _partial(scn, engine.runtimes[i].state_of(msisdn), clock)
            if text != described.get(i, ""):
                described[i] = text
                if text:
                    partials.append(f"{PAD}  {scn.name}: partial match — {text}")
        yield from lines[:split]
        if types is None or ev.__struct_config__.tag in types or split < len(lines) or partials:
            yield event_line
        else:
            hidden += 1
        yield from lines[split:]
        lines.clear()
        yield from partials
    engine.finish()
    yield from timeline.lines
    timeline.lines.clear()
    if seen == 0:
        yield f"No events for {msisdn} in the input."
    yield ""
    yield "Summary:"
    untouched = []
    for i in shown:
        scn = plan.scenarios[i]
        st_sent = sum(1 for s in sends if s.msisdn == msisdn and s.scenario == scn.name)
        line = timeline.summary(i, st_sent, described.get(i, ""))
        if line is None:
            untouched.append(scn.name)
        else:
            yield line
    if untouched:
        yield f"  no partial match at all: {', '.join(untouched)}"
    if hidden:
        yield f"  {count(hidden, 'other event')} of the subscriber not shown: no scenario of " \
              "--scenario reads their type"


def _types_read(scenarios: list[Scenario]) -> set[str]:
    """The event types the patterns and calendar terms of ``scenarios`` read."""
    types: set[str] = set()
    for scn in scenarios:
        p = scn.pattern
        filters = ([p.filter] if isinstance(p, (Single, Aggregate)) else list(p.steps) if isinstance(p, Sequence)
                   else [p.first, p.absent] if isinstance(p, Absence) else [])
        types.update(f.event_type for f in filters)
        if isinstance(p, Dwell):
            types.add("location")
        types.update(term.filter.event_type for term in scn.terms)
    return types


def _message(catalog: TemplateCatalog, send: Send) -> str:
    """``message (sms "offer.x"): TEXT``: what the subscriber receives, rendered as the channel will."""
    try:
        text = catalog.render(send.template, send.channel, send.params)
    except TemplateError as e:
        return f"message ({send.channel} \"{send.template}\"): cannot be rendered: {e}"
    return f"message ({send.channel} \"{send.template}\"): {_value(text)}"


def _fields(ev: Any) -> str:
    data = msgspec.structs.asdict(ev)
    for k in ("ts", "msisdn"):
        data.pop(k, None)
    return " ".join(f"{k}={v}" for k, v in data.items() if v is not None)


def _pattern_text(scn: Scenario) -> str:
    p = scn.pattern
    if isinstance(p, Aggregate):
        return f"{p.kind} {p.cmp} {_num(p.threshold)} within {duration_text(p.within_ms)}"
    if isinstance(p, Sequence):
        return f"{len(p.steps)}-step sequence within {duration_text(p.within_ms)}"
    if isinstance(p, Absence):
        return f"no {p.absent.event_type} within {duration_text(p.within_ms)}"
    if isinstance(p, Dwell):
        return f"dwell in {', '.join(p.areas)} for {duration_text(p.for_ms)}"
    if isinstance(p, Schedule):
        return schedule_text(p)
    return f"{p.filter.event_type} event"


def _term_values(scn: Scenario, engine: Engine, m: str, t: int) -> list[str]:
    """``count(dpi where …) in month(-1) = 3``: each calendar or recency term the scenario reads, at ``t``."""
    periods = engine.periods
    out = []
    for term in scn.terms:
        args = term_args(term)
        if term.kind == "since":
            ago = periods.since(term.key, m, t)
            out.append(f"since({args}) = {'null' if ago is None else duration_text(ago) if ago else '0'}")
            continue
        for n in term.reads:
            value = periods.value(term.key, n, m, t)
            shown = "null" if value is None else _num(value) if isinstance(value, (int, float)) else repr(value)
            out.append(f"{term.kind}({args}) in {term.period}({n}) = {shown}")
    return out


_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def schedule_text(p: Schedule) -> str:
    """``every week on mon at 04:00``: a schedule as its author wrote it (without its where)."""
    at = f"at {p.minute // 60:02d}:{p.minute % 60:02d}"
    if p.period == "day":
        return f"every day {at}"
    if p.period == "week":
        return f"every week on {_DAY_NAMES[p.day - 1]} {at}"
    return f"every month on day {'last' if p.day == LAST_DAY else p.day} {at}"


def _gate_text(scn: Scenario, reason: str) -> str:
    if reason == "cooldown":
        return f"cooldown — the scenario triggered less than {duration_text(scn.cooldown_ms or 0)} ago"
    if reason == "once":
        return "once — already triggered for this subscriber" + (
            f" with the same {scn.once_per.text}" if scn.once_per is not None else "")
    if reason == "audience":
        return f"audience — `{scn.audience.text if scn.audience else ''}` is not true for the subscriber"
    if reason == "during":
        return "during — outside the scenario's time ranges"
    return reason


def _partial(scn: Scenario, state: Any, clock: LocalTime) -> str:
    """A short description of a subscriber's partial match; "" when there is none."""
    if state is None:
        return ""
    p = scn.pattern
    if isinstance(p, Aggregate):
        n = len(state)
        if not n:
            return ""
        what = "event" if p.kind == "count" else "value"
        now = f"{n} matching {what}{'s' * (n != 1)} in the last {duration_text(p.within_ms)}"
        if p.kind == "sum":
            now += f", sum {_num(sum(v for _, v in state if isinstance(v, (int, float)) and not isinstance(v, bool)))}"
        elif p.kind == "distinct":
            now += f", {len({repr(v) for _, v in state if v is not None})} distinct"
        return f"{now} (completes when {p.kind} {p.cmp} {_num(p.threshold)})"
    if isinstance(p, Sequence):
        steps = len(p.steps)
        done = 0
        for k, slot in enumerate(state):
            if slot:
                done = k + 1
        return "" if not done else f"{done} of {steps} steps seen (within {duration_text(p.within_ms)})"
    if isinstance(p, Absence):
        return (f"completes at {local_text(clock, state.ts + p.within_ms)} unless a matching "
                f"{p.absent.event_type} comes first")
    if isinstance(p, Dwell):
        enter, fired = state[0], state[1]
        if fired:
            return f"inside since {local_text(clock, enter)} (already completed this stay)"
        return f"inside since {local_text(clock, enter)}; completes at {local_text(clock, enter + p.for_ms)}"
    return ""


def _value(v: Any) -> str:
    """A tag value as the scenario language writes it: ``"text"``, ``true``, ``null``, a number."""
    return msgspec.json.encode(v).decode()


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"
