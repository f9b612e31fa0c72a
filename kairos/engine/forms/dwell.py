"""``dwell in area(…) for D``: the dwell form — continuously inside the union of the areas.

Per subscriber inside, ``[enter_ts, fired]``; the snapshot stores the same list.
"""

from __future__ import annotations

from typing import Any

from kairos.engine._conjuncts import Guard
from kairos.engine.forms.base import Handler, Host, PatternRuntime
from kairos.plan import Dwell


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
