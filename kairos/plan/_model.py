"""The compiled plan: frozen data the engine runs, produced by the dsl compiler.

Every structure here is immutable and shared by all subscribers; per-subscriber
state lives in the engine. Expressions arrive already compiled to Python
functions with the signature ``fn(e, a, c)`` (see ``plan._runtime``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import msgspec

PLAN_VERSION = 1

#: Value types the checker knows. ``num`` is int or float; ``any`` is unknown
#: until run time (tag values); ``dict`` is an object such as ``profile.tags``.
FieldType = Literal["str", "num", "bool", "dict", "any"]


class FieldSpec(msgspec.Struct, frozen=True):
    """One field of an event type, as the checker sees it."""

    type: FieldType
    required: bool = False
    choices: tuple[str, ...] = ()  # allowed values of a str field, when fixed


class EventSchema(msgspec.Struct, frozen=True):
    """Event type name -> field name -> spec. Every type also has ts, msisdn, type."""

    types: dict[str, dict[str, FieldSpec]]

    def fields(self, event_type: str) -> dict[str, FieldSpec]:
        return self.types[event_type]


class Origin(msgspec.Struct, frozen=True):
    """Where a construct was written: 1-based line and column."""

    file: str
    line: int
    col: int


class Expr(msgspec.Struct, frozen=True):
    """A compiled expression.

    ``fn(e, a, c)``: ``e`` the current event (in a filter or aggregate value) or
    the completing event (audience, once per, action params; None on a
    deadline completion), ``a`` the tuple of events bound to the pattern's
    steps (index = step number, None where unbound), ``c`` the engine's
    ``Context`` for the subscriber.
    """

    text: str  # the Kairos source of the expression
    python: str  # the generated Python expression
    origin: Origin
    fn: Callable[[Any, tuple[Any, ...], Any], Any]


class Filter(msgspec.Struct, frozen=True):
    """``TYPE [as ALIAS] [where EXPR]``."""

    event_type: str
    alias: str | None
    where: Expr | None
    reads_aliases: bool = False  # where reads events bound by earlier steps
    origin: Origin | None = None


class Single(msgspec.Struct, frozen=True, tag="single"):
    """``F``: completes at every event passing F."""

    filter: Filter


class Sequence(msgspec.Struct, frozen=True, tag="sequence"):
    """``F1 -> F2 [-> ...] within D``; the partial match is consumed on completion."""

    steps: tuple[Filter, ...]
    within_ms: int


class Absence(msgspec.Struct, frozen=True, tag="absence"):
    """``F1 -> not F2 within D``: completes at t1 + D if no F2 answered F1."""

    first: Filter
    absent: Filter
    within_ms: int


Comparison = Literal[">=", ">", "<=", "<", "==", "!="]


class Aggregate(msgspec.Struct, frozen=True, tag="aggregate"):
    """``count|sum|distinct(F[, EXPR]) CMP N within D`` over a sliding window."""

    kind: Literal["count", "sum", "distinct"]
    filter: Filter
    value: Expr | None  # EXPR of sum/distinct; None for count
    cmp: Comparison
    threshold: float
    within_ms: int


class Dwell(msgspec.Struct, frozen=True, tag="dwell"):
    """``dwell in area(A, ...) for D``: continuously inside the union of the areas."""

    areas: tuple[str, ...]
    for_ms: int


class Schedule(msgspec.Struct, frozen=True, tag="schedule"):
    """``every day|week on DAY|month on day N at HH:MM [where EXPR]`` (LANGUAGE.md §9.1).

    Completes at each local-time instant for every subscriber of the universe;
    ``where`` has no event (``e`` is None) and reads only the subscriber.
    """

    period: Literal["day", "week", "month"]
    #: week: ISO weekday 1 (Mon) .. 7 (Sun); month: day 1 .. 28, or ``LAST_DAY``; day: 0
    day: int
    #: minutes after local midnight
    minute: int
    where: Expr | None = None


#: ``Schedule.day`` of ``every month on day last``
LAST_DAY = -1


Pattern = Single | Sequence | Absence | Aggregate | Dwell | Schedule

#: the calendar periods of LANGUAGE.md §9.2 and the deepest N each may go back
PeriodKind = Literal["day", "week", "month"]
PERIOD_LIMITS: dict[str, int] = {"day": 62, "week": 26, "month": 12}


class Term(msgspec.Struct, frozen=True):
    """A calendar or recency aggregate a scenario reads (LANGUAGE.md §9.2).

    ``count|sum|top(F[, EXPR]) in PERIOD(N)`` or ``since(F)``: the engine keeps
    one column per distinct ``key`` (kind, filter, value and period kind, not
    N), shared by every scenario that reads it, ``depth`` periods back.
    """

    kind: Literal["count", "sum", "top", "since"]
    filter: Filter
    value: Expr | None  # EXPR of sum/top; None for count and since
    period: PeriodKind | None  # None for since
    depth: int  # the deepest -N the scenario reads of this term (0 for since)
    key: str  # what makes two terms the same column: "count|dpi|app == \"x\"||month"
    reads: tuple[int, ...] = ()  # the periods N the scenario reads (``explain`` shows each)


class TimeRange(msgspec.Struct, frozen=True):
    """Local time of day ``[start, end)`` in minutes; wraps midnight when end <= start."""

    start_min: int
    end_min: int

    def contains(self, minute_of_day: int) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute_of_day < self.end_min
        return minute_of_day >= self.start_min or minute_of_day < self.end_min


class During(msgspec.Struct, frozen=True):
    """``during RANGES [on DAYS]``; days are ISO weekdays 1 (Mon) .. 7 (Sun)."""

    ranges: tuple[TimeRange, ...]
    days: frozenset[int] | None = None


class Action(msgspec.Struct, frozen=True):
    """``CHANNEL "TEMPLATE" [with {K: EXPR}] [after D]``."""

    channel: str
    template: str
    params: tuple[tuple[str, Expr], ...] = ()
    after_ms: int = 0
    origin: Origin | None = None


class TagSet(msgspec.Struct, frozen=True):
    """``tags.NAME = EXPR``, one write of a ``set`` clause (LANGUAGE.md §9.3)."""

    name: str
    value: Expr
    origin: Origin | None = None


class NameUse(msgspec.Struct, frozen=True):
    """A name only the reference data can know, where it is written: ``list("NAME")`` (kind ``list``),
    an area of ``in_area`` or ``dwell in area`` (``area``), a ``tags.NAME`` read (``tag``); so a name
    the data lacks is reported at its use (``kairos check --reference``, ``replay``)."""

    kind: Literal["list", "area", "tag"]
    name: str
    origin: Origin


class Scenario(msgspec.Struct, frozen=True):
    """One compiled scenario; ``actions`` is empty for a scenario that only writes tags (``sets``)."""

    name: str
    pattern: Pattern
    actions: tuple[Action, ...]
    origin: Origin
    title: str = ""
    priority: int = 50
    audience: Expr | None = None
    during: During | None = None
    cooldown_ms: int | None = None
    once: Literal["never", "once", "per"] = "never"  # "never" = no once clause
    once_per: Expr | None = None
    #: content hash of the scenario's source text (audit, hot reload)
    version: str = ""
    #: reference data it needs, validated when the engine binds the plan
    lists: frozenset[str] = frozenset()
    areas: frozenset[str] = frozenset()
    #: (event type, field) pairs whose previous value per subscriber it reads
    tracked: frozenset[tuple[str, str]] = frozenset()
    #: ``set tags.NAME = EXPR, …``: the tags each trigger writes, in written order (LANGUAGE.md §9.3)
    sets: tuple[TagSet, ...] = ()
    #: calendar and recency terms its expressions read (LANGUAGE.md §9.2), one per key
    terms: tuple[Term, ...] = ()
    #: its expressions read ``now`` (or a term, which reads it): the engine keeps the evaluation time
    uses_now: bool = False
    #: each use of a list, area or tag name, in source order (``lists`` and ``areas`` without places)
    names: tuple[NameUse, ...] = ()

    @property
    def event_types(self) -> frozenset[str]:
        """The event types this scenario reads (its dispatch index)."""
        p = self.pattern
        if isinstance(p, (Single, Aggregate)):
            return frozenset((p.filter.event_type,))
        if isinstance(p, Sequence):
            return frozenset(s.event_type for s in p.steps)
        if isinstance(p, Absence):
            return frozenset((p.first.event_type, p.absent.event_type))
        if isinstance(p, Schedule):
            return frozenset()
        return frozenset(("location", "power"))


# --- the contact policy (LANGUAGE.md §6); enforced by the engine's policy stage


class Cap(msgspec.Struct, frozen=True):
    """``cap CHANNEL N per D``; channel ``any`` counts all channels."""

    channel: str
    limit: int
    per_ms: int


class Quiet(msgspec.Struct, frozen=True):
    """``quiet RANGE [on DAYS] for CHANNELS defer|drop``.

    ``days`` (an extension) limits the rule to ranges that start on those ISO
    weekdays: a range wrapping midnight belongs to the day it starts on.
    """

    range: TimeRange
    channels: tuple[str, ...]
    mode: Literal["defer", "drop"]
    days: frozenset[int] | None = None


# --- extensions of the policy language beyond LANGUAGE.md §6


class Hours(msgspec.Struct, frozen=True):
    """``hours CHANNEL RANGES [on DAYS]``: the channel works only then; a send
    outside waits for the next opening."""

    channel: str
    ranges: tuple[TimeRange, ...]
    days: frozenset[int] | None = None


class Capacity(msgspec.Struct, frozen=True):
    """``capacity CHANNEL N per Dd``: at most N sends on the channel across all
    subscribers per local calendar period of whole days; the rest wait for the
    next period, highest priority first."""

    channel: str
    limit: int
    per_days: int


class NoRepeat(msgspec.Struct, frozen=True):
    """``no_repeat after OUTCOMES for D``: once a feedback with one of the
    outcomes arrived for a send, its template is not offered to the subscriber
    again, on any channel, for D after the feedback."""

    outcomes: tuple[str, ...]
    for_ms: int


class Exclusive(msgspec.Struct, frozen=True):
    """``exclusive "NAME": SCENARIO, ... per D``: two different scenarios of the
    group never both reach a subscriber with send times within D."""

    name: str
    scenarios: tuple[str, ...]
    per_ms: int


class Control(msgspec.Struct, frozen=True):
    """``control P% [for SCENARIO, ...]``: that share of subscribers is held
    out (matched, recorded, never sent); no scenarios = the global default."""

    percent: float
    scenarios: tuple[str, ...] = ()


class Policy(msgspec.Struct, frozen=True):
    """The single contact policy across all loaded files."""

    origin: Origin
    exclude: tuple[str, ...] = ()
    caps: tuple[Cap, ...] = ()
    quiet: tuple[Quiet, ...] = ()
    arbitrate_ms: int | None = None
    hours: tuple[Hours, ...] = ()
    capacity: tuple[Capacity, ...] = ()
    no_repeat: NoRepeat | None = None
    exclusive: tuple[Exclusive, ...] = ()
    control: tuple[Control, ...] = ()
    #: ``feedback within D`` (extension): how long after its send a ``feedback``
    #: can still be joined to it; None: the engine's default (the ``no_repeat``
    #: window or 30 days, whichever is longer)
    feedback_within_ms: int | None = None
    #: each ``exclude list("NAME")``'s name, where it is written
    names: tuple[NameUse, ...] = ()


class Plan(msgspec.Struct, frozen=True):
    """Everything the engine needs to run: scenarios in load order, the policy."""

    scenarios: tuple[Scenario, ...]
    policy: Policy | None = None
    version: int = PLAN_VERSION
    files: tuple[str, ...] = ()
