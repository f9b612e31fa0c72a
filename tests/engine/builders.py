"""Build plans by hand (no parser) and run them: the engine's tests stand on their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos.engine import Engine, Reference, Send
from kairos.engine._events import Event
from kairos.plan import Action, Expr, Filter, Origin, Plan, Scenario

HERE = Origin("<test>", 1, 1)


def fn(f: Callable[..., Any], text: str = "<expr>") -> Expr:
    """A compiled expression from a Python function ``f(e, a, c)``."""
    return Expr(text=text, python="", origin=HERE, fn=f)


def flt(event_type: str, where: Callable[..., Any] | None = None, alias: str | None = None,
        reads_aliases: bool = False) -> Filter:
    return Filter(event_type, alias, None if where is None else fn(where), reads_aliases)


def scenario(name: str, pattern: Any, *, actions: tuple[Action, ...] | None = None, **kw: Any) -> Scenario:
    return Scenario(name=name, pattern=pattern, actions=actions or (Action("sms", f"t.{name}"),),
                    origin=HERE, **kw)


def run(scenarios: list[Scenario] | Scenario, events: list[Event], reference: Reference | None = None,
        *, finish: bool = True, **kw: Any) -> tuple[list[Send], Engine]:
    """Feed the events in order; returns the sends (in emission order) and the engine."""
    if isinstance(scenarios, Scenario):
        scenarios = [scenarios]
    sends: list[Send] = []
    engine = Engine(Plan(tuple(scenarios)), reference, sink=sends.append, **kw)
    for ev in events:
        engine.on_event(ev)
    if finish:
        engine.finish()
    return sends, engine


def times(sends: list[Send]) -> list[int]:
    return [s.ts for s in sends]


def column_growth(monkeypatch: Any) -> list[int]:
    """The capacities calendar columns (counts and since) grow to from now on, in order: a doubling
    copies every column at once, a stall of a live stream (issue 17)."""
    from kairos.engine import _periods

    grown: list[int] = []
    for cls in (_periods._Buckets, _periods._Since):
        def grow(self: Any, capacity: int, inner: Any = cls.grow) -> None:
            grown.append(capacity)
            inner(self, capacity)

        monkeypatch.setattr(cls, "grow", grow)
    return grown
