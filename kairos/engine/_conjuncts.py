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
from typing import Any
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet

from kairos.plan import NAMESPACE, Expr, Origin, at, define, filename

#: a guard as physical lines, each with the clause it was made from (None: made from none)
Pieces = tuple[tuple[str, Origin | None], ...]

#: the names a compiled expression's parameters have
_PARAMS = frozenset({"e", "a", "c"})


class Guard:
    """A Python condition over ``e`` (the event) and ``c`` (the context) for a route.

    ``ns`` holds the names the text uses beyond ``e``, ``c`` and the plan's
    helpers; they are unique to their owner (``prefix``), so guards of many
    runtimes share one route's namespace. ``origin``: the clause it was made
    from. ``pieces``: ``python`` cut into lines where its parts come from
    different clauses (a route writes one line per piece, so a traceback's line
    names the clause): ``python`` but for line breaks.
    """

    __slots__ = ("python", "ns", "pieces")

    def __init__(self, python: str, ns: dict[str, Any] | None = None, origin: Origin | None = None,
                 pieces: Pieces | None = None) -> None:
        self.python = python
        self.ns = ns or {}
        self.pieces: Pieces = ((python, origin),) if pieces is None else pieces

    def __or__(self, other: Guard) -> Guard:
        return Guard(f"({self.python}) or ({other.python})", {**self.ns, **other.ns},
                     pieces=_join(self.pieces, "or", other.pieces))

    def __and__(self, other: Guard) -> Guard:
        return Guard(f"({self.python}) and ({other.python})", {**self.ns, **other.ns},
                     pieces=_join(self.pieces, "and", other.pieces))


def _join(left: Pieces, op: str, right: Pieces) -> Pieces:
    """``(left) op (right)`` as pieces: on one line where the clauses allow (the same, or one side none)."""
    a, b = _parenthesized(left), _parenthesized(right)
    (last, was), (first, comes) = a[-1], b[0]
    if was is None or comes is None or was == comes:
        return (*a[:-1], (f"{last} {op} {first}", was if was is not None else comes), *b[1:])
    return (*a, (f"{op} {first}", comes), *b[1:])


def _parenthesized(pieces: Pieces) -> Pieces:
    if len(pieces) == 1:
        ((text, origin),) = pieces
        return ((f"({text})", origin),)
    (first, was), *middle, (last, comes) = pieces
    return ((f"({first}", was), *middle, (f"{last})", comes))


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


def _portable(term: ast.expr, own: dict[str, Any], prefix: str, ns: dict[str, Any]) -> ast.expr | None:
    """``term`` with the compiler's constants renamed by ``prefix`` (values into ``ns``),
    or None if it uses a name that is neither a parameter, a helper nor a constant."""
    mapping: dict[str, str] = {}
    for name in _names(term) - _PARAMS:
        if name in ns or (name in NAMESPACE and own.get(name, NAMESPACE[name]) is NAMESPACE[name]):
            continue
        if name not in own:
            return None  # a comprehension's own variable or a builtin: keep it out
        mapping[name] = f"{prefix}{name}"
        ns[mapping[name]] = own[name]
    return _Rename(mapping).visit(term) if mapping else term


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
        if "a" in _names(term) or any(isinstance(n, ast.Lambda) for n in ast.walk(term)):
            continue
        portable = _portable(term, own, prefix, ns)
        if portable is not None:
            kept.append(portable)
    if not kept:
        return None
    return Guard(" and ".join(f"({ast.unparse(t)})" for t in kept), ns, expr.origin)


def audience_guard(expr: Expr, prefix: str, lists: Mapping[str, AbstractSet[str]]) -> Guard | None:
    """The whole audience as one condition for a route: its terms reordered so the
    ones that read no tag come first, and ``msisdn in list("x")`` as a plain set
    test on the loaded list. None if it reads the pattern's events (``a``) or a
    name it cannot carry."""
    if not expr.python:
        return None
    own = getattr(expr.fn, "__globals__", {})
    ns: dict[str, Any] = {}
    parts: list[ast.expr] = []
    for term in terms(expr.python):
        if "a" in _names(term):
            return None
        portable = _portable(_Lists(lists, prefix, ns).visit(term), own, prefix, ns)
        if portable is None:
            return None
        parts.append(portable)
    parts.sort(key=_reads_tags)  # stable: the written order otherwise
    return Guard(" and ".join(f"({ast.unparse(t)})" for t in parts), ns, expr.origin)


def cheap_first(expr: Expr, lists: Mapping[str, AbstractSet[str]] | None = None,
                scenario: str = "") -> Callable[[Any, tuple[Any, ...], Any], Any]:
    """``expr.fn`` with its top-level ``and`` terms reordered, terms that read no tag first,
    and list tests on the subscriber's number made plain set tests.

    The result is the same truth value (the terms are pure booleans); only the
    order of work changes. Returns ``expr.fn`` itself when nothing applies.
    ``scenario`` names the generated function's file (``<kairos scenario NAME audience>``).
    """
    guard = audience_guard(expr, "_q", lists or {})  # None when it reads the pattern's events
    if guard is None:
        return expr.fn
    ns = dict(NAMESPACE, **guard.ns)
    source = f"def audience(e, a, c):\n    return {guard.python}  # audience at {at(expr.origin)}\n"
    return define("audience", source, ns, _file(scenario, "audience"), {2: expr.origin})


def _file(scenario: str, clause: str) -> str:
    return filename("scenario", scenario, clause) if scenario else filename(clause)


class _Lists(ast.NodeTransformer):
    """Reference lookups made plain set tests on the loaded data:
    ``c.in_list('x', c.msisdn)`` → ``(c.msisdn in PREFIXlist_N)`` (the number is
    always a string, so the set answers exactly what ``Context.in_list`` does),
    and ``c.in_area(e.cell, K)`` with the compiler's constant K →
    ``(e.cell in PREFIXcells_N)``, the cells of those areas."""

    def __init__(self, lists: Mapping[str, Any], prefix: str, ns: dict[str, Any],
                 cells: dict[str, frozenset[str]] | None = None, own: dict[str, Any] | None = None) -> None:
        self.lists = lists
        self.prefix = prefix
        self.ns = ns
        self.cells = cells
        self.own = own or {}

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        f = node.func
        if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "c"
                and len(node.args) == 2 and not node.keywords):
            return node
        first, second = node.args
        if (f.attr == "in_list" and isinstance(first, ast.Constant) and isinstance(first.value, str)
                and first.value in self.lists
                and ast.dump(second) == _MSISDN):
            name = f"{self.prefix}list_{len(self.ns)}"
            self.ns[name] = self.lists[first.value]
            return ast.copy_location(ast.Compare(second, [ast.In()], [ast.Name(name, ast.Load())]), node)
        if (f.attr == "in_area" and self.cells is not None and ast.dump(first) == _CELL
                and isinstance(second, ast.Name) and isinstance(self.own.get(second.id), frozenset)):
            areas = self.own[second.id]
            name = f"{self.prefix}cells_{len(self.ns)}"
            self.ns[name] = frozenset(c for c, of in self.cells.items() if not of.isdisjoint(areas))
            return ast.copy_location(ast.Compare(first, [ast.In()], [ast.Name(name, ast.Load())]), node)
        return node


_CELL = ast.dump(ast.Attribute(ast.Name("e", ast.Load()), "cell", ast.Load()))


def bound_filter(expr: Expr, prefix: str, lists: dict[str, Any], cells: dict[str, frozenset[str]]) -> Guard | None:
    """A first step's filter as route text, its reference lookups bound to the loaded
    data (see ``_Lists``) and its constants carried; None if it reads aliases or
    names the route cannot hold."""
    if not expr.python:
        return None
    tree = ast.parse(expr.python, mode="eval").body
    if "a" in _names(tree):
        return None
    own = getattr(expr.fn, "__globals__", {})
    ns: dict[str, Any] = {}
    portable = _portable(_Lists(lists, prefix, ns, cells, own).visit(tree), own, prefix, ns)
    return None if portable is None else Guard(ast.unparse(portable), ns, expr.origin)


_MSISDN = ast.dump(ast.Attribute(ast.Name("c", ast.Load()), "msisdn", ast.Load()))


def answer_test(expr: Expr, scenario: str = "") -> Callable[[Any, Any, Any], Any] | None:
    """An absence's second filter as ``fn(e, first, c)``: ``a[0]`` (the waiting event)
    and ``a[1]`` (the event itself) read directly, with no tuple built per event.
    None when the text reads ``a`` in another way. ``scenario`` names its file."""
    tree = _answer_tree(expr)
    if tree is None:
        return None
    ns = dict(getattr(expr.fn, "__globals__", NAMESPACE))
    source = f"def answers(e, _first, c):\n    return {ast.unparse(tree)}  # answer at {at(expr.origin)}\n"
    return define("answers", source, ns, _file(scenario, "answer"), {2: expr.origin})


def _answer_tree(expr: Expr) -> ast.expr | None:
    """An absence's second filter with ``a[0]`` as ``_first`` and ``a[1]`` as ``e``; None when it has no
    text or reads ``a`` in another way."""
    if not expr.python:
        return None
    tree = _Slots().visit(ast.parse(expr.python, mode="eval").body)
    return None if "a" in _names(tree) else tree


def packed_answer_guard(expr: Expr | None, prefix: str, states: dict[str, Any], views: list[Any],
                        mask: int) -> Guard | None:
    """For an absence whose waits are packed ints (``states[m]``, its kept fields ``views[wait & mask]``):
    a route test false only when the subscriber has such a wait and this event does not answer it (its
    handler would do nothing), so no call is made then; None when ``expr`` cannot be route text."""
    if expr is None:
        return None
    tree = _answer_tree(expr)
    if tree is None or any(isinstance(n, (ast.Lambda, ast.comprehension)) for n in ast.walk(tree)):
        return None
    wait, kept, held = f"{prefix}wait", f"{prefix}views", f"{prefix}states"
    view = ast.Subscript(ast.Name(kept, ast.Load()),
                         ast.BinOp(ast.Name(wait, ast.Load()), ast.BitAnd(), ast.Constant(mask)), ast.Load())
    tree = _Rename({}, {"_first": view}).visit(tree)
    ns: dict[str, Any] = {kept: views, held: states, wait: None}
    portable = _portable(tree, getattr(expr.fn, "__globals__", {}), prefix, ns)
    del ns[wait]  # a local of the route: the walrus below assigns it
    if portable is None:
        return None
    python = f"({wait} := {held}.get(e.msisdn)).__class__ is not int or ({ast.unparse(portable)})"
    return Guard(python, ns, expr.origin)


class _Slots(ast.NodeTransformer):
    """``a[0]`` → ``_first``, ``a[1]`` → ``e``."""

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if (isinstance(node.value, ast.Name) and node.value.id == "a"
                and isinstance(node.slice, ast.Constant) and node.slice.value in (0, 1)):
            return ast.copy_location(ast.Name("_first" if node.slice.value == 0 else "e", ast.Load()), node)
        return node


class _Rename(ast.NodeTransformer):
    """Names renamed by ``mapping``, or replaced by the expressions of ``nodes``."""

    def __init__(self, mapping: dict[str, str], nodes: Mapping[str, ast.expr] | None = None) -> None:
        self.mapping = mapping
        self.nodes = nodes or {}

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.nodes:
            return ast.copy_location(self.nodes[node.id], node)
        return ast.copy_location(ast.Name(self.mapping.get(node.id, node.id), node.ctx), node)


def slot_fields(exprs: list[Expr | None], slot: int) -> frozenset[str] | None:
    """The fields of ``a[slot]`` the expressions read; None when one reads it some other way
    (the whole event, an unanalysable expression): what a state must keep of that event."""
    fields: set[str] = set()
    for expr in exprs:
        if expr is None:
            continue
        if not expr.python:
            return None  # built by hand: nothing to read its accesses from
        tree = ast.parse(expr.python, mode="eval")
        read = _SlotReads(slot)
        read.visit(tree)
        if read.other:
            return None
        fields |= read.fields
    return frozenset(fields)


class _SlotReads(ast.NodeVisitor):
    """Collects ``a[slot].NAME``; ``other`` when ``a`` is used otherwise (except ``a[j].NAME``, j != slot)."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.fields: set[str] = set()
        self.other = False

    def visit_Attribute(self, node: ast.Attribute) -> None:
        v = node.value
        if (isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name) and v.value.id == "a"
                and isinstance(v.slice, ast.Constant) and type(v.slice.value) is int):
            if v.slice.value == self.slot:
                self.fields.add(node.attr)
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "a":
            self.other = True
