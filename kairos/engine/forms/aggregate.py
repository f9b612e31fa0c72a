"""``count|sum|distinct(F[, EXPR]) CMP N within D``: the aggregate form, on a sliding window.

Per subscriber, the window of passing events: a count window is a short list of
timestamps; a sum window is packed (an int, an ``array('Q')``/``array('q')``) and
a snapshot stores it as (ts, value) pairs; a distinct window is a list of pairs.

A count window's step is Python text (``count_route``), written once: the route
of an engine without an observer pastes it, with the cool-down's refusal, in
place of a call (``fused``: a burst of video keeps a subscriber over the
threshold for minutes, and each of those events would otherwise cost two calls
to end in the cool-down refusing), and the runtime's own handler is the same
text compiled as a function.
"""

from __future__ import annotations

from array import array
from typing import Any
from collections.abc import Callable

from kairos.engine.forms.base import (COMPARE, NO_ALIASES, Fused, Handler, Host, PatternRuntime, cooling_test,
                                      key_for)
from kairos.plan import Aggregate, Filter, at, define, filename

#: False: routes call the count handler instead of pasting its text (tests compare both: the
#: handler is compiled from the same text, so they differ only in the pasting and in the
#: cool-down's refusal, which the pasted text does in place of ``Engine.complete``)
FUSED = True


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

    __slots__ = ("_type", "_value", "_kind", "_cmp", "_n", "_within", "_cap", "_filter", "_sums", "_pattern",
                 "_name", "_count")

    def __init__(self, index: int, host: Host, pattern: Aggregate, name: str = "") -> None:
        super().__init__(index, host)
        self._pattern = pattern
        self._name = name
        self._filter = pattern.filter
        self._type = pattern.filter.event_type
        self._value = None if pattern.value is None else pattern.value.fn
        self._kind = pattern.kind
        self._cmp = COMPARE[pattern.cmp]
        self._n = pattern.threshold
        self._within = pattern.within_ms
        self._keyof = key_for(pattern.within_ms)
        cap = None
        if pattern.kind == "count" and pattern.cmp in (">=", ">") and pattern.threshold >= 0:
            cap = int(pattern.threshold) + 2
        self._cap = cap
        self._sums: dict[str, list[Any]] = {}  # sum in a list: per window, derived from it (not state)
        if pattern.kind == "count":
            #: the count window's step, generated from the text ``fused`` pastes into routes
            self._count: Handler = _defined(count_route(self, host.complete, host.watch, None, None), name)

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

    def entry(self) -> tuple[str, Filter, Handler] | None:
        if self._kind == "count":
            return self._type, self._filter, self._count
        return self._type, self._filter, self._sum if self._kind == "sum" else self._values

    def fused(self, complete: Callable[..., None], watch: Callable[..., None], gates: Any,
              stats: Any) -> Fused | None:
        """A count window's step pasted into its route, with the cool-down's refusal (``count_route``)."""
        if not FUSED or self._kind != "count":
            return None
        return count_route(self, complete, watch, gates, stats)

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
        expiry: int = newest + self._within
        return expiry

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
                    self.states[m] = list(zip(window[1::2], window[2::2], strict=True))
                    return self._values_decided(ev, sum(window[2::2]))
                window[0] = total
        if self._cmp(window[0], self._n):
            self.host.complete(self, m, t, ev, (ev,))
        return None

    def _sum8(self, ev: Any, window: array[int], value: int) -> None:
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

    def _sum_repacked(self, ev: Any, window: array[int], value: int) -> None:
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


def _pairs(window: array[int]) -> list[tuple[int, int]]:
    """A packed sum window's (ts, value) entries."""
    if window.typecode == "Q":
        base = window[1]
        return [(base + (p >> 32), p & _U32) for p in window[2:]]
    return list(zip(window[1::2], window[2::2], strict=True))


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




class CountCollector:
    """Drops a count runtime's expired windows for the engine's sweep, in one call per watch.

    What ``AggregateRuntime.collect`` does for a count window (a window lives until its
    newest event is older than the window's length), without its two nested calls:
    a sweep collects about one window per fifteen W1 events.
    """

    __slots__ = ("states", "within", "watch")

    def __init__(self, rt: AggregateRuntime, watch: Callable[..., None]) -> None:
        self.states = rt.states
        self.within = rt._within
        self.watch = watch

    def collect(self, msisdn: str, now: int) -> None:
        """Drop the subscriber's window if it has expired, else watch it until it will have."""
        window = self.states.get(msisdn)
        if window is None:
            return
        expiry = window[-1] + self.within if window else -1
        if expiry < now:
            del self.states[msisdn]
        else:
            self.watch(expiry, self, msisdn)


def count_route(rt: AggregateRuntime, complete: Callable[..., None], watch: Callable[..., None],
                gates: Any, stats: Any) -> Fused:
    """A count window's step over the event ``e``, as statements: the window's append, eviction
    and cap, the threshold test, and ``complete`` — after the cool-down's refusal, counted as
    ``Engine.complete`` counts it, when ``gates`` has a cool-down (None: no gates).

    ``complete``/``watch``: the host's; ``stats``: the scenario's ``ScenarioStats``.
    Names in ``ns`` start with ``_rINDEX`` so several runtimes fit one route.
    """
    p = f"_r{rt.index}"
    ns: dict[str, Any] = {f"{p}_states": rt.states, f"{p}_rt": rt, f"{p}_keyof": rt._keyof,
                          f"{p}_watch": watch, f"{p}_complete": complete,
                          f"{p}_collector": CountCollector(rt, watch)}
    pattern = rt._pattern
    n = pattern.threshold
    if n.__class__ is float and n.is_integer() and abs(n) < 2**53:
        threshold = repr(int(n))  # the same answer for a length, without an int/float comparison
    else:
        threshold = f"{p}_n"
        ns[threshold] = n
    within = int(rt._within)
    who = f"scenario {rt._name} " if rt._name else ""
    lines = [
        "_m = e.msisdn",
        "_t = e.ts",
        f"_w = {p}_states.get(_m)",
        "if _w is None:",
        f"    _m = {p}_keyof(_m)",
        f"    _w = {p}_states[_m] = [_t]",  # a list: reading an array's ts would box it at every event
        f"    {p}_watch(_t + {within}, {p}_collector, _m)",
        "else:",
        "    _w.append(_t)",
        f"    _h = _t - {within}",
        "    if _w[0] < _h:",
        "        _k = 1",
        "        _n = len(_w)",
        "        while _k < _n and _w[_k] < _h:",
        "            _k += 1",
        "        del _w[:_k]",
    ]
    if rt._cap is not None:
        lines += [f"    elif len(_w) > {int(rt._cap)}:", "        del _w[0]"]
    lines.append(f"if len(_w) {pattern.cmp} {threshold}:  # {who}count at {at(pattern.filter.origin)}")
    done = f"{p}_complete({p}_rt, _m, _t, e, (e,))"
    if gates is None or gates.cooldown_ms is None:
        lines.append(f"    {done}")
        return Fused(lines, ns)
    ns[f"{p}_last"] = gates.last
    ns[f"{p}_stats"] = stats
    lines += [
        f"    _l = {p}_last.get(_m)",
        f"    if {cooling_test('_l', '_t', gates.cooldown_ms)}:  # cooling: as complete counts it",
        f"        {p}_stats.matched += 1",
        f"        _d = {p}_stats.suppressed",
        "        _d['cooldown'] = _d.get('cooldown', 0) + 1",
        "    else:",
        f"        {done}",
    ]
    return Fused(lines, ns)


def _defined(route: Fused, scenario: str) -> Handler:
    """``route``'s statements as the function ``count(e)``."""
    source = "def count(e):\n" + "".join(f"    {line}\n" for line in route.lines)
    return define("count", source, dict(route.ns), filename("scenario", scenario, "count"))
