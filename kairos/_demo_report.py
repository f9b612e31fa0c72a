"""What ``kairos demo`` prints: the per-scenario table and example sends with their causes.

The table has one row per catalogue scenario — matched, sent, how many
subscribers were reached, suppressed by reason — and says why a scenario
cannot send within the generated span (a three-day wait in one day, a
monthly scenario reading month(-3) of traffic that starts nine days before). An
example send shows its rendered text and the subscriber's events that made it
happen, in local time, with DPI hosts labelled by the knowledge base and cells
named by their areas.
"""

from __future__ import annotations

import datetime as dt
import mmap
import re
from pathlib import Path
from typing import Any

import msgspec

from kairos._words import count, percent
from kairos.adapters import TemplateCatalog
from kairos.engine import Engine, LocalTime, Reference, Send, TagWrite, event_union, range_text
from kairos.plan import LAST_DAY, Absence, Aggregate, Dwell, Plan, Scenario, Schedule, Sequence, Single

#: pattern kinds in the order examples are picked, so a few examples show different kinds
KIND_ORDER = (Dwell, Schedule, Aggregate, Sequence, Single, Absence)
DAY_MS = 86_400_000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHOWN = 6


def _wait_ms(scn: Scenario) -> int:
    """How long the pattern looks back (or waits), in ms."""
    p = scn.pattern
    if isinstance(p, (Sequence, Absence, Aggregate)):
        return p.within_ms
    if isinstance(p, Dwell):
        return p.for_ms
    return 0


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def schedule_text(p: Schedule) -> str:
    """The schedule as its author wrote it, without ``where``: ``every month on day 1 at 10:00``."""
    at = f"at {p.minute // 60:02d}:{p.minute % 60:02d}"
    if p.period == "day":
        return f"every day {at}"
    if p.period == "week":
        return f"every week on {WEEKDAYS[p.day - 1]} {at}"
    return f"every month on day {'last' if p.day == LAST_DAY else p.day} {at}"


def first_instant(p: Schedule, start_ms: int, clock: LocalTime) -> int:
    """The first instant of the schedule at or after ``start_ms``."""
    day = clock.local_ms(start_ms) // DAY_MS
    while True:
        date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        if (p.period == "day" or (p.period == "week" and date.isoweekday() == p.day)
                or (p.period == "month" and (date.day == p.day or (p.day == LAST_DAY and (date + dt.timedelta(days=1)).day == 1)))):
            instant = clock.to_utc(day * DAY_MS + p.minute * 60_000)
            if instant >= start_ms:
                return instant
        day += 1


def deepest_period(scn: Scenario) -> tuple[str, int] | None:
    """The calendar period furthest back that the scenario reads, as (``month``, 3) for ``month(-3)``; None if none."""
    longest = {"day": 1, "week": 7, "month": 31}
    terms = [(t.period, t.depth) for t in scn.terms if t.period is not None and t.depth > 0]
    return max(terms, key=lambda t: longest[t[0]] * t[1]) if terms else None


def _period_start(date: dt.date, kind: str, n: int) -> dt.date:
    """The first local day of period ``n`` relative to the ``kind`` (day, week, month) holding ``date``."""
    if kind == "day":
        return date + dt.timedelta(days=n)
    if kind == "week":
        return date - dt.timedelta(days=date.weekday()) + dt.timedelta(weeks=n)
    months = date.year * 12 + date.month - 1 + n
    return dt.date(months // 12, months % 12 + 1, 1)


def first_observed_instant(p: Schedule, period: tuple[str, int], start_ms: int, clock: LocalTime) -> int:
    """The first instant of the schedule whose ``period`` (kind, N: N periods back) holds some of the traffic
    from ``start_ms``: before it the engine has seen nothing there (a guard such as
    ``count(dpi) in month(-3) > 0`` keeps the scenario quiet)."""
    kind, depth = period
    instant = first_instant(p, start_ms, clock)
    while True:
        date = dt.date(1970, 1, 1) + dt.timedelta(days=clock.local_ms(instant) // DAY_MS)
        ends = _period_start(date, kind, 1 - depth)  # the day after period -depth
        if clock.to_utc((ends - dt.date(1970, 1, 1)).days * DAY_MS) > start_ms:
            return instant
        instant = first_instant(p, instant + 1, clock)


def why_silent(scn: Scenario, span_ms: int, start_ms: int | None = None, clock: LocalTime | None = None) -> str:
    """Why a scenario cannot complete within ``span_ms`` of generated traffic from ``start_ms`` ("" if it can)."""
    p = scn.pattern
    if isinstance(p, Schedule) and start_ms is not None and clock is not None:
        first = first_instant(p, start_ms, clock)
        if first > start_ms + span_ms:
            when = dt.datetime.fromtimestamp(clock.local_ms(first) / 1000, dt.timezone.utc)
            return f"{schedule_text(p)}: the first, {when:%a %d %b}, is after the {_duration(span_ms)} generated"
        period = deepest_period(scn)
        if period is not None:
            first = first_observed_instant(p, period, start_ms, clock)
            if first > start_ms + span_ms:
                when = dt.datetime.fromtimestamp(clock.local_ms(first) / 1000, dt.timezone.utc)
                days = (first - start_ms) // DAY_MS + 1
                return (f"needs traffic in {period[0]}(-{period[1]}): the first run that has some is "
                        f"{when:%a %d %b %Y} (--days {days})")
    if isinstance(p, Absence) and p.first.event_type == "feedback":
        return "starts at channel feedback, which the demo does not generate"
    if isinstance(p, Absence) and p.within_ms >= span_ms:
        return f"waits {_duration(p.within_ms)}: longer than the {_duration(span_ms)} generated"
    return ""


def print_table(plan: Plan, engine: Engine, sends: list[Send], subscribers: int, span_ms: int,
                start_ms: int | None = None, clock: LocalTime | None = None) -> None:
    """One row per scenario: matched, sent, subscribers reached, suppressed by reason (its own gates and the policy)."""
    reached: dict[str, set[str]] = {}
    for s in sends:
        reached.setdefault(s.scenario, set()).add(s.msisdn)
    rows = [("scenario", "matched", "sent", "reached", "suppressed / note")]
    for scn, st in zip(plan.scenarios, engine.stats):
        who = len(reached.get(scn.name, ()))
        share = f"{who:,} ({percent(who / subscribers)})" if who else "-"
        note = ", ".join(f"{k} {v:,}" for k, v in sorted(st.suppressed.items()))
        silent = why_silent(scn, span_ms, start_ms, clock)
        if silent and not st.matched:
            note = silent
        sent = sum(st.sent.values())
        if st.tag_writes:
            written = f"tags written {st.tag_writes:,}"
            note = f"{written}, {note}" if note else written
        if st.held:
            note = f"{note}, held {st.held:,}" if note else f"held {st.held:,}"
        rows.append((scn.name, f"{st.matched:,}", f"{sent:,}", share, note or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, r in enumerate(rows):
        print(f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}")
        if n == 0:
            print("  " + "-" * (sum(widths) + 8 + len(r[4])))
    print()


def print_tag_writes(writes: list[TagWrite], clock: LocalTime) -> None:
    """What the ``set`` clauses wrote: writes per scenario, and one subscriber's tags as an example."""
    if not writes:
        return
    per: dict[str, int] = {}
    for w in writes:
        per[w.scenario] = per.get(w.scenario, 0) + 1
    first = writes[0]
    theirs = {k: v for w in writes if w.msisdn == first.msisdn and w.ts == first.ts for k, v in w.tags.items()}
    when = dt.datetime.fromtimestamp(clock.local_ms(first.ts) / 1000, dt.timezone.utc)
    print("Tags written by set: " + ", ".join(f"{n} {c:,}" for n, c in per.items())
          + f"; e.g. {first.msisdn} on {when:%a %d %b %H:%M}: "
          + ", ".join(f"{k}={v}" for k, v in theirs.items()) + "\n")


def pick_examples(plan: Plan, sends: list[Send], n: int) -> list[Send]:
    """Up to ``n`` sends of different scenarios, varying the pattern kind first."""
    first: dict[str, Send] = {}
    for s in sends:
        first.setdefault(s.scenario, s)
    by_kind: list[list[Send]] = [[] for _ in range(len(KIND_ORDER) + 1)]  # the last: any other kind
    for scn in plan.scenarios:
        if scn.name in first:
            kind = next((i for i, k in enumerate(KIND_ORDER) if isinstance(scn.pattern, k)), len(KIND_ORDER))
            by_kind[kind].append(first[scn.name])
    chosen: list[Send] = []
    while len(chosen) < n and any(by_kind):
        for group in by_kind:
            if group and len(chosen) < n:
                chosen.append(group.pop(0))
    return chosen


def print_examples(
    plan: Plan, sends: list[Send], events_path: Path, reference: Reference, clock: LocalTime, n: int,
    catalog: TemplateCatalog | None,
) -> None:
    """A few sends: what was sent to whom and when, its text, and the events that caused it."""
    if n <= 0:
        return
    chosen = sorted(pick_examples(plan, sends, n), key=lambda s: (s.send_at, s.ts, s.scenario))  # in time order
    if not chosen:
        print("No sends: nothing in this traffic matched a scenario.")
        return
    history = _history(events_path, {s.msisdn for s in chosen}, reference)
    by_name = {s.name: s for s in plan.scenarios}
    causes = [_cause(by_name[s.scenario], history.get(s.msisdn, []), s.ts) for s in chosen]
    shown = [s.send_at for s in chosen] + [e.ts for cause in causes for e in cause[-SHOWN:]]
    dated = len({_day(clock, ts) for ts in shown}) > 1  # more than one day: each time says its day
    if dated:
        print(f"Example sends ({clock.zone.key} time), with the subscriber's events that led to them:\n")
    else:
        day = dt.datetime.fromtimestamp(clock.local_ms(chosen[0].ts) / 1000, dt.timezone.utc)
        print(f"Example sends ({clock.zone.key} time, {day:%A %d %B %Y}), "
              "with the subscriber's events that led to them:\n")
    for s, cause in zip(chosen, causes):
        scn = by_name[s.scenario]
        print(f"  {_fmt(clock, s.send_at, dated)}  {s.channel} \"{s.template}\" to {s.msisdn}   [{s.scenario}]")
        print(f"      {scn.title}")
        deferred = deferral_text(plan, s, clock, dated)
        if deferred:
            print(f"      {deferred}")
        tags = _audience_tags(scn, reference, s.msisdn)
        if tags:
            print(f"      subscriber: {tags}")
        if catalog is not None:
            try:
                print(f"      text: {catalog.render(s.template, s.channel, s.params)}")
            except Exception as e:  # a template problem must not hide the rest of the demo
                print(f"      text: (cannot render: {e})")
        elif s.params:
            print("      with " + ", ".join(f"{k}={v}" for k, v in s.params.items()))
        if isinstance(scn.pattern, Schedule):
            print(f"      {_fmt(clock, s.ts, dated)}  {schedule_text(scn.pattern)}")
        for e in cause[-SHOWN:]:
            print(f"      {_fmt(clock, e.ts, dated)}  {_describe(e, reference)}")
        if len(cause) > SHOWN:
            print(f"      … and {count(len(cause) - SHOWN, 'earlier event')} of the pattern")
        print()


def deferral_text(plan: Plan, send: Send, clock: LocalTime, dated: bool = False) -> str:
    """Why a send goes out later than its trigger — the action's ``after``, then the policy's quiet or working
    hours (or a capacity that was used up) — as ``deferred to 08:00:00 from its trigger at 07:44:49 (quiet
    hours 22:00..08:00 for sms)``; "" for a send at its trigger's time."""
    if send.send_at <= send.ts:
        return ""
    scn = next(s for s in plan.scenarios if s.name == send.scenario)
    after = next((a.after_ms for a in scn.actions if a.channel == send.channel and a.template == send.template), 0)
    why = [f"after {_duration(after)}"] if after else []
    if send.send_at > send.ts + after:
        why.append(_policy_delay(plan, send.channel))
    return (f"deferred to {_fmt(clock, send.send_at, dated)} from its trigger at {_fmt(clock, send.ts, dated)} "
            f"({', then '.join(why)})")


def _policy_delay(plan: Plan, channel: str) -> str:
    """What of the contact policy can move a send on ``channel`` later: its quiet and working hours."""
    policy = plan.policy
    if policy is None:
        return "the contact policy"
    rules = [f"quiet hours {range_text(q.range)}" for q in policy.quiet if channel in q.channels and q.mode == "defer"]
    rules += [f"working hours {', '.join(range_text(r) for r in h.ranges)}" for h in policy.hours if h.channel == channel]
    if any(c.channel == channel for c in policy.capacity):
        rules.append("its capacity")
    return f"{' or '.join(rules)} for {channel}" if rules else "the contact policy"


def _history(path: Path, wanted: set[str], reference: Reference) -> dict[str, list[Any]]:
    """Every event of the ``wanted`` subscribers, DPI labelled as the engine labels them."""
    history: dict[str, list[Any]] = {m: [] for m in wanted}
    if not wanted or path.stat().st_size == 0:
        return history
    # one regular expression over the mapped file, not a test per line: the demo's days are millions of lines
    found = re.compile(rb'"msisdn":"(?:' + b"|".join(re.escape(m.encode()) for m in sorted(wanted)) + rb')"')
    decoder = msgspec.json.Decoder(event_union())
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for hit in found.finditer(data):
            start = data.rfind(b"\n", 0, hit.start()) + 1
            end = data.find(b"\n", hit.end())
            ev = decoder.decode(data[start : end if end >= 0 else len(data)])
            if ev.msisdn in history:
                if getattr(ev, "host", None) is not None and (ev.app is None or ev.category is None):
                    label = reference.kb.label(ev.host)
                    if label is not None:
                        ev.app = ev.app or label[0]
                        ev.category = ev.category or label[1]
                history[ev.msisdn].append(ev)
    return history


def _cause(scn: Scenario, events: list[Any], ts: int) -> list[Any]:
    """The events of the pattern's types that lead up to a trigger at ``ts``."""
    p = scn.pattern
    types = scn.event_types
    if isinstance(p, Dwell):
        types = frozenset({"location", "power"})
    upto = [e for e in events if e.ts <= ts and e.__struct_config__.tag in types]
    if isinstance(p, Single):
        return upto[-2:]  # the previous one shows what crosses_above / changed compared with
    lo = ts - _wait_ms(scn)
    inside = [e for e in upto if e.ts >= lo]
    if isinstance(p, Aggregate) and p.filter.where is not None:
        inside = [e for e in inside if _passes(p.filter.where, e)] or inside
    if isinstance(p, Dwell):
        before = [e for e in upto if e.ts < lo]
        return before[-1:] + inside
    if isinstance(p, Sequence):
        return _sequence_run(p, inside)
    if isinstance(p, Absence):
        firsts = [i for i, e in enumerate(inside) if _step_passes(p.first, e)]
        return inside[firsts[0] :] if firsts else inside
    return inside


def _step_passes(step: Any, ev: Any) -> bool:
    return ev.__struct_config__.tag == step.event_type and (step.where is None or _passes(step.where, ev))


def _sequence_run(p: Sequence, events: list[Any]) -> list[Any]:
    """The events of the last run through the steps: from the latest first-step event
    that a last-step event follows, keeping only events some step accepts."""
    first, last = p.steps[0], p.steps[-1]
    start = 0
    for i in range(len(events) - 1, -1, -1):
        if _step_passes(first, events[i]) and any(_step_passes(last, e) for e in events[i + 1 :]):
            start = i
            break
    return [e for e in events[start:] if any(_step_passes(s, e) for s in p.steps)]


class _NoContext:
    """Enough of ``plan.Context`` for a filter that reads only the event's own fields."""

    def __getattr__(self, name: str) -> Any:
        raise LookupError(name)


def _passes(where: Any, ev: Any) -> bool:
    try:
        return bool(where.fn(ev, (), _NoContext()))
    except Exception:
        return True


def _audience_tags(scn: Scenario, reference: Reference, msisdn: str) -> str:
    names = re.findall(r"tags\.([a-z_][a-z0-9_]*)", scn.audience.text) if scn.audience is not None else []
    tags = reference.tags.get(msisdn, {})
    lists = re.findall(r'list\("([^"]+)"\)', scn.audience.text) if scn.audience is not None else []
    parts = [f"{n}={tags.get(n)}" for n in dict.fromkeys(names)]
    parts += [f"{'on' if msisdn in reference.lists.get(name, ()) else 'not on'} {name}" for name in dict.fromkeys(lists)]
    return ", ".join(parts)


def _day(clock: LocalTime, ts: int) -> int:
    return clock.local_ms(ts) // 86_400_000


def _fmt(clock: LocalTime, ts: int, dated: bool = False) -> str:
    local = dt.datetime.fromtimestamp(clock.local_ms(ts) / 1000, dt.timezone.utc)
    return local.strftime("%a %d %b %H:%M:%S" if dated else "%H:%M:%S")


def _size(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:g} B"


def _describe(e: Any, reference: Reference) -> str:
    fields = msgspec.structs.asdict(e)
    fields.pop("ts")
    fields.pop("msisdn")
    tag = e.__struct_config__.tag
    out = []
    for k, v in fields.items():
        if v is None or v == "none" or v is False or (v == 0 and k != "amount"):
            continue
        if k == "bytes":
            out.append(f"{_size(v)}")
        elif k == "cell":
            areas = sorted(reference.areas(v))
            out.append(f"cell={v}" + (f" ({', '.join(areas)})" if areas else ""))
        elif v is True:
            out.append(k)
        else:
            out.append(f"{k}={v}")
    return f"{tag:<9} {' '.join(out)}"
