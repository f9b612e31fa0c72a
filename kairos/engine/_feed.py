"""The engine's feed loop, generated from one template: ``Engine.feed`` is always this loop.

Per event it moves time (firing due deadlines and sweeps), counts and reports
late events, calls the route of the event's type and drains the triggers the
event sent; an exception one event raises, but a ``LetOut`` (a time jump, a
failed sink), goes to ``engine._fault`` and the loop goes on. The bulk of an
operator's feed is one type (DPI records): that type's route text is pasted
into the loop (``hot``), so its events cost no call; the loop is otherwise the
same text, so no behaviour of the feed exists twice.
"""

from __future__ import annotations

import ast
from typing import Any
from collections.abc import Callable

from kairos.plan import define, filename, lines_from

#: the names the loop binds, which a pasted route must not use
_FEED_LOCALS = frozenset({"events", "on_late", "engine", "deadlines", "routes", "pending", "now", "late",
                          "cls", "route", "i", "t", "_feed_exc"})

_HEAD = """\
def feed(events, on_late=None):
    engine = _feed_engine
    deadlines = _feed_deadlines
    routes = _feed_routes
    pending = _feed_pending
    now = engine.now
    late = 0
    cls = route = None  # the route of the previous event's type: a run of one type looks it up once
    for i, e in enumerate(events):
        try:  # free in CPython 3.11 while nothing raises
            t = e.ts
            if t > now:
                if deadlines.floor < t or engine._gc_due <= t:
                    engine.advance(t)
                now = engine.now = t
            elif t < now:
                late += 1
                if on_late is not None:
                    on_late(i, e)
                continue
"""

#: any type: its route, called (at the indentation of the loop's body, 12 spaces)
_CALL = """\
if e.__class__ is not cls:
    cls = e.__class__
    route = routes.get(cls)
if route is None:
    continue
c.msisdn = e.msisdn
route(e)
"""

_TAIL = """\
            if pending:
                engine._drain()
        except _feed_LetOut:  # a time jump, a sink that failed: not this event's fault
            raise
        except Exception as _feed_exc:  # one event's failure must not stop the stream (issue 12)
            engine._fault(i, e, _feed_exc)
            now = engine.now
    engine.late_events += late
    engine.events_in += len(events) - late
"""


def build_feed(engine: Any, let_out: type[Exception], hot: type | None = None,
               route: Callable[[Any], None] | None = None) -> Callable[..., None]:
    """``engine.feed(events, on_late=None)``: ``on_event`` for a block of events, generated.

    ``on_late(index, event)`` hears of each event older than the stream's time.
    With ``hot`` and its ``route`` (a generated route: its statements in ``.body``),
    that route is pasted into the loop, unless its text uses a name the loop binds.
    """
    ns: dict[str, Any] = {"c": engine.ctx}
    lines = None if route is None else _pastable(route, ns)
    ns.update({"_feed_engine": engine, "_feed_deadlines": engine._deadlines, "_feed_routes": engine._routes,
               "_feed_pending": engine._pending, "_feed_LetOut": let_out})
    if lines is None or hot is None:
        body = _indent(_CALL.splitlines(), 12)
        file = filename("feed")
        origins = None
    else:
        ns["_feed_hot"] = hot
        pasted = ["if e.__class__ is _feed_hot:", "    c.msisdn = e.msisdn", *(f"    {line}" for line in lines),
                  "else:", *(f"    {line}" for line in _CALL.splitlines())]
        body = _indent(pasted, 12)
        file = filename("feed", hot.__struct_config__.tag)  # type: ignore[attr-defined]
        # the feed's line of the route's first statement: 2 lines after the head (the class test, msisdn)
        first = _HEAD.count("\n") + 3
        origins = lines_from(first, route.origins)  # type: ignore[union-attr]  # the clause of each pasted line
    return define("feed", _HEAD + body + _TAIL, ns, file, origins)


def _pastable(route: Callable[[Any], None], ns: dict[str, Any]) -> list[str] | None:
    """``route``'s statements, its names added to ``ns``; None when they would clash with the loop's."""
    lines: list[str] = route.body  # type: ignore[attr-defined]
    used = {n.id for n in ast.walk(ast.parse("\n".join(lines))) if isinstance(n, ast.Name)}
    names: dict[str, Any] = route.__globals__
    if used & _FEED_LOCALS or any(name.startswith("_feed_") for name in names):
        return None
    if names.get("c") is not ns["c"]:
        return None  # the route reads another context than the engine's
    ns.update(names)
    return lines


def _indent(lines: list[str], spaces: int) -> str:
    pad = " " * spaces
    return "".join(f"{pad}{line}\n" for line in lines)
