"""The engine's implementation of ``plan.Context``: what compiled expressions see.

One instance is reused for every event; the engine points ``msisdn`` at the
subscriber being evaluated, so calling an expression allocates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kairos.engine._localtime import LocalTime
from kairos.engine._reference import Reference
from kairos.plan import NOPREV

_EMPTY: frozenset[str] = frozenset()


class Context:
    """Subscriber-side lookups for compiled expressions (plan.Context)."""

    __slots__ = ("msisdn", "now", "periods", "hour", "weekday", "day",
                 "_tags", "_lists", "_cells", "_prev", "_clock")

    def __init__(
        self, reference: Reference, clock: LocalTime, prev: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        self.msisdn = ""
        #: the evaluation time (LANGUAGE.md §9.2): set per event by the routes only when a loaded
        #: scenario reads it, and at each deadline (and schedule instant) by the engine
        self.now = 0
        #: the calendar and recency terms (``engine._periods``), set by the engine when any is loaded
        self.periods: Any = None
        self._tags = reference.tags
        self._lists = reference.lists
        self._cells = reference.areas_of_cell
        self._prev = prev
        self._clock = clock
        # hour/weekday/day are the clock's own bound methods: one call per use on the hot path
        self.hour: Callable[[Any], Any] = clock.hour
        self.weekday: Callable[[Any], Any] = clock.weekday
        self.day: Callable[[Any], Any] = clock.day

    def tag(self, name: str) -> Any:
        tags = self._tags.get(self.msisdn)
        return None if tags is None else tags.get(name)

    def in_list(self, name: str, value: Any) -> bool:
        members = self._lists.get(name)
        if members is None or not isinstance(value, str):
            return False
        return value in members

    def in_area(self, cell: Any, areas: frozenset[str]) -> bool:
        return not self._cells.get(cell, _EMPTY).isdisjoint(areas)

    def prev(self, event_type: str, field: str) -> Any:
        store = self._prev.get((event_type, field))
        return NOPREV if store is None else store.get(self.msisdn, NOPREV)

    def date(self, text: Any) -> Any:
        return self.periods.clock.date(text)

    def period(self, key: str, n: int) -> Any:
        return self.periods.value(key, n, self.msisdn, self.now)

    def since(self, key: str) -> Any:
        return self.periods.since(key, self.msisdn, self.now)
