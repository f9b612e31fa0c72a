"""``F1 -> not F2 within D``: the absence form — one wait per subscriber, answered by an F2.

A wait keeps only what the scenario reads of F1 (``kept_fields``): when that is
text, a wait is one int indexing a process-wide table of the distinct kept
values (``_Layout``), and a snapshot stores the waits packed as they are
(``PackedWaits``); otherwise the wait holds the whole event.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union
from collections.abc import Callable

import msgspec

from kairos.engine._conjuncts import Guard, answer_test, packed_answer_guard, slot_fields
from kairos.engine._events import event_types
from kairos.engine.forms.base import Handler, Host, PatternRuntime, any_guard, kept_event, key_for, passes
from kairos.plan import Absence, Scenario, define, filename


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
    Otherwise (``kept`` is None) the wait holds the whole event (``kept_event``).
    """

    __slots__ = ("_first_type", "_first", "_absent_type", "_absent", "_within", "_first_f", "_absent_f",
                 "_answers", "_layout", "_views", "_keep")

    def __init__(self, index: int, host: Host, pattern: Absence, kept: tuple[str, ...] | None = None,
                 name: str = "") -> None:
        super().__init__(index, host)
        self._first_type = pattern.first.event_type
        self._first_f = pattern.first
        self._absent_f = pattern.absent
        self._first = passes(pattern.first)
        self._absent_type = pattern.absent.event_type
        self._absent = passes(pattern.absent)
        self._answers = None if pattern.absent.where is None else answer_test(pattern.absent.where, name)
        if self._answers is None and self._absent is not None:
            absent = self._absent
            self._answers = lambda e, first, c: absent(e, (first, e), c)
        self._within = pattern.within_ms
        self._keyof = key_for(pattern.within_ms)
        cls = event_types().get(self._first_type)
        self._layout = None if kept is None or cls is None else _layout(cls, kept)
        self._views: list[Any] = [] if self._layout is None else self._layout.views
        self._keep: Callable[[Any, str], Any] = kept_event if self._layout is None else self._layout.keep

    def state_type(self, event: Any) -> Any:
        if self._layout is None:
            return dict[str, event]
        return Union[dict[str, event], PackedWaits]  # noqa: UP007 (built at run time for msgspec)

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

    def _restore_packed(self, saved: PackedWaits) -> None:
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
            elif not same and isinstance(w, int):
                out[m] = layout.keep_values(w >> VIEW_BITS, tuple(saved.views[w & VIEW_MASK]))

    def handlers(self) -> dict[str, Handler]:
        if self._first_type == self._absent_type:
            return {self._first_type: self._on_both}
        return {self._first_type: self._on_first, self._absent_type: self._on_absent}

    def guard(self, type_name: str) -> Guard | None:
        """A first needs its filter's own-event terms; an answer needs a wait to answer; where one type
        does both and waits are packed, a subscriber's wait this event does not answer needs no call."""
        guard = self._entry_guard(type_name)
        if self._layout is None or not type_name == self._first_type == self._absent_type:
            return guard
        packed = packed_answer_guard(self._absent_f.where, f"_r{self.index}_", self.states, self._views, VIEW_MASK)
        if packed is None:
            return guard
        return packed if guard is None else guard & packed

    def _entry_guard(self, type_name: str) -> Guard | None:
        parts: list[Guard] = []
        if type_name == self._absent_type:
            g = self._event_guard(self._absent_f, 1)
            parts.append(self._member() if g is None else g & self._member())
        if type_name == self._first_type:
            g = self._event_guard(self._first_f, 0)
            if g is None:
                return None
            parts.append(g)
        return any_guard(parts)

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
    waits: dict[str, int | Waiting]


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
    ``once per``, parameters and ``set`` values read of it, when they are all text; None: the whole event."""
    p = scenario.pattern
    if not isinstance(p, Absence):
        return None
    exprs = [p.absent.where, scenario.audience, scenario.once_per]
    exprs += [expr for action in scenario.actions for _, expr in action.params]
    exprs += [s.value for s in scenario.sets]
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


