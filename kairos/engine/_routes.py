"""Fused per-type routes: one generated function per event type.

A route does everything an event of its type needs: enrichment, each reading
scenario's entry filter evaluated inline (its compiled Python text pasted into
the route when it uses nothing but the event, literals and the plan's helpers;
the generated text only, never the scenario's: a line made from a clause is
mapped to its ``FILE:LINE:COL`` (``plan.places``) and ends in a comment naming it),
the runtime called only on a match, and the previous-value bookkeeping. An
event that matches nothing costs one Python call.
"""

from __future__ import annotations

import dis
import sys
from typing import Any
from collections.abc import Callable, Container, Sequence

from kairos.engine._conjuncts import Guard, Pieces
from kairos.engine.forms.base import Fused
from kairos.plan import NAMESPACE, Expr, Filter, Origin, Scenario, at, define, filename, lines_from

Handler = Callable[[Any], None]


class Entry:
    """A scenario's entry on one type: a filter and what to call when it passes.

    ``audience``/``on_refused``: a single-event scenario's audience checked in the
    route itself; a passing event that fails it goes to ``on_refused`` (which
    counts it as ``complete`` would) instead of ``on_match``.
    """

    __slots__ = ("filter", "on_match", "audience", "on_refused", "condition", "stats", "fused", "scenario")

    def __init__(self, filter: Filter, on_match: Handler, audience: Guard | None = None,
                 on_refused: Handler | None = None, condition: Guard | None = None,
                 stats: Any = None, fused: Fused | None = None, scenario: Scenario | None = None) -> None:
        self.filter = filter
        self.on_match = on_match
        self.audience = audience
        #: ``on_refused``, or with ``stats`` (a scenario without cool-down and ``during``,
        #: whose only refusal is "audience") the refusal is counted in the route itself
        self.on_refused = on_refused
        self.stats = stats
        #: the filter bound to the reference data (``bound_filter``), when it could not be inlined
        self.condition = condition
        #: ``on_match`` as text the route runs in its place (the form's ``fused``), when it has one
        self.fused = fused
        #: whose entry it is: the route's lines name its clauses' places (None: unnamed, in tests)
        self.scenario = scenario

    def note(self, clause: str, expr: Expr | None) -> str:
        """``  # scenario NAME CLAUSE at FILE:LINE:COL``: what ends a route line made from a clause."""
        return _note(self.scenario, clause, None if expr is None else expr.origin)


def _note(scenario: Scenario | None, clause: str, origin: Origin | None) -> str:
    who = "" if scenario is None else f"scenario {scenario.name} "
    return f"  # {who}{clause} at {at(origin)}"


class Unless:
    """A step before the scenarios skipped, with no call, for an event whose subscriber is in any of
    ``known`` (the universe's tag rows and recent members: most events' subscribers, whose step would
    return at once)."""

    __slots__ = ("step", "known")

    def __init__(self, step: Handler, *known: Container[str]) -> None:
        self.step = step
        self.known = known


class Guarded:
    """A runtime's handler for one type, called only when ``guard`` passes (None: always).

    The guard is a necessary condition for the handler to do anything — the
    terms of its filters that read only the event, or that the subscriber is
    in the runtime's state — so skipping the call changes nothing but its cost.
    """

    __slots__ = ("handler", "guard", "scenario")

    def __init__(self, handler: Handler, guard: Guard | None, scenario: Scenario | None = None) -> None:
        self.handler = handler
        self.guard = guard
        #: whose handler it is: names the guard's clauses in the route's comments (None: unnamed)
        self.scenario = scenario


def _if(pieces: Pieces, scenario: Scenario | None, clause: str) -> list[tuple[str, Origin | None]]:
    """``if (CONDITION):`` as route lines, one per piece, each with its clause's place."""
    lines: list[tuple[str, Origin | None]] = []
    for k, (text, origin) in enumerate(pieces):
        line = ("if (" if k == 0 else "        ") + text + ("):" if k == len(pieces) - 1 else "")
        lines.append((line if origin is None else line + _note(scenario, clause, origin), origin))
    return lines


def inlinable(expr: Expr) -> bool:
    """True if ``expr.python`` can be pasted into a route: it reads only e, a, c,
    literals and the plan's helpers (no constants of its own, no nested code)."""
    code = getattr(expr.fn, "__code__", None)
    if code is None or not expr.python:
        return False
    if any(hasattr(k, "co_code") for k in code.co_consts):
        return False
    ns = getattr(expr.fn, "__globals__", {})
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            name = ins.argval
            if name not in NAMESPACE or ns.get(name) is not NAMESPACE[name]:
                return False
    return True


def _paste(step: Handler, ns: dict[str, Any]) -> list[tuple[str, Origin | None]] | None:
    """A generated step's statements (``.body``, ``.origins``: the period terms), its names added to
    ``ns``, to run in the route with no call; None when it has none or a name means another thing here."""
    lines: list[str] | None = getattr(step, "body", None)
    names: dict[str, Any] = getattr(step, "__globals__", {})
    if lines is None or any(k in ns and ns[k] is not v for k, v in names.items() if k != "__builtins__"):
        return None
    ns.update(names)
    return list(zip(lines, step.origins, strict=True))  # type: ignore[attr-defined]  # beside .body


def build_route(
    name: str,
    before: Sequence[Handler | Unless],
    items: Sequence[Entry | Guarded | Handler],
    tracked: Sequence[tuple[str, dict[str, Any]]],
    ctx: Any,
    now: bool = False,
) -> Callable[[Any], None] | None:
    """Generate the route for one event type; None when nothing reads the type.

    ``now``: a loaded scenario reads the evaluation time (``c.now``), so the route sets it first."""
    if not before and not items and not tracked:
        return None
    ns: dict[str, Any] = dict(NAMESPACE)
    ns["c"] = ctx
    ns["a"] = ()
    #: the route's statements, each with the clause it was made from (None: none)
    body: list[tuple[str, Origin | None]] = [("c.now = e.ts", None)] if now else []
    for i, step in enumerate(before):
        if isinstance(step, Unless):
            ns[f"_b{i}"] = step.step
            tests = []
            for j, known in enumerate(step.known):
                ns[f"_bk{i}_{j}"] = known
                tests.append(f"e.msisdn not in _bk{i}_{j}")
            body.extend(((f"if {' and '.join(tests)}:", None), (f"    _b{i}(e)", None)))
            continue
        pasted = _paste(step, ns)
        if pasted is not None:
            body.extend(pasted)
            continue
        ns[f"_b{i}"] = step
        body.append((f"_b{i}(e)", None))
    for i, item in enumerate(items):
        if isinstance(item, Guarded):
            ns[f"_h{i}"] = item.handler
            if item.guard is None:
                body.append((f"_h{i}(e)", None))
            else:
                ns.update(item.guard.ns)
                body.extend(_if(item.guard.pieces, item.scenario, "where"))
                body.append((f"    _h{i}(e)", None))
            continue
        if not isinstance(item, Entry):
            ns[f"_h{i}"] = item
            body.append((f"_h{i}(e)", None))
            continue
        ns[f"_m{i}"] = item.on_match
        act: list[tuple[str, Origin | None]] = [(f"_m{i}(e)", None)]
        if item.fused is not None:
            ns.update(item.fused.ns)
            act = [(line, None) for line in item.fused.lines]
        elif item.audience is not None:
            ns.update(item.audience.ns)
            audience = _if(item.audience.pieces, item.scenario, "audience")
            if item.stats is not None:
                ns[f"_t{i}"] = item.stats
                act = [*audience, *((line, None) for line in (
                    f"    _m{i}(e)", "else:", f"    _t{i}.matched += 1",
                    f"    _d = _t{i}.suppressed", "    _d['audience'] = _d.get('audience', 0) + 1"))]
            elif item.on_refused is not None:
                ns[f"_x{i}"] = item.on_refused
                act = [*audience, *((line, None) for line in (f"    _m{i}(e)", "else:", f"    _x{i}(e)"))]
        where = item.filter.where
        if where is None:
            body.extend(act)
            continue
        if inlinable(where):
            body.append((f"if ({where.python}):" + item.note("where", where), where.origin))
        elif item.condition is not None:
            ns.update(item.condition.ns)
            body.extend(_if(item.condition.pieces, item.scenario, "where"))
        else:
            ns[f"_w{i}"] = where.fn
            body.append((f"if _w{i}(e, a, c):" + item.note("where", where), where.origin))
        body.extend((f"    {line}", origin) for line, origin in act)
    if tracked:
        ns["_intern"] = sys.intern  # kept for long: the one copy of the number
        body.append(("_m = _intern(e.msisdn)", None))
        for j, (field, store) in enumerate(tracked):
            ns[f"_s{j}"] = store
            body.append((f"_s{j}[_m] = e.{field}", None))
    source = "def route(e):\n" + "".join(f"    {line}\n" for line, _ in body)
    origins = [origin for _, origin in body]
    route = define("route", source, ns, filename("route", name), lines_from(2, origins))
    route.body = [line for line, _ in body]  # type: ignore[attr-defined]  # its statements, for a feed loop to paste (``engine._feed``)
    route.origins = origins  # type: ignore[attr-defined]  # the clause each was made from, for the feed's line map
    return route
