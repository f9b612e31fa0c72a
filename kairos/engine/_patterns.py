"""Per-subscriber state machines, one class per pattern form of LANGUAGE.md §2.

Each runtime is built once per scenario from its compiled ``plan`` pattern
(shared by every subscriber) and keeps a dict msisdn → compact state that
exists only while something can still complete from it. Runtimes do no I/O and
never read a clock: the engine feeds them events and deadlines in event time.
"""

from __future__ import annotations

import operator
import sys
import types
import typing
from array import array
from typing import Any, Callable, Protocol, Union

import msgspec

from kairos.engine._conjuncts import Guard, answer_test, event_guard, slot_fields
from kairos.engine._events import event_types
from kairos.plan import Absence, Aggregate, Dwell, Filter, Pattern, Scenario, Sequence, Single, define, filename

Handler = Callable[[Any], None]

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}

#: what a first step's filter gets for ``a``: it may only read its own event ``e``
NO_ALIASES: tuple[Any, ...] = ()

#: most partial matches kept per step of a correlated sequence (oldest dropped)
MAX_PARTIALS = 256

#: most distinct strings ``_kept`` shares (cells, apps …); past it, strings are kept as they come
MAX_SHARED_STRINGS = 1 << 20
_shared: dict[str, str] = {}


#: a number kept as a state key: ``sys.intern`` gives every runtime the same copy of it —
#: the reference's (``Reference`` interns the tag table's numbers), or the first seen
_key = sys.intern

#: state that may live this long is keyed by interned numbers; shorter-lived state would
#: pay for interning (and un-interning) a number at every short burst and save little
LONG_LIVED_MS = 3_600_000


def _same(m: str) -> str:
    return m


def _key_for(within_ms: int) -> Callable[[str], str]:
    return _key if within_ms >= LONG_LIVED_MS else _same


_keepers: dict[type, Callable[[Any, str], Any]] = {}


def _kept(ev: Any, msisdn: str) -> Any:
    """``ev`` made cheap to keep for long: its number is ``msisdn`` (the state's key) and
    its free-text fields share one copy of each distinct value (a cell named by a
    million waits is stored once), instead of the strings each decoded line made."""
    keep = _keepers.get(ev.__class__)
    if keep is None:
        keep = _keepers[ev.__class__] = _keeper(ev.__class__)
    return keep(ev, msisdn)


def _keeper(cls: type) -> Callable[[Any, str], Any]:
    """``_kept`` for one event class, generated: a few attribute moves per kept event."""
    names = [n for n in cls.__struct_fields__ if n not in ("msisdn", "ts")]  # type: ignore[attr-defined]
    body = ["def keep(ev, msisdn):", "    ev.msisdn = msisdn"]
    for name in names:
        body += [
            f"    v = ev.{name}",
            "    if v.__class__ is str:",
            "        s = shared.get(v)",
            "        if s is not None:",
            f"            ev.{name} = s",
            "        elif len(shared) < cap:",
            "            shared[v] = v",
        ]
    body.append("    return ev")
    ns: dict[str, Any] = {"shared": _shared, "cap": MAX_SHARED_STRINGS}
    return define("keep", "\n".join(body) + "\n", ns, filename("keeper", cls.__struct_config__.tag))  # type: ignore[attr-defined]


class Host(Protocol):
    """What a pattern runtime needs from the engine."""

    ctx: Any
    reference: Any  #: the loaded reference data (engine._reference.Reference)

    def complete(self, rt: "PatternRuntime", msisdn: str, t: int, e: Any, a: tuple[Any, ...]) -> None: ...
    def schedule(self, when: int, rt: "PatternRuntime", msisdn: str) -> None: ...
    def watch(self, when: int, owner: Any, msisdn: str) -> None: ...


class PatternRuntime:
    """Base: the scenario index, the host, and the per-subscriber states."""

    __slots__ = ("index", "host", "states", "_keyof")

    def __init__(self, index: int, host: Host) -> None:
        self.index = index
        self.host = host
        self.states: dict[str, Any] = {}
        self._keyof: Callable[[str], str] = _key  # how a new state's number is kept

    def handlers(self) -> dict[str, Handler]:
        """Event type name → the function to call with each event of that type."""
        raise NotImplementedError

    def guard(self, type_name: str) -> Guard | None:
        """A condition the route checks before calling ``handlers()[type_name]``; None: always call.

        It must hold whenever the handler would change anything (see ``Guarded``).
        """
        return None

    def _member(self) -> Guard:
        """The guard "the event's subscriber has state here"."""
        name = f"_r{self.index}_states"
        return Guard(f"e.msisdn in {name}", {name: self.states})

    def _event_guard(self, f: Filter, step: int = 0) -> Guard | None:
        return event_guard(f.where, f"_r{self.index}_{step}")

    def entry(self) -> tuple[str, Filter, Handler] | None:
        """(type, filter, on_match) when the runtime reads one type through one filter.

        The engine then evaluates the filter inline in its fused per-type route
        and calls ``on_match`` only for passing events.
        """
        return None

    def on_deadline(self, msisdn: str, when: int) -> None:
        """A deadline this runtime scheduled is due (it may be stale)."""

    def expiry(self, state: Any) -> int | None:
        """After this time nothing can complete from ``state``; None: not time-bound."""
        return None

    def collect(self, msisdn: str, now: int) -> None:
        """Drop the subscriber's state if it has expired, else keep watching it."""
        state = self.states.get(msisdn)
        if state is None:
            return
        exp = self.expiry(state)
        if exp is None:
            return
        if exp < now:
            del self.states[msisdn]
        else:
            self.host.watch(exp, self, msisdn)

    # --- snapshot / restore (engine/_snapshot.py) ---------------------------

    def state_type(self, event: Any) -> Any:
        """The msgspec type of ``states`` as a snapshot stores it; ``event`` is the event union."""
        return dict[str, Any]

    def restore(self, states: dict[str, Any]) -> None:
        """Take back the states a snapshot held (decoded with ``state_type``), or another
        runtime's live ``states`` of the same pattern (a reload)."""
        self.states.update(states)

    def snapshot_states(self) -> dict[str, Any]:
        """``states`` in the form ``state_type`` describes (what a snapshot encodes)."""
        return self.states

    def state_of(self, msisdn: str) -> Any:
        """One subscriber's state in the snapshot's form; None if there is none."""
        state = self.states.get(msisdn)
        return None if state is None else self.snapshot_states_of(state)

    def snapshot_states_of(self, state: Any) -> Any:
        return state


def _passes(f: Filter) -> Callable[[Any, tuple[Any, ...], Any], bool] | None:
    return None if f.where is None else f.where.fn


class SingleRuntime(PatternRuntime):
    """``F``: every passing event completes; no state."""

    __slots__ = ("_type", "_where", "_filter")

    def __init__(self, index: int, host: Host, pattern: Single) -> None:
        super().__init__(index, host)
        self._filter = pattern.filter
        self._type = pattern.filter.event_type
        self._where = _passes(pattern.filter)

    def handlers(self) -> dict[str, Handler]:
        return {self._type: self.on_event}

    def entry(self) -> tuple[str, Filter, Handler] | None:
        return self._type, self._filter, self.on_match

    def on_match(self, ev: Any) -> None:
        self.host.complete(self, ev.msisdn, ev.ts, ev, (ev,))

    def on_event(self, ev: Any) -> None:
        host = self.host
        if self._where is None or self._where(ev, NO_ALIASES, host.ctx):
            host.complete(self, ev.msisdn, ev.ts, ev, (ev,))


class SequenceRuntime(PatternRuntime):
    """``F1 -> … -> Fk within D``.

    State: for each step i < k-1, the best partial match ending at step i (a
    tuple of events). Without correlated filters the best is the one with the
    latest events, and it dominates every other (its first event is latest
    too), so one per step suffices. With filters that read earlier aliases, a
    list of partial matches per step is kept, newest last. Steps are tried
    last to first, so one event never fills two steps of the same match.
    """

    __slots__ = ("_steps", "_wheres", "_within", "_k", "_by_type", "_correlated")

    def __init__(self, index: int, host: Host, pattern: Sequence) -> None:
        super().__init__(index, host)
        self._steps = pattern.steps
        self._wheres = tuple(_passes(f) for f in pattern.steps)
        self._within = pattern.within_ms
        self._keyof = _key_for(pattern.within_ms)
        self._k = len(pattern.steps)
        self._correlated = any(f.reads_aliases for f in pattern.steps)
        by_type: dict[str, list[int]] = {}
        for i, f in enumerate(pattern.steps):
            by_type.setdefault(f.event_type, []).append(i)
        self._by_type = {t: tuple(sorted(ix, reverse=True)) for t, ix in by_type.items()}

    def state_type(self, event: Any) -> Any:
        if self._correlated:
            return dict[str, list[list[tuple[event, ...]]]]
        return dict[str, list[tuple[event, ...] | None]]

    def handlers(self) -> dict[str, Handler]:
        on = self._on_correlated if self._correlated else self._on_event
        return {t: (lambda ev, ix=ix: on(ev, ix)) for t, ix in self._by_type.items()}

    def guard(self, type_name: str) -> Guard | None:
        """Step 0 needs its filter's own-event terms; a later step also needs a partial match."""
        parts: list[Guard] = []
        for i in self._by_type.get(type_name, ()):
            g = self._event_guard(self._steps[i], i)
            if i == 0:
                if g is None:
                    return None
                parts.append(g)
            else:
                parts.append(self._member() if g is None else g & self._member())
        return _any(parts)

    def expiry(self, state: list[Any]) -> int | None:
        firsts = [
            (p[0].ts if not self._correlated else max(c[0].ts for c in p))
            for p in state
            if p
        ]
        return max(firsts) + self._within if firsts else -1

    def _on_event(self, ev: Any, steps: tuple[int, ...]) -> None:
        m = ev.msisdn
        state = self.states.get(m)
        t = ev.ts
        ctx = self.host.ctx
        last = self._k - 1
        for i in steps:
            where = self._wheres[i]
            if i == 0:
                if where is None or where(ev, (ev,), ctx):
                    if state is None:
                        m = self._keyof(m)
                        state = self.states[m] = [None] * last
                        self.host.watch(t + self._within, self, m)
                    state[0] = (ev,)
                continue
            if state is None:
                continue
            prev = state[i - 1]
            if prev is None or t - prev[0].ts > self._within:
                continue
            chain = prev + (ev,)
            if where is not None and not where(ev, chain, ctx):
                continue
            if i == last:
                del self.states[m]  # consumed: the next completion needs new events
                self.host.complete(self, m, t, ev, chain)
                return
            state[i] = chain

    def _on_correlated(self, ev: Any, steps: tuple[int, ...]) -> None:
        m = ev.msisdn
        state = self.states.get(m)
        t = ev.ts
        ctx = self.host.ctx
        last = self._k - 1
        within = self._within
        for i in steps:
            where = self._wheres[i]
            if i == 0:
                if where is None or where(ev, (ev,), ctx):
                    if state is None:
                        m = self._keyof(m)
                        state = self.states[m] = [[] for _ in range(last)]
                        self.host.watch(t + within, self, m)
                    _append(state[0], (ev,))
                continue
            if state is None:
                continue
            live = [c for c in state[i - 1] if t - c[0].ts <= within]
            state[i - 1] = live
            grown = [c + (ev,) for c in live]
            if where is not None:
                grown = [c for c in grown if where(ev, c, ctx)]
            if not grown:
                continue
            if i == last:
                del self.states[m]
                self.host.complete(self, m, t, ev, grown[-1])  # latest events bind
                return
            for c in grown:
                _append(state[i], c)


def _any(parts: list[Guard]) -> Guard | None:
    if not parts:
        return None
    out = parts[0]
    for g in parts[1:]:
        out = out | g
    return out


def _append(partials: list[tuple[Any, ...]], chain: tuple[Any, ...]) -> None:
    partials.append(chain)
    if len(partials) > MAX_PARTIALS:
        del partials[0]


class AbsenceRuntime(PatternRuntime):
    """``F1 -> not F2 within D``: one wait at a time, answered by an F2 after it.

    State: what the wait keeps of the F1 event that started it. Its deadline
    t1 + D fires after every event with ts <= t1 + D has been seen, so an F2
    exactly at the deadline still answers.

    When the scenario reads only text fields of F1 (``kept``: ``l.cell``, or
    nothing), a wait is one int, ``t1 << VIEW_BITS | view``: ``view`` indexes a
    table of the distinct kept values (``_Layout``), and that shared object is
    what the answer filter and the completion read as ``a[0]``. A value the
    table has no room for gets its own ``_Layout.view`` with the time in it.
    Otherwise (``kept`` is None) the wait holds the whole event (``_kept``).
    """

    __slots__ = ("_first_type", "_first", "_absent_type", "_absent", "_within", "_first_f", "_absent_f",
                 "_answers", "_layout", "_views", "_keep")

    def __init__(self, index: int, host: Host, pattern: Absence, kept: tuple[str, ...] | None = None,
                 name: str = "") -> None:
        super().__init__(index, host)
        self._first_type = pattern.first.event_type
        self._first_f = pattern.first
        self._absent_f = pattern.absent
        self._first = _passes(pattern.first)
        self._absent_type = pattern.absent.event_type
        self._absent = _passes(pattern.absent)
        self._answers = None if pattern.absent.where is None else answer_test(pattern.absent.where, name)
        if self._answers is None and self._absent is not None:
            absent = self._absent
            self._answers = lambda e, first, c: absent(e, (first, e), c)
        self._within = pattern.within_ms
        self._keyof = _key_for(pattern.within_ms)
        cls = event_types().get(self._first_type)
        self._layout = None if kept is None or cls is None else _layout(cls, kept)
        self._views: list[Any] = [] if self._layout is None else self._layout.views
        self._keep: Callable[[Any, str], Any] = _kept if self._layout is None else self._layout.keep

    def state_type(self, event: Any) -> Any:
        if self._layout is None:
            return dict[str, event]
        return Union[dict[str, event], PackedWaits]  # type: ignore[valid-type]

    def snapshot_states(self) -> Any:
        """Whole events, or the packed waits as they are with the views they index (a million
        waits encode in the time of a dict of ints, not of a million objects built for it)."""
        layout = self._layout
        if layout is None:
            return self.states
        states = self.states
        view = layout.view
        if any(w.__class__ is view for w in states.values()):
            of = self.snapshot_states_of
            states = {m: w if w.__class__ is int else of(w) for m, w in states.items()}
        return PackedWaits(layout.fields, [tuple(getattr(v, f) for f in layout.fields) for v in layout.views],
                           states)

    def snapshot_states_of(self, state: Any) -> Any:
        if state.__class__ is int:
            view = self._views[state & VIEW_MASK]
            return Waiting(state >> VIEW_BITS, {f: getattr(view, f) for f in self._layout.fields})  # type: ignore[union-attr]
        if self._layout is not None and state.__class__ is self._layout.view:
            return Waiting(state.ts, {f: getattr(state, f) for f in self._layout.fields})
        return state

    def restore(self, states: Any) -> None:
        """Waits as a snapshot holds them (whole events, ``PackedWaits``) or another runtime's live ones.

        A live packed wait is taken as it is: the same ``kept`` (the snapshot's pattern
        key says so) means the same process-wide ``_Layout``.
        """
        layout = self._layout
        if layout is None:
            return super().restore(states)
        if states.__class__ is PackedWaits:
            return self._restore_packed(states)
        out = self.states
        out.update(states)
        view = layout.view
        for m, w in states.items():
            if w.__class__ is not int and w.__class__ is not view:
                out[m] = layout.keep(w, m)  # a whole event
        return None

    def _restore_packed(self, saved: "PackedWaits") -> None:
        """Packed waits from a snapshot: their view indices mapped to this process's table."""
        layout = self._layout
        if layout is None or tuple(saved.fields) != layout.fields:
            raise ValueError(f"waits keeping {saved.fields} restored into a runtime keeping "
                             f"{None if layout is None else layout.fields}")  # the pattern key prevents it
        same = [layout.share(tuple(values)) for values in saved.views] == list(range(len(saved.views)))
        out = self.states
        if same:
            out.update(saved.waits)  # the table was rebuilt in the saved order (a fresh process)
        for m, w in saved.waits.items():
            if w.__class__ is Waiting:
                out[m] = layout.keep_values(w.ts, tuple(w.kept[f] for f in layout.fields))
            elif not same:
                out[m] = layout.keep_values(w >> VIEW_BITS, tuple(saved.views[w & VIEW_MASK]))

    def handlers(self) -> dict[str, Handler]:
        if self._first_type == self._absent_type:
            return {self._first_type: self._on_both}
        return {self._first_type: self._on_first, self._absent_type: self._on_absent}

    def guard(self, type_name: str) -> Guard | None:
        """A first needs its filter's own-event terms; an answer needs a wait to answer."""
        parts: list[Guard] = []
        if type_name == self._absent_type:
            g = self._event_guard(self._absent_f, 1)
            parts.append(self._member() if g is None else g & self._member())
        if type_name == self._first_type:
            g = self._event_guard(self._first_f, 0)
            if g is None:
                return None
            parts.append(g)
        return _any(parts)

    def _on_both(self, ev: Any) -> None:
        """One type both starts and answers waits (``location -> not location …``).

        An answer that starts the next wait keeps the wait's pending deadline —
        earlier than its own — which moves on when it comes due (``on_deadline``),
        so a subscriber has one deadline in the queue, not one per event.
        """
        m = ev.msisdn
        states = self.states
        first = states.get(m)
        ctx = self.host.ctx
        if first is None:
            if self._first is None or self._first(ev, (ev, None), ctx):
                m = self._keyof(m)
                states[m] = self._keep(ev, m)
                self.host.schedule(ev.ts + self._within, self, m)
            return
        if first.__class__ is int:
            view = self._views[first & VIEW_MASK]
        else:
            view = first
            m = getattr(first, "msisdn", m)  # a whole event: the key's string, kept since the first wait
        if self._answers is None or self._answers(ev, view, ctx):
            if self._first is None or self._first(ev, (ev, None), ctx):
                states[m] = self._keep(ev, m)
            else:
                del states[m]

    def _on_first(self, ev: Any) -> None:
        m = ev.msisdn
        if m in self.states:
            return  # a new F1 while waiting does not restart the wait
        if self._first is None or self._first(ev, (ev, None), self.host.ctx):
            m = self._keyof(m)
            self.states[m] = self._keep(ev, m)
            self.host.schedule(ev.ts + self._within, self, m)

    def _on_absent(self, ev: Any) -> None:
        first = self.states.get(ev.msisdn)
        if first is None:
            return
        if first.__class__ is int:
            first = self._views[first & VIEW_MASK]
        if self._answers is None or self._answers(ev, first, self.host.ctx):
            del self.states[ev.msisdn]

    def on_deadline(self, msisdn: str, when: int) -> None:
        first = self.states.get(msisdn)
        if first is None:
            return  # answered
        if first.__class__ is int:
            due = (first >> VIEW_BITS) + self._within
            first = self._views[first & VIEW_MASK]
        else:
            due = first.ts + self._within
        if due != when:
            if due > when:
                self.host.schedule(due, self, msisdn)  # a later wait took over this deadline
            return
        del self.states[msisdn]
        self.host.complete(self, msisdn, when, None, (first, None))


#: a packed absence wait is ``ts << VIEW_BITS | view``: at most this many shared views per layout
VIEW_BITS = 16
VIEW_MASK = (1 << VIEW_BITS) - 1


class Waiting(msgspec.Struct, tag_field="type", tag="waiting", gc=False):
    """A compact absence wait as a snapshot stores it: the first event's time and the fields kept."""

    ts: int
    kept: dict[str, Any]


class PackedWaits(msgspec.Struct, array_like=True):
    """An absence's packed waits as a snapshot stores them: ``waits`` as they are (ints, or
    ``Waiting`` for the few with their own view) and the ``views`` their low bits index."""

    fields: tuple[str, ...]
    views: list[tuple[Any, ...]]
    waits: dict[str, Union[int, Waiting]]


class _Layout:
    """How waits keeping ``fields`` of events of one type are packed, shared by every runtime
    (so a packed wait means the same in all of them: a hot reload hands them over as they are).

    ``views[i]`` is a ``view`` (a small Struct with the kept fields, ``ts`` None) shared by
    every wait with those values; ``index`` finds it by the values.
    """

    __slots__ = ("fields", "view", "views", "index", "keep", "capacity")

    def __init__(self, cls: type, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.view: Any = msgspec.defstruct(
            f"Kept{cls.__name__}", [(f, Any, None) for f in fields] + [("ts", Any, None)], gc=False)
        self.views: list[Any] = []
        self.index: dict[Any, int] = {}
        self.capacity = 1 << VIEW_BITS  #: most views: an index must fit in VIEW_BITS
        self.keep: Callable[[Any, str], Any] = self._keeper()
        if not fields:
            self.share(())  # view 0: the one every wait of this layout reads

    def share(self, values: tuple[Any, ...]) -> int:
        """The index of the view with ``values``, added if there is room; -1 when the table is full."""
        key = values[0] if len(values) == 1 else values
        i = self.index.get(key)
        if i is None:
            if len(self.views) >= self.capacity:
                return -1
            i = self.index[key] = len(self.views)
            self.views.append(self.view(*values))
        return i

    def keep_values(self, ts: Any, values: tuple[Any, ...]) -> Any:
        """A wait from its time and kept values."""
        i = self.share(values)
        if i < 0 or ts.__class__ is not int:
            return self.view(*values, ts=ts)
        return ts << VIEW_BITS | i

    def _keeper(self) -> Callable[[Any, str], Any]:
        """``keep(ev, msisdn)``: ``ev``'s wait, generated for the fields (a dict lookup per wait)."""
        reads = [f"ev.{f}" for f in self.fields]
        key = reads[0] if len(reads) == 1 else f"({', '.join(reads)},)"
        body = [
            "def keep(ev, m):",
            f"    i = index.get({key})" if reads else "    i = 0",
            "    t = ev.ts",
            "    if i is not None and t.__class__ is int:",
            f"        return t << {VIEW_BITS} | i",
            f"    return keep_values(t, ({''.join(r + ', ' for r in reads)}))",
        ]
        ns: dict[str, Any] = {"index": self.index, "keep_values": self.keep_values}
        return define("keep", "\n".join(body) + "\n", ns, filename("wait", self.view.__name__, *self.fields))


_layouts: dict[tuple[type, tuple[str, ...]], _Layout] = {}


def _layout(cls: type, fields: tuple[str, ...]) -> _Layout:
    layout = _layouts.get((cls, fields))
    if layout is None:
        layout = _layouts[(cls, fields)] = _Layout(cls, fields)
    return layout


def kept_fields(scenario: Scenario) -> tuple[str, ...] | None:
    """What an absence wait needs of its first event: the fields the answer filter, audience,
    ``once per`` and parameters read of it, when they are all text; None: the whole event."""
    p = scenario.pattern
    if not isinstance(p, Absence):
        return None
    exprs = [p.absent.where, scenario.audience, scenario.once_per]
    exprs += [expr for action in scenario.actions for _, expr in action.params]
    fields = slot_fields(exprs, 0)
    cls = event_types().get(p.first.event_type)
    if fields is None or cls is None:
        return None
    hints = typing.get_type_hints(cls)
    if any(f in ("ts", "msisdn") or f not in hints or not _textual(hints[f]) for f in fields):
        return None
    return tuple(sorted(fields))


def _textual(annotation: Any) -> bool:
    """Only ``str`` (or None) values: equal values are interchangeable, so they can be shared."""
    if annotation is str or annotation is type(None):
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return all(a.__class__ is str for a in args)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return all(_textual(a) for a in args)
    return False


class AggregateRuntime(PatternRuntime):
    """``count|sum|distinct(F[, EXPR]) CMP N within D`` on a sliding event-time window.

    State per subscriber: the timestamps of passing events in the window (and
    their values for sum/distinct). For ``count >= N`` / ``count > N`` only the
    newest N+1 timestamps can matter, so the window is capped there.

    Packed where it pays: a sum window of whole numbers from 0 to 2**32 - 1 (a
    day of video records) is an ``array('Q')`` holding its running total, a base
    time, then one entry per value, ``(ts - base) << 32 | value`` — 8 bytes an
    entry instead of about 120 for a tuple of two ints — and while it holds one
    entry (most do) it is the int ``ts << 32 | value``, 40 bytes instead of 88. When the offsets outgrow
    32 bits (a window kept alive for 49 days) the base moves to the oldest entry
    still in the window. Other whole numbers within 64 bits (negative, larger,
    or offsets that cannot fit) use an ``array('q')`` holding the total then (ts,
    value) pairs, 16 bytes an entry. A count window stays a list of timestamps:
    it is capped and short, and its oldest entry is read at every event, which
    an array would box anew. A sum that meets a float (or an int beyond 64 bits)
    goes on in a list of (ts, value) tuples, summed exactly as ``sum()`` would.
    """

    __slots__ = ("_type", "_where", "_value", "_kind", "_cmp", "_n", "_within", "_cap", "_filter", "_sums")

    def __init__(self, index: int, host: Host, pattern: Aggregate) -> None:
        super().__init__(index, host)
        self._filter = pattern.filter
        self._type = pattern.filter.event_type
        self._where = _passes(pattern.filter)
        self._value = None if pattern.value is None else pattern.value.fn
        self._kind = pattern.kind
        self._cmp = COMPARE[pattern.cmp]
        self._n = pattern.threshold
        self._within = pattern.within_ms
        self._keyof = _key_for(pattern.within_ms)
        cap = None
        if pattern.kind == "count" and pattern.cmp in (">=", ">") and pattern.threshold >= 0:
            cap = int(pattern.threshold) + 2
        self._cap = cap
        self._sums: dict[str, list[Any]] = {}  # sum in a list: per window, derived from it (not state)

    def state_type(self, event: Any) -> Any:
        if self._kind == "count":
            return dict[str, list[int]]
        return dict[str, list[tuple[int, Any]]]

    def snapshot_states(self) -> dict[str, Any]:
        if self._kind == "distinct":
            return self.states
        of = self.snapshot_states_of
        return {m: of(w) for m, w in self.states.items()}

    def snapshot_states_of(self, state: Any) -> Any:
        if state.__class__ is int:
            return [(state >> 32, state & _U32)]
        if state.__class__ is not array:
            return state
        return _pairs(state)

    def restore(self, states: dict[str, Any]) -> None:
        if self._kind == "distinct":
            return super().restore(states)
        pack = self._pack
        self.states.update({m: pack(w) for m, w in states.items()})

    def _pack(self, window: Any) -> Any:
        """A window as a snapshot (or another runtime) holds it, packed when it can be."""
        if window.__class__ is array:
            return array(window.typecode, window)  # not shared with the runtime it came from
        if window.__class__ is int:
            return window
        if self._kind == "count":
            return list(window)
        return _packed(window)

    def handlers(self) -> dict[str, Handler]:
        on = {"count": self._on_count, "sum": self._on_sum}.get(self._kind, self._on_values)
        return {self._type: on}

    def entry(self) -> tuple[str, Filter, Handler] | None:
        return self._type, self._filter, {"count": self._count, "sum": self._sum}.get(self._kind, self._values)

    def expiry(self, state: Any) -> int | None:
        if state.__class__ is int:
            return (state >> 32) + self._within
        if not state:
            return -1
        if self._kind == "count":
            newest = state[-1]
        elif state.__class__ is array:
            if state.typecode == "Q":
                newest = state[1] + (state[-1] >> 32) if len(state) > 2 else -1 - self._within
            else:
                newest = state[-2] if len(state) > 1 else -1 - self._within
        else:
            newest = state[-1][0]
        return newest + self._within

    def _on_count(self, ev: Any) -> None:
        if self._where is None or self._where(ev, NO_ALIASES, self.host.ctx):
            self._count(ev)

    def _count(self, ev: Any) -> None:
        host = self.host
        m = ev.msisdn
        t = ev.ts
        window = self.states.get(m)
        if window is None:
            m = self._keyof(m)
            window = self.states[m] = [t]  # a list: reading an array's ts would box it at every event
            host.watch(t + self._within, self, m)
        else:
            window.append(t)
            horizon = t - self._within
            if window[0] < horizon:
                cut = 1
                n = len(window)
                while cut < n and window[cut] < horizon:
                    cut += 1
                del window[:cut]
            elif self._cap is not None and len(window) > self._cap:
                del window[0]
        if self._cmp(len(window), self._n):
            host.complete(self, m, t, ev, (ev,))

    def _on_sum(self, ev: Any) -> None:
        if self._where is None or self._where(ev, NO_ALIASES, self.host.ctx):
            self._sum(ev)

    def _sum(self, ev: Any) -> None:
        """``sum``: a packed window (an int while it holds one entry) when the value is a
        whole number, else the list form."""
        value = self._value(ev, NO_ALIASES, self.host.ctx)  # type: ignore[misc]
        cls = value.__class__
        if cls is not int:
            if value is None or cls is bool:
                value = 0  # sum() of the window ignores what is not a number
            elif isinstance(value, int):
                value = int(value)
            else:
                return self._sum_listed(ev, value)
        m = ev.msisdn
        t = ev.ts
        window = self.states.get(m)
        if window is None:
            if 0 <= value <= _U32 and 0 <= t <= _I64_MAX:
                m = self._keyof(m)
                self.states[m] = t << 32 | value  # one entry: an int
                self.host.watch(t + self._within, self, m)
                return self._values_decided(ev, value)
            if not _I64_MIN <= value <= _I64_MAX:
                return self._sum_listed(ev, value)
            m = self._keyof(m)
            window = self.states[m] = array("q", (value, t, value))
            self.host.watch(t + self._within, self, m)
        elif window.__class__ is int:
            if window >> 32 < t - self._within and 0 <= value <= _U32 and t <= _I64_MAX:
                self.states[m] = t << 32 | value  # the entry left: the new one alone
                return self._values_decided(ev, value)
            first = window & _U32
            window = self.states[m] = array("Q", (first, window >> 32, first))
            return self._sum8(ev, window, value)
        elif window.__class__ is not array:
            return self._sum_listed(ev, value)
        elif window.typecode == "Q":
            return self._sum8(ev, window, value)
        else:
            total = window[0] + value
            if not (_I64_MIN <= total <= _I64_MAX and _I64_MIN <= value <= _I64_MAX):
                return self._sum_listed(ev, value)  # beyond 64 bits: the list form
            window.append(t)
            window.append(value)
            window[0] = total
            horizon = t - self._within
            if window[1] < horizon:
                cut = 1
                while window[cut] < horizon:
                    total -= window[cut + 1]
                    cut += 2
                del window[1:cut]
                if not _I64_MIN <= total <= _I64_MAX:
                    self.states[m] = list(zip(window[1::2], window[2::2]))
                    return self._values_decided(ev, sum(window[2::2]))
                window[0] = total
        if self._cmp(window[0], self._n):
            self.host.complete(self, m, t, ev, (ev,))
        return None

    def _sum8(self, ev: Any, window: array, value: int) -> None:
        """``_sum`` on the 8-byte window ``states`` holds."""
        t = ev.ts
        base = window[1]
        offset = t - base
        total = window[0] + value
        if not (0 <= value <= _U32 and 0 <= offset <= _U32 and total <= _U64):
            return self._sum_repacked(ev, window, value)
        window.append(offset << 32 | value)
        horizon = offset - self._within  # entries with a smaller offset leave
        m = ev.msisdn
        if window[2] >> 32 < horizon:
            cut = 2
            while window[cut] >> 32 < horizon:
                total -= window[cut] & _U32
                cut += 1
            if cut == len(window) - 1:  # only the new entry is left: an int again
                self.states[m] = t << 32 | value
                return self._values_decided(ev, value)
            del window[2:cut]
        window[0] = total
        return self._values_decided(ev, total)

    def _sum_repacked(self, ev: Any, window: array, value: int) -> None:
        """``ev``'s value does not fit the 8-byte window: the window in the form that holds it
        (with its base at its oldest entry still in the window, when offsets outgrew 32 bits)."""
        t = ev.ts
        horizon = t - self._within
        entries = [(ts, v) for ts, v in _pairs(window) if ts >= horizon]
        entries.append((t, value))
        self.states[ev.msisdn] = _packed(entries)
        return self._values_decided(ev, sum(v for _, v in entries))

    def _values_decided(self, ev: Any, total: Any) -> None:
        if self._cmp(total, self._n):
            self.host.complete(self, ev.msisdn, ev.ts, ev, (ev,))

    def _sum_listed(self, ev: Any, value: Any) -> None:
        m = ev.msisdn
        window = self.states.get(m)
        if window is not None and window.__class__ is array:
            self.states[m] = _pairs(window)
        elif window is not None and window.__class__ is int:
            self.states[m] = [(window >> 32, window & _U32)]
        self._values(ev, value)

    def _on_values(self, ev: Any) -> None:
        if self._where is None or self._where(ev, NO_ALIASES, self.host.ctx):
            self._values(ev)

    def _values(self, ev: Any, value: Any = None) -> None:
        host = self.host
        if self._kind != "sum":
            value = self._value(ev, NO_ALIASES, host.ctx)  # type: ignore[misc]
        m = ev.msisdn
        t = ev.ts
        window = self.states.get(m)
        if window is None:
            m = self._keyof(m)
            window = self.states[m] = []
            host.watch(t + self._within, self, m)
        window.append((t, value))
        horizon = t - self._within
        cut = 0
        while window[cut][0] < horizon:
            cut += 1
        if self._kind == "sum":
            total = self._slide_sum(m, window, cut)
            if cut:
                del window[:cut]
        else:
            if cut:
                del window[:cut]
            total = len({_hashable(v) for _, v in window if v is not None})
        if self._cmp(total, self._n):
            host.complete(self, m, t, ev, (ev,))

    def _slide_sum(self, m: str, window: list[tuple[int, Any]], cut: int) -> Any:
        """The window's sum once its first ``cut`` entries leave, kept up to date in O(1).

        ``_sums[m]`` is [sum of the int values, number of float values, the window
        it describes] of ``window`` before its newest entry; a float in the window falls back to summing it all
        in order, so the result is exactly ``sum()`` of the window's numbers.
        """
        running = self._sums.get(m)
        if running is None or running[2] is not window:  # new, or restored from a snapshot
            running = self._sums[m] = [0, 0, window]
            for _, v in window[:-1]:
                _add(running, v, 1)
        _add(running, window[-1][1], 1)
        for _, v in window[:cut]:
            _add(running, v, -1)
        if running[1]:
            return sum(v for _, v in window[cut:] if _is_number(v))
        return running[0]

    def collect(self, msisdn: str, now: int) -> None:
        super().collect(msisdn, now)
        if msisdn not in self.states:
            self._sums.pop(msisdn, None)


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_U32, _U64 = 2**32 - 1, 2**64 - 1


def _pairs(window: array) -> list[tuple[int, int]]:
    """A packed sum window's (ts, value) entries."""
    if window.typecode == "Q":
        base = window[1]
        return [(base + (p >> 32), p & _U32) for p in window[2:]]
    return list(zip(window[1::2], window[2::2]))


def _packed(entries: list[tuple[int, Any]]) -> Any:
    """A sum window from its (ts, value) entries in the smallest form that holds them exactly:
    an int (one entry), 8 bytes an entry, 16, or the list itself."""
    if not all(v.__class__ is int and t.__class__ is int for t, v in entries):
        return list(entries)
    total = sum(v for _, v in entries)
    base = entries[0][0] if entries else 0
    if (0 <= base <= _I64_MAX and total <= _U64
            and all(0 <= v <= _U32 and 0 <= t - base <= _U32 for t, v in entries)):
        if len(entries) == 1:
            return base << 32 | total
        return array("Q", [total, base] + [(t - base) << 32 | v for t, v in entries])
    if _I64_MIN <= total <= _I64_MAX and all(_I64_MIN <= v <= _I64_MAX for _, v in entries):
        flat = array("q", [total])
        for t, v in entries:
            flat.append(t)
            flat.append(v)
        return flat
    return list(entries)


def _add(running: list[Any], v: Any, sign: int) -> None:
    cls = v.__class__
    if cls is int:
        running[0] += sign * v
    elif cls is float:
        running[1] += sign
    elif isinstance(v, int) and cls is not bool:
        running[0] += sign * int(v)
    elif isinstance(v, float):
        running[1] += sign


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and v.__class__ is not bool


def _hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


class DwellRuntime(PatternRuntime):
    """``dwell in area(…) for D``: continuously inside the union of the areas.

    State while inside: ``[enter_ts, fired]``. Entering schedules enter + D;
    leaving (a location outside, or power off) before then cancels; leaving
    exactly at enter + D still completes. Completes once per stay.
    """

    __slots__ = ("_areas", "_for")

    def __init__(self, index: int, host: Host, pattern: Dwell) -> None:
        super().__init__(index, host)
        self._areas = frozenset(pattern.areas)
        self._for = pattern.for_ms

    def state_type(self, event: Any) -> Any:
        return dict[str, list[Any]]  # [enter_ts, fired]

    def handlers(self) -> dict[str, Handler]:
        return {"location": self._on_location, "power": self._on_power}

    def guard(self, type_name: str) -> Guard | None:
        """Only a subscriber inside, or a location in one of the areas, can change a stay."""
        if type_name == "power":
            return self._member()
        name = f"_r{self.index}_cells"
        cells = frozenset(c for c, of in self.host.reference.areas_of_cell.items() if not of.isdisjoint(self._areas))
        return self._member() | Guard(f"e.cell in {name}", {name: cells})

    def _on_location(self, ev: Any) -> None:
        m = ev.msisdn
        inside = self.host.ctx.in_area(ev.cell, self._areas)
        stay = self.states.get(m)
        if inside:
            if stay is None:
                m = self._keyof(m)
                self.states[m] = [ev.ts, False]
                self.host.schedule(ev.ts + self._for, self, m)
        elif stay is not None:
            self._leave(m, stay, ev.ts)

    def _on_power(self, ev: Any) -> None:
        if ev.state == "off":
            stay = self.states.get(ev.msisdn)
            if stay is not None:
                self._leave(ev.msisdn, stay, ev.ts)

    def _leave(self, m: str, stay: list[Any], t: int) -> None:
        del self.states[m]
        due = stay[0] + self._for
        if not stay[1] and due <= t:
            self.host.complete(self, m, due, None, ())

    def on_deadline(self, msisdn: str, when: int) -> None:
        stay = self.states.get(msisdn)
        if stay is None or stay[1] or stay[0] + self._for != when:
            return
        stay[1] = True
        self.host.complete(self, msisdn, when, None, ())


def build_runtime(index: int, host: Host, pattern: Pattern, scenario: Scenario | None = None) -> PatternRuntime:
    """The state machine for a compiled pattern; ``scenario`` (its other expressions) lets an
    absence keep only what they read of its first event."""
    if isinstance(pattern, Single):
        return SingleRuntime(index, host, pattern)
    if isinstance(pattern, Sequence):
        return SequenceRuntime(index, host, pattern)
    if isinstance(pattern, Absence):
        return AbsenceRuntime(index, host, pattern, None if scenario is None else kept_fields(scenario),
                              "" if scenario is None else scenario.name)
    if isinstance(pattern, Aggregate):
        return AggregateRuntime(index, host, pattern)
    if isinstance(pattern, Dwell):
        return DwellRuntime(index, host, pattern)
    raise TypeError(f"unknown pattern {type(pattern).__name__}")
