"""A count window pasted into its route: the hot path of ``count(F) CMP N within D``.

Without it a passing event costs a call to ``AggregateRuntime._count`` and, once
the window holds N events, a call to ``Engine.complete`` that mostly ends in
the cool-down refusing (a burst of video keeps a subscriber over the threshold
for minutes, and each of those events completes again). Here both are Python
text the route runs in place: the window's append, eviction and cap, the
threshold test and the cool-down's refusal, counted as ``complete`` counts it.
Anything else (a new window, a completion the cool-down lets through) calls
the same functions the general path calls, so the decisions are the same.
"""

from __future__ import annotations

from typing import Any, Callable

from kairos.engine._patterns import COMPARE, AggregateRuntime, PatternRuntime

#: False: routes call ``on_match`` as they always did (tests compare both paths)
ENABLED = True

_SYMBOL = {fn: text for text, fn in COMPARE.items()}


class Fused:
    """Statements over ``e`` (the event) that a route runs instead of calling ``on_match(e)``.

    ``ns`` holds the names they use, unique to their owner so several fit one route.
    """

    __slots__ = ("lines", "ns")

    def __init__(self, lines: list[str], ns: dict[str, Any]) -> None:
        self.lines = lines
        self.ns = ns


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


def fused_count(rt: PatternRuntime, complete: Callable[..., None], watch: Callable[..., None],
                gates: Any, stats: Any) -> Fused | None:
    """``rt._count`` (and the cool-down of ``gates``) as route text; None unless ``rt`` counts.

    ``complete``/``watch``: the host's; ``gates``: the scenario's ``_Gates`` (None: no gates);
    ``stats``: its ``ScenarioStats``. Only for an engine without an observer (which must
    hear every completion): a refusal here is counted but not announced.
    """
    if not ENABLED or not isinstance(rt, AggregateRuntime) or rt._kind != "count":
        return None
    symbol = _SYMBOL.get(rt._cmp)
    if symbol is None:
        return None
    p = f"_r{rt.index}"
    ns: dict[str, Any] = {f"{p}_states": rt.states, f"{p}_rt": rt, f"{p}_keyof": rt._keyof,
                          f"{p}_watch": watch, f"{p}_complete": complete,
                          f"{p}_collector": CountCollector(rt, watch)}
    n = rt._n
    if isinstance(n, float) and n.is_integer() and abs(n) < 2**53:
        threshold = repr(int(n))  # the same answer for a length, without an int/float comparison
    else:
        threshold = f"{p}_n"
        ns[threshold] = n
    within = int(rt._within)
    lines = [
        "_m = e.msisdn",
        "_t = e.ts",
        f"_w = {p}_states.get(_m)",
        "if _w is None:",
        f"    _m = {p}_keyof(_m)",
        f"    _w = {p}_states[_m] = [_t]",
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
    lines.append(f"if len(_w) {symbol} {threshold}:")
    done = f"{p}_complete({p}_rt, _m, _t, e, (e,))"
    if gates is None or gates.cooldown_ms is None:
        lines.append(f"    {done}")
        return Fused(lines, ns)
    ns[f"{p}_last"] = gates.last
    ns[f"{p}_stats"] = stats
    lines += [
        f"    _l = {p}_last.get(_m)",
        f"    if _l is not None and _t < _l + {int(gates.cooldown_ms)}:  # cooling: as complete counts it",
        f"        {p}_stats.matched += 1",
        f"        _d = {p}_stats.suppressed",
        "        _d['cooldown'] = _d.get('cooldown', 0) + 1",
        "    else:",
        f"        {done}",
    ]
    return Fused(lines, ns)
