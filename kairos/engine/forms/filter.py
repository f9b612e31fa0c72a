"""``F``: the single-event form — every event passing the filter completes, no state.

Its fast path is the route's: the filter is evaluated inline in the fused
per-type route (``engine._routes``) and, the completion being the event itself,
so is the audience (``AUDIENCE_IN_ROUTE``); ``on_match`` runs only for the
events that pass.
"""

from __future__ import annotations

from typing import Any

from kairos.engine.forms.base import Handler, Host, PatternRuntime
from kairos.plan import Filter, Single


class FilterRuntime(PatternRuntime):
    """``F``: every passing event completes; no state."""

    __slots__ = ("_type", "_filter")

    AUDIENCE_IN_ROUTE = True

    def __init__(self, index: int, host: Host, pattern: Single) -> None:
        super().__init__(index, host)
        self._filter = pattern.filter
        self._type = pattern.filter.event_type

    def entry(self) -> tuple[str, Filter, Handler] | None:
        return self._type, self._filter, self.on_match

    def on_match(self, ev: Any) -> None:
        """``ev`` passed the filter: it completes."""
        self.host.complete(self, ev.msisdn, ev.ts, ev, (ev,))
