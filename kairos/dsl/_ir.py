"""Checked expressions: names resolved, every node typed, ready for code generation.

The checker builds these from the syntax tree; ``_codegen`` turns them into
Python. A node's ``Type`` says what it may hold and whether it may be null,
which is what lets the code generator use native operators safely.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Kind = Literal["str", "num", "bool", "dict", "list", "any", "null"]

_NAMES = {
    "str": "text", "num": "a number", "bool": "a boolean", "dict": "an object",
    "list": "a list", "any": "any value", "null": "null",
}


class Type(msgspec.Struct, frozen=True):
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


class Const(msgspec.Struct, frozen=True):
    """A literal: number, string, boolean, null, or a compiled regular expression."""

    value: Any
    type: Type


class ListOf(msgspec.Struct, frozen=True):
    """A list literal."""

    items: tuple[Ir, ...]
    type: Type = LIST


class Field(msgspec.Struct, frozen=True):
    """A field of a pattern event: ``slot`` None is ``e``, an int j is ``a[j]``."""

    slot: int | None
    name: str
    type: Type
    choices: tuple[str, ...] = ()


class Subscriber(msgspec.Struct, frozen=True):
    """``msisdn``."""

    type: Type = STR


class Tag(msgspec.Struct, frozen=True):
    """``tags.NAME``."""

    name: str
    type: Type = ANY


class InList(msgspec.Struct, frozen=True):
    """``x in list("NAME")``: a named reference list, only on the right of ``in``."""

    name: str
    type: Type = LIST


class InArea(msgspec.Struct, frozen=True):
    """``in_area("A", ...)`` on the current location event's cell."""

    areas: frozenset[str]
    type: Type = BOOL


class Previous(msgspec.Struct, frozen=True):
    """``crosses_above|crosses_below(FIELD, N)`` or ``changed(FIELD)`` on the current event."""

    function: str
    event_type: str
    field: str
    threshold: Ir | None  # any expression (LANGUAGE.md §9.2); None for changed
    type: Type = BOOL


class Clock(msgspec.Struct, frozen=True):
    """``hour(x)``, ``weekday(x)``, ``day(x)``: the engine's local time."""

    function: str
    arg: Ir
    type: Type


class Op(msgspec.Struct, frozen=True):
    """A binary operator: comparison, arithmetic, membership, ``and``/``or``."""

    op: str
    left: Ir
    right: Ir
    type: Type


class Not(msgspec.Struct, frozen=True):
    """``not x``."""

    operand: Ir
    type: Type = BOOL


class Neg(msgspec.Struct, frozen=True):
    """``-x``."""

    operand: Ir
    type: Type


class Now(msgspec.Struct, frozen=True):
    """``now``: the evaluation time (the event's ts, or the instant of a schedule or deadline)."""

    type: Type = NUM


class DateOf(msgspec.Struct, frozen=True):
    """``date(x)``: local midnight of the date ``x`` as epoch ms; null for null or no date."""

    arg: Ir
    type: Type = Type("num", True)


class Period(msgspec.Struct, frozen=True):
    """``count|sum|top(F[, EXPR]) in PERIOD(n)``: the value of term ``key`` ``n`` periods back."""

    key: str
    n: int
    type: Type


class Since(msgspec.Struct, frozen=True):
    """``since(F)``: now minus the latest ts of term ``key``; null if none seen."""

    key: str
    type: Type = Type("num", True)


Ir = (Const | ListOf | Field | Subscriber | Tag | InList | InArea | Previous | Clock | Op | Not | Neg | Now | DateOf
      | Period | Since)

#: what a node that failed to check becomes, so checking goes on without cascading errors
POISON = Const(None, ANY)
