"""Code generation: a checked expression becomes a Python function ``fn(e, a, c)``.

The engine calls these per event, so each expression is compiled once to a
single ``return`` with native operators wherever the types prove them
equivalent to the null-safe helpers of ``plan._runtime``. Code positions are
mapped onto the expression in the scenario file, so a traceback shows the
scenario's own line with a caret under the expression, and its lines are
mapped to the expression's place (``plan.places``).
"""

from __future__ import annotations

import ast as pyast
import math
import re
from typing import Any

from kairos import plan
from kairos.dsl import _ir as ir
from kairos.dsl._diagnostics import Source
from kairos.dsl._tokens import Token

_ORDERING = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_ARITHMETIC = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


def compile_expr(
    node: ir.Ir, *, condition: bool, name: str, source: Source, first: Token, last: Token
) -> plan.Expr:
    """Compile ``node``, written from ``first`` to ``last`` in ``source``, to a ``plan.Expr``.

    A condition is made to return exactly True or False (only ``true`` is
    true). ``name`` becomes the function's name, shown in tracebacks.
    """
    emitter = _Emitter()
    python = emitter.condition(node) if condition else emitter.value(node)
    tree = pyast.parse(f"def {name}(e, a, c):\n    return {python}\n")
    _place(tree, source, first, last)
    namespace = dict(plan.NAMESPACE)
    namespace.update(emitter.constants)
    origin = plan.Origin(source.name, first.line, first.col)
    lines = {line: origin for line in range(first.line, last.line + 1)}  # where its code runs: its own lines
    return plan.Expr(
        text=source.text[first.start : last.end],
        python=python,
        origin=origin,
        fn=plan.define(name, tree, namespace, source.name, lines),
    )


def _place(tree: pyast.Module, source: Source, first: Token, last: Token) -> None:
    """Give every node of the generated code the position of the Kairos expression."""
    start = len(source.line(first.line)[: first.col - 1].encode())
    end = len(source.line(last.line)[: last.col - 1 + len(last.text)].encode())
    for node in pyast.walk(tree):
        if "lineno" in node._attributes:
            node.lineno, node.end_lineno = first.line, last.line  # type: ignore[attr-defined]
            node.col_offset, node.end_col_offset = start, end  # type: ignore[attr-defined]


def _native_eq(a: ir.Type, b: ir.Type) -> bool:
    """Python's ``==`` equals ``eq`` unless a boolean may meet a number (in Kairos true != 1)."""
    return not ((_may_be(a, "bool") and _may_be(b, "num")) or (_may_be(a, "num") and _may_be(b, "bool")))


def _may_be(t: ir.Type, kind: str) -> bool:
    return t.kind in (kind, "any")


def _spellable(value: Any) -> bool:
    """``repr(value)`` is Python text for ``value``: not a float beyond the finite ones."""
    return not isinstance(value, float) or math.isfinite(value)


class _Emitter:
    """Python source for IR nodes; constants that are not literals go to ``constants``."""

    __slots__ = ("constants",)

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}

    def constant(self, value: Any) -> str:
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def condition(self, node: ir.Ir) -> str:
        """A strict boolean: ``x is True`` unless ``x`` is certainly a boolean already."""
        code = self.value(node)
        return code if node.type.certain("bool") else f"({code} is True)"

    def literal(self, value: Any) -> str:
        """``value`` as Python text: its ``repr`` when that reads back as the value, else a constant
        (a literal too large for a float is ``inf``, which Python source cannot spell)."""
        return repr(value) if _spellable(value) else self.constant(value)

    def value(self, node: ir.Ir) -> str:
        match node:
            case ir.Const(value=re.Pattern() as rx):
                return self.constant(rx)
            case ir.Const(value=value):
                return self.literal(value)
            case ir.ListOf(items=items):
                return "[" + ", ".join(self.value(i) for i in items) + "]"
            case ir.Field(slot=None, name=name):
                return f"e.{name}"
            case ir.Field(slot=slot, name=name):
                return f"a[{slot}].{name}"
            case ir.Subscriber():
                return "c.msisdn"
            case ir.Tag(name=name):
                return f"c.tag({name!r})"
            case ir.InArea(areas=areas):
                return f"c.in_area(e.cell, {self.constant(areas)})"
            case ir.Previous(function="changed", event_type=t, field=f):
                return f"changed(c.prev({t!r}, {f!r}), e.{f})"
            case ir.Previous(function=fn, event_type=t, field=f, threshold=n):
                return f"{fn}(c.prev({t!r}, {f!r}), e.{f}, {'None' if n is None else self.value(n)})"
            case ir.Now():
                return "c.now"
            case ir.DateOf(arg=arg):
                return f"c.date({self.value(arg)})"
            case ir.Period(key=key, n=n):
                return f"c.period({self.constant(key)}, {n})"
            case ir.Since(key=key):
                return f"c.since({self.constant(key)})"
            case ir.Clock(function=fn, arg=arg):
                return f"c.{fn}({self.value(arg)})"
            case ir.Not(operand=operand):
                return f"(not {self.condition(operand)})"
            case ir.Neg(operand=operand, type=t):
                code = self.value(operand)
                return f"(-{code})" if not t.nullable else f"neg({code})"
            case ir.Op():
                return self._op(node)
        raise AssertionError(node)

    def _op(self, node: ir.Op) -> str:
        op, left, right = node.op, node.left, node.right
        if op in ("and", "or"):
            return f"({self.condition(left)} {op} {self.condition(right)})"
        if op in ("in", "not in"):
            test = self._in(left, right)
            return f"(not {test})" if op == "not in" else test
        lt, rt = left.type, right.type
        a, b = self.value(left), self.value(right)
        if op in ("==", "!="):
            if _native_eq(lt, rt):
                return f"({a} {op} {b})"
            return f"{'eq' if op == '==' else 'ne'}({a}, {b})"
        if op in _ORDERING:
            tests = self._not_null(left, right, ("num", "str"))
            if tests is None:
                return f"{_ORDERING[op]}({a}, {b})"
            return "(" + " and ".join([*tests, f"{a} {op} {b}"]) + ")"
        if op == "contains":
            return f"({b} in {a})" if lt.certain("str") and rt.certain("str") else f"contains({a}, {b})"
        if op == "matches":
            return f"({b}.search({a}) is not None)" if lt.certain("str") else f"matches({a}, {b})"
        tests = self._not_null(left, right, ("num", "str") if op == "+" else ("num",))
        if tests is None or (op == "/" and not (isinstance(right, ir.Const) and right.value != 0)):
            return f"{_ARITHMETIC[op]}({a}, {b})"
        return f"({a} {op} {b} if {' and '.join(tests)} else None)" if tests else f"({a} {op} {b})"

    def _not_null(self, left: ir.Ir, right: ir.Ir, kinds: tuple[str, ...]) -> list[str] | None:
        """The ``x is not None`` tests that make a native operator equal its helper, or None.

        Both sides must be of one kind in ``kinds``; a side that may be null must
        be an event field (decoded events hold exactly their declared kind or
        None, and reading a field twice is free of effects).
        """
        if left.type.kind != right.type.kind or left.type.kind not in kinds:
            return None
        tests: dict[str, None] = {}  # ordered, without repeats
        for side in (left, right):
            if side.type.nullable:
                if not isinstance(side, ir.Field):
                    return None
                tests[f"{self.value(side)} is not None"] = None
        return list(tests)

    def _in(self, left: ir.Ir, right: ir.Ir) -> str:
        a = self.value(left)
        if isinstance(right, ir.InList):
            return f"c.in_list({right.name!r}, {a})"
        if isinstance(right, ir.ListOf) and all(isinstance(i, ir.Const) for i in right.items):
            values = [i.value for i in right.items]  # type: ignore[union-attr]
            if not all(map(_spellable, values)):
                return f"isin({a}, {self.constant(tuple(values))})"
            for kind, types in (("str", (str,)), ("num", (int, float))):
                if values and all(type(v) in types for v in values):
                    if left.type.kind == kind:
                        # CPython folds a set display after `in` into a frozenset constant,
                        # so this stays a plain expression the engine may paste inline.
                        return f"({a} in {{{', '.join(map(repr, sorted(set(values))))}}})"
                    helper = "isin_set" if kind == "str" else "isin"
                    return f"{helper}({a}, {self.constant(frozenset(values))})"
            return f"isin({a}, {tuple(values)!r})"
        b = self.value(right)
        return f"({a} in {b})" if left.type.certain("str") and right.type.certain("str") else f"isin({a}, {b})"
