"""Where an engine's per-subscriber memory goes: object sizes, holder by holder.

``sys.getsizeof`` summed over everything reachable from each holder the engine keeps per
subscriber: each scenario's state (windows, partial matches, held events, gate records), the
previous values ``crosses_*``/``changed`` keep, the calendar terms' columns and their row index,
a schedule's universe, the collection watches, the deadline queue, the contact policy's memory
and the table of shared texts. An object reachable from two places (an event held by two
scenarios, a number keying several states) is counted once, for the first holder. The
allocator's own overhead (pymalloc's unused blocks, a freed block's page not returned) and the
table of interned numbers are not in it: this is the lower bound, the RSS delta the bench also
reports the upper bound.
"""

from __future__ import annotations

import sys
from array import array
from typing import Any

import msgspec

from kairos.engine.forms import base as forms_base


def state_bytes(engine: Any) -> dict[str, int]:
    """Bytes of state per holder: each scenario's pattern state and gates, then the engine's own."""
    seen: set[int] = {id(None)}
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
    periods = engine.periods
    out["calendar columns"] = _sizes([getattr(col, name) for col in periods.columns.values()
                                      for name in ("slots", "counts", "data") if hasattr(col, name)], seen)
    out["calendar row index"] = _sizes([periods.rows, periods._owners, periods._free], seen)
    universe = engine.universe
    if universe is not None:
        out["universe"] = _sizes([universe._numbers, universe._fresh, universe._texts, universe.known,
                                  universe._rows], seen)
    out["watches"] = _sizes([engine._gc_buckets, engine._gc_keys], seen)
    deadlines = engine._deadlines
    out["deadlines"] = _sizes([deadlines._buckets, deadlines._keys, deadlines._due], seen)
    if engine.policy is not None:
        out["policy"] = _sizes([engine.policy.states, engine.policy.waiting], seen)
    out["shared texts"] = _size(forms_base._shared, seen)
    return out


def _sizes(holders: list[Any], seen: set[int]) -> int:
    """Deep size of each of ``holders`` (the list itself not counted: a temporary's id is reused)."""
    return sum(_size(h, seen) for h in holders)


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
        elif hasattr(o, "__slots__") and not isinstance(o, array) and o.__class__.__module__.endswith("_policy"):
            stack.extend(getattr(o, f) for f in o.__slots__ if hasattr(o, f))  # a policy record
    return total
