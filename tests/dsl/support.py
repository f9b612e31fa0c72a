"""Shared test support: the engine's schema, a compile shortcut, a tiny fake Context."""

from __future__ import annotations

from typing import Any

from kairos import dsl
from kairos import plan
from kairos.engine._events import event_schema
from kairos.plan import NOPREV

SCHEMA = event_schema()
T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai


def compile_one(text: str, name: str = "t.kairos", **kw: Any) -> plan.Plan:
    return dsl.compile_sources([(name, text)], SCHEMA, **kw)


def scenario(text: str) -> plan.Scenario:
    (s,) = compile_one(text).scenarios
    return s


def errors(text: str, name: str = "t.kairos") -> list[str]:
    """The messages of every diagnostic compiling ``text`` reports."""
    try:
        compile_one(text, name)
    except dsl.CheckError as e:
        return [d.message for d in e.diagnostics]
    raise AssertionError("no error reported")


class FakeContext:
    """plan.Context with fixed data; clock functions answer with tagged tuples."""

    def __init__(self, msisdn: str = "8613800000001", tags: dict[str, Any] | None = None,
                 lists: dict[str, set[str]] | None = None, cells: dict[str, set[str]] | None = None,
                 prev: dict[tuple[str, str], Any] | None = None) -> None:
        self.msisdn = msisdn
        self.tags = tags or {}
        self.lists = lists or {}
        self.cells = cells or {}
        self.previous = prev or {}

    def tag(self, name: str) -> Any:
        return self.tags.get(name)

    def in_list(self, name: str, value: Any) -> bool:
        return value in self.lists.get(name, ())

    def in_area(self, cell: Any, areas: frozenset[str]) -> bool:
        return bool(self.cells.get(cell, set()) & areas)

    def prev(self, event_type: str, field: str) -> Any:
        return self.previous.get((event_type, field), NOPREV)

    def hour(self, ts: Any) -> Any:
        return ("hour", ts)

    def weekday(self, ts: Any) -> Any:
        return ("weekday", ts)

    def day(self, ts: Any) -> Any:
        return ("day", ts)
