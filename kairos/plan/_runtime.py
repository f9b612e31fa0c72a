"""What compiled expressions may call: pure null-safe helpers and the Context protocol.

Generated code is executed in a namespace holding ``NAMESPACE`` (these helpers
under their own names) plus the compiler's constants. Null semantics follow
LANGUAGE.md §3: ``null == null`` is true and equals nothing else, ``!=`` is the
negation of ``==``, ordering with null is false, arithmetic with null is null.
"""

from __future__ import annotations

import re
from typing import Any, Protocol


class _NoPrevious:
    """Sentinel: the subscriber had no previous event of this type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOPREV"


NOPREV: Any = _NoPrevious()


class Context(Protocol):
    """The subscriber-side view the engine hands to every compiled expression."""

    msisdn: str
    now: int

    def tag(self, name: str) -> Any: ...
    def in_list(self, name: str, value: Any) -> bool: ...
    def in_area(self, cell: Any, areas: frozenset[str]) -> bool: ...
    def prev(self, event_type: str, field: str) -> Any: ...
    def hour(self, ts: Any) -> Any: ...
    def weekday(self, ts: Any) -> Any: ...
    def day(self, ts: Any) -> Any: ...
    def date(self, text: Any) -> Any: ...
    def period(self, key: str, n: int) -> Any: ...
    def since(self, key: str) -> Any: ...


def _same_kind(a: Any, b: Any) -> bool:
    # bool is an int subclass in Python; in Kairos true != 1.
    return (a.__class__ is bool) == (b.__class__ is bool)


def eq(a: Any, b: Any) -> bool:
    return a == b and _same_kind(a, b)


def ne(a: Any, b: Any) -> bool:
    return not (a == b and _same_kind(a, b))


def _ordered(a: Any, b: Any) -> bool:
    if a is None or b is None or not _same_kind(a, b):
        return False
    num = (int, float)
    return (isinstance(a, num) and isinstance(b, num)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def lt(a: Any, b: Any) -> bool:
    return _ordered(a, b) and a < b


def le(a: Any, b: Any) -> bool:
    return _ordered(a, b) and a <= b


def gt(a: Any, b: Any) -> bool:
    return _ordered(a, b) and a > b


def ge(a: Any, b: Any) -> bool:
    return _ordered(a, b) and a >= b


def _num(a: Any) -> bool:
    return isinstance(a, (int, float)) and a.__class__ is not bool


def add(a: Any, b: Any) -> Any:
    if _num(a) and _num(b):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    return None


def sub(a: Any, b: Any) -> Any:
    return a - b if _num(a) and _num(b) else None


def mul(a: Any, b: Any) -> Any:
    return a * b if _num(a) and _num(b) else None


def div(a: Any, b: Any) -> Any:
    if _num(a) and _num(b) and b != 0:
        return a / b
    return None


def neg(a: Any) -> Any:
    return -a if _num(a) else None


def isin(a: Any, coll: Any) -> bool:
    """``a in coll``: membership in a list, or a substring of a string."""
    if coll is None:
        return False
    if isinstance(coll, str):
        return isinstance(a, str) and a in coll
    if isinstance(coll, (int, float)):  # a tag holding a number or boolean contains nothing
        return False
    if isinstance(coll, (frozenset, set)):
        try:
            hit = a in coll
        except TypeError:  # an unhashable value is in no set
            return False
        if not hit or isinstance(a, str) or a is None:
            return hit
    return any(eq(a, x) for x in coll)


def isin_set(a: Any, coll: frozenset[Any]) -> bool:
    """Fast membership in a literal list of strings (no bool/number ambiguity)."""
    try:
        return a in coll
    except TypeError:
        return False


def contains(a: Any, b: Any) -> bool:
    """``a contains b``: b is an element of list a, or a substring of string a."""
    return isin(b, a)


def matches(a: Any, rx: re.Pattern[str]) -> bool:
    """``a matches "re"``: the regular expression is found anywhere in a."""
    return isinstance(a, str) and rx.search(a) is not None


def truth(a: Any) -> bool:
    """A condition's value: only ``true`` is true (null and other values are not)."""
    return a is True


def crosses_above(prev: Any, cur: Any, n: Any) -> bool:
    if not ge(cur, n):
        return False
    return prev is NOPREV or prev is None or lt(prev, n)


def crosses_below(prev: Any, cur: Any, n: Any) -> bool:
    if not lt(cur, n):
        return False
    return prev is NOPREV or prev is None or ge(prev, n)


def changed(prev: Any, cur: Any) -> bool:
    return prev is not NOPREV and ne(prev, cur)


NAMESPACE: dict[str, Any] = {
    "NOPREV": NOPREV,
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "add": add,
    "sub": sub,
    "mul": mul,
    "div": div,
    "neg": neg,
    "isin": isin,
    "isin_set": isin_set,
    "contains": contains,
    "matches": matches,
    "truth": truth,
    "crosses_above": crosses_above,
    "crosses_below": crosses_below,
    "changed": changed,
}
