"""``F1 -> … -> Fk within D``: the sequence form.

Per subscriber, the best partial match ending at each step but the last; a
correlated sequence (later filters read earlier aliases) keeps up to
``MAX_PARTIALS`` of them per step. Snapshot form: the same lists of event tuples.
"""

from __future__ import annotations

from typing import Any

from kairos.engine._conjuncts import Guard
from kairos.engine.forms.base import Handler, Host, PatternRuntime, any_guard, key_for, passes
from kairos.plan import Sequence

#: most partial matches kept per step of a correlated sequence (oldest dropped)
MAX_PARTIALS = 256


class SequenceRuntime(PatternRuntime):
    """``F1 -> … -> Fk within D``.

    State: for each step i < k-1, the best partial match ending at step i (a
    tuple of events). Without correlated filters the best is the one with the
    latest events, and it dominates every other (its first event is latest
    too), so one per step suffices. With filters that read earlier aliases, a
    list of partial matches per step is kept, newest last. Steps are tried
    last to first, so one event never fills two steps of the same match.
    """

    __slots__ = ("_steps", "_wheres", "_within", "_k", "_by_type", "_correlated")

    def __init__(self, index: int, host: Host, pattern: Sequence) -> None:
        super().__init__(index, host)
        self._steps = pattern.steps
        self._wheres = tuple(passes(f) for f in pattern.steps)
        self._within = pattern.within_ms
        self._keyof = key_for(pattern.within_ms)
        self._k = len(pattern.steps)
        self._correlated = any(f.reads_aliases for f in pattern.steps)
        by_type: dict[str, list[int]] = {}
        for i, f in enumerate(pattern.steps):
            by_type.setdefault(f.event_type, []).append(i)
        self._by_type = {t: tuple(sorted(ix, reverse=True)) for t, ix in by_type.items()}

    def state_type(self, event: Any) -> Any:
        if self._correlated:
            return dict[str, list[list[tuple[event, ...]]]]
        return dict[str, list[tuple[event, ...] | None]]

    def handlers(self) -> dict[str, Handler]:
        on = self._on_correlated if self._correlated else self._on_event

        def steps(ix: tuple[int, ...]) -> Handler:
            return lambda ev: on(ev, ix)

        return {t: steps(ix) for t, ix in self._by_type.items()}

    def guard(self, type_name: str) -> Guard | None:
        """Step 0 needs its filter's own-event terms; a later step also needs a partial match."""
        parts: list[Guard] = []
        for i in self._by_type.get(type_name, ()):
            g = self._event_guard(self._steps[i], i)
            if i == 0:
                if g is None:
                    return None
                parts.append(g)
            else:
                parts.append(self._member() if g is None else g & self._member())
        return any_guard(parts)

    def expiry(self, state: list[Any]) -> int | None:
        firsts = [
            (p[0].ts if not self._correlated else max(c[0].ts for c in p))
            for p in state
            if p
        ]
        return max(firsts) + self._within if firsts else -1

    def _on_event(self, ev: Any, steps: tuple[int, ...]) -> None:
        m = ev.msisdn
        state = self.states.get(m)
        t = ev.ts
        ctx = self.host.ctx
        last = self._k - 1
        for i in steps:
            where = self._wheres[i]
            if i == 0:
                if where is None or where(ev, (ev,), ctx):
                    if state is None:
                        m = self._keyof(m)
                        state = self.states[m] = [None] * last
                        self.host.watch(t + self._within, self, m)
                    state[0] = (ev,)
                continue
            if state is None:
                continue
            prev = state[i - 1]
            if prev is None or t - prev[0].ts > self._within:
                continue
            chain = prev + (ev,)
            if where is not None and not where(ev, chain, ctx):
                continue
            if i == last:
                del self.states[m]  # consumed: the next completion needs new events
                self.host.complete(self, m, t, ev, chain)
                return
            state[i] = chain

    def _on_correlated(self, ev: Any, steps: tuple[int, ...]) -> None:
        m = ev.msisdn
        state = self.states.get(m)
        t = ev.ts
        ctx = self.host.ctx
        last = self._k - 1
        within = self._within
        for i in steps:
            where = self._wheres[i]
            if i == 0:
                if where is None or where(ev, (ev,), ctx):
                    if state is None:
                        m = self._keyof(m)
                        state = self.states[m] = [[] for _ in range(last)]
                        self.host.watch(t + within, self, m)
                    _append(state[0], (ev,))
                continue
            if state is None:
                continue
            live = [c for c in state[i - 1] if t - c[0].ts <= within]
            state[i - 1] = live
            grown = [c + (ev,) for c in live]
            if where is not None:
                grown = [c for c in grown if where(ev, c, ctx)]
            if not grown:
                continue
            if i == last:
                del self.states[m]
                self.host.complete(self, m, t, ev, grown[-1])  # latest events bind
                return
            for c in grown:
                _append(state[i], c)



def _append(partials: list[tuple[Any, ...]], chain: tuple[Any, ...]) -> None:
    partials.append(chain)
    if len(partials) > MAX_PARTIALS:
        del partials[0]


