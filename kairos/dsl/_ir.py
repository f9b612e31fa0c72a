"""Checked expressions: names resolved, every node typed, ready for code generation.

The checker builds these from the syntax tree; ``_codegen`` turns them into
Python. A node's ``Type`` says what it may hold and whether it may be null,
which is what lets the code generator use native operators safely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["str", "num", "bool", "dict", "list", "any", "null"]

_NAMES = {
    "str": "text", "num": "a number", "bool": "a boolean", "dict": "an object",
    "list": "a list", "any": "any value", "null": "null",
}


@dataclass(frozen=True, slots=True)
class Type:
    """What a value may be: its kind, and whether it may be null."""

    kind: Kind
    nullable: bool = True

    def describe(self) -> str:
        """The kind in words, for messages: ``text``, ``a number``..."""
        return _NAMES[self.kind]

    @property
    def known(self) -> bool:
        """The kind is fixed when the scenario is checked (not ``any`` or ``null``)."""
        return self.kind not in ("any", "null")

    def certain(self, *kinds: str) -> bool:
        """Never null and of one of ``kinds``: native Python operators are safe on it."""
        return not self.nullable and self.kind in kinds


ANY = Type("any")
NULL = Type("null")
BOOL = Type("bool", False)
NUM = Type("num", False)
STR = Type("str", False)
LIST = Type("list", False)


@dataclass(frozen=True, slots=True)
class Const:
    """A literal: number, string, boolean, null, or a compiled regular expression."""

    value: Any
    type: Type


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list literal."""

    items: tuple[Ir, ...]
    type: Type = LIST


@dataclass(frozen=True, slots=True)
class Field:
    """A field of a pattern event: ``slot`` None is ``e``, an int j is ``a[j]``."""

    slot: int | None
    name: str
    type: Type
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscriber:
    """``msisdn``."""

    type: Type = STR


@dataclass(frozen=True, slots=True)
class Tag:
    """``tags.NAME``."""

    name: str
    type: Type = ANY


@dataclass(frozen=True, slots=True)
class InList:
    """``x in list("NAME")``: a named reference list, only on the right of ``in``."""

    name: str
    type: Type = LIST


@dataclass(frozen=True, slots=True)
class InArea:
    """``in_area("A", ...)`` on the current location event's cell."""

    areas: frozenset[str]
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Previous:
    """``crosses_above|crosses_below(FIELD, N)`` or ``changed(FIELD)`` on the current event."""

    function: str
    event_type: str
    field: str
    threshold: Ir | None  # any expression (LANGUAGE.md §9.2); None for changed
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Clock:
    """``hour(x)``, ``weekday(x)``, ``day(x)``: the engine's local time."""

    function: str
    arg: Ir
    type: Type


@dataclass(frozen=True, slots=True)
class Op:
    """A binary operator: comparison, arithmetic, membership, ``and``/``or``."""

    op: str
    left: Ir
    right: Ir
    type: Type


@dataclass(frozen=True, slots=True)
class Not:
    """``not x``."""

    operand: Ir
    type: Type = BOOL


@dataclass(frozen=True, slots=True)
class Neg:
    """``-x``."""

    operand: Ir
    type: Type


@dataclass(frozen=True, slots=True)
class Now:
    """``now``: the evaluation time (the event's ts, or the instant of a schedule or deadline)."""

    type: Type = NUM


@dataclass(frozen=True, slots=True)
class DateOf:
    """``date(x)``: local midnight of the date ``x`` as epoch ms; null for null or no date."""

    arg: Ir
    type: Type = Type("num", True)


@dataclass(frozen=True, slots=True)
class Period:
    """``count|sum|top(F[, EXPR]) in PERIOD(n)``: the value of term ``key`` ``n`` periods back."""

    key: str
    n: int
    type: Type


@dataclass(frozen=True, slots=True)
class Since:
    """``since(F)``: now minus the latest ts of term ``key``; null if none seen."""

    key: str
    type: Type = Type("num", True)


Ir = (Const | ListOf | Field | Subscriber | Tag | InList | InArea | Previous | Clock | Op | Not | Neg | Now | DateOf
      | Period | Since)

#: what a node that failed to check becomes, so checking goes on without cascading errors
POISON = Const(None, ANY)
