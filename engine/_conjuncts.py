"""The ``and`` terms of compiled expressions, to check cheap things first.

The compiler emits every condition as strict booleans joined by ``and``/``or``
(``plan`` expressions are pure and never raise), so the terms of a top-level
``and`` may be evaluated in any order and any subset of them is implied by the
whole. The engine uses that once, when it builds a plan: a route calls a
runtime only if the terms of its filters that read nothing but the event pass
(a guard), and an audience reads subscriber tags — a lookup in a table of
millions — only after its cheaper terms passed.
"""

from __future__ import annotations

import ast
from typing import Any, Callable

from plan import NAMESPACE, Expr

#: the names a compiled expression's parameters have
_PARAMS = frozenset({"e", "a", "c"})


class Guard:
    """A Python condition over ``e`` (the event) and ``c`` (the context) for a route.

    ``ns`` holds the names the text uses beyond ``e``, ``c`` and the plan's
    helpers; they are unique to their owner (``prefix``), so guards of many
    runtimes share one route's namespace.
    """

    __slots__ = ("python", "ns")

    def __init__(self, python: str, ns: dict[str, Any] | None = None) -> None:
        self.python = python
        self.ns = ns or {}

    def __or__(self, other: "Guard") -> "Guard":
        return Guard(f"({self.python}) or ({other.python})", {**self.ns, **other.ns})

    def __and__(self, other: "Guard") -> "Guard":
        return Guard(f"({self.python}) and ({other.python})", {**self.ns, **other.ns})


def terms(python: str) -> list[ast.expr]:
    """The terms of ``python``'s top-level ``and`` (the whole expression if it is none)."""
    node = ast.parse(python, mode="eval").body
    return _flatten(node)


def _flatten(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        out: list[ast.expr] = []
        for value in node.values:
            out.extend(_flatten(value))
        return out
    return [node]


def _names(node: ast.expr) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _reads_tags(node: ast.expr) -> bool:
    for n in ast.walk(node):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                and n.func.attr == "tag" and isinstance(n.func.value, ast.Name) and n.func.value.id == "c"):
            return True
    return False


def event_guard(expr: Expr | None, prefix: str) -> Guard | None:
    """The terms of a filter that read only its own event (not earlier steps' aliases).

    None when no term qualifies (or there is no filter): the filter can pass
    for any event. The compiler's constants (``_k0`` …) are renamed with
    ``prefix`` and carried in the guard's namespace.
    """
    if expr is None or not expr.python:
        return None
    own = getattr(expr.fn, "__globals__", {})
    kept: list[ast.expr] = []
    ns: dict[str, Any] = {}
    for term in terms(expr.python):
        names = _names(term)
        if "a" in names or any(isinstance(n, ast.Lambda) for n in ast.walk(term)):
            continue
        mapping: dict[str, str] = {}
        ok = True
        for name in names - _PARAMS:
            if name in NAMESPACE and own.get(name, NAMESPACE[name]) is NAMESPACE[name]:
                continue
            if name not in own:
                ok = False  # a comprehension's own variable or a builtin: keep it out
                break
            mapping[name] = f"{prefix}{name}"
            ns[mapping[name]] = own[name]
        if not ok:
            continue
        kept.append(_Rename(mapping).visit(term) if mapping else term)
    if not kept:
        return None
    text = " and ".join(f"({ast.unparse(t)})" for t in kept)
    return Guard(text, ns)


def cheap_first(expr: Expr) -> Callable[[Any, tuple[Any, ...], Any], Any]:
    """``expr.fn`` with its top-level ``and`` terms reordered: terms that read no tag first.

    The result is the same truth value (the terms are pure booleans); only the
    order of work changes. Returns ``expr.fn`` itself when there is nothing to move.
    """
    if not expr.python:
        return expr.fn
    parts = terms(expr.python)
    if len(parts) < 2:
        return expr.fn
    order = sorted(range(len(parts)), key=lambda i: _reads_tags(parts[i]))
    if order == list(range(len(parts))):
        return expr.fn
    text = " and ".join(f"({ast.unparse(parts[i])})" for i in order)
    ns = dict(getattr(expr.fn, "__globals__", NAMESPACE))
    exec(compile(f"def audience(e, a, c):\n    return {text}\n", f"<kairos audience: {expr.text}>", "exec"), ns)
    return ns["audience"]  # type: ignore[no-any-return]


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(self.mapping.get(node.id, node.id), node.ctx), node)
