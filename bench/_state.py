"""Where an engine's per-subscriber memory goes: object sizes, scenario by scenario.

``sys.getsizeof`` summed over everything reachable from each scenario's state
(windows, partial matches, held events, gate records) and from the previous
values ``crosses_*``/``changed`` keep. An object reachable from two places
(an event held by two scenarios) is counted once, for the first. This is a
lower bound of what the state costs — the allocator's own overhead is not in
it — and the RSS delta the bench also reports is the upper bound.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec


def state_bytes(engine: Any) -> dict[str, int]:
    """Bytes of state per holder: each scenario's pattern state and gates, and ``previous values``."""
    seen: set[int] = set()
    out: dict[str, int] = {}
    for scn, rt, gates in zip(engine.scenarios, engine.runtimes, engine._gates, strict=True):
        n = _size(rt.states, seen)
        sums = getattr(rt, "_sums", None)
        if sums:
            n += _size(sums, seen)
        if gates is not None:
            n += _size(gates.last, seen) + _size(gates.values, seen)
        out[scn.name] = n
    out["previous values"] = sum(_size(store, seen) for store in engine._prev.values())
    return out


def _size(obj: Any, seen: set[int]) -> int:
    """Deep size of ``obj`` in bytes, skipping objects already counted."""
    total = 0
    stack = [obj]
    getsizeof = sys.getsizeof
    while stack:
        o = stack.pop()
        i = id(o)
        if i in seen:
            continue
        seen.add(i)
        total += getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif isinstance(o, msgspec.Struct):
            stack.extend(getattr(o, f) for f in o.__struct_fields__)
    return total
