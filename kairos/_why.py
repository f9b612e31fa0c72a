"""Which term of a refused condition was false, and what it read (``kairos explain``).

An audience, or a schedule's ``where``, is a conjunction. When the engine
refuses a completion by one, ``explain`` evaluates its top-level ``and`` terms
again for the subscriber at that moment and names the first false one with the
tags, list memberships, event fields and calendar terms it read:
``tags.plan_type == "postpaid" was false (tags.plan_type = "prepaid")``.
Only ``explain`` calls this, after a refusal: the engine's own path is untouched.

The Kairos text of each term is cut from the condition's source at its
top-level ``and``s; the compiled Python (``Expr.python``) nests one binary
``and`` per Kairos ``and`` in the same order, so the two are walked together.
Where they do not line up, the whole condition is the one term.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Sequence

import msgspec

from kairos.engine import duration_text
from kairos.plan import Expr, Term

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_DOTTED = re.compile(r"\b([A-Za-z_][A-Za-z_0-9]*)\.([A-Za-z_][A-Za-z_0-9]*)\b")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')


def why_false(expr: Expr, e: Any, a: tuple[Any, ...], ctx: Any, terms: Sequence[Term] = ()) -> str | None:
    """``TERM was false (NAME = VALUE, …)`` for the first false top-level term of ``expr`` evaluated with
    the event ``e``, the pattern's events ``a`` and the engine's context ``ctx`` (set to the subscriber);
    None when no term is false (or it cannot be evaluated again)."""
    ns = getattr(expr.fn, "__globals__", None)
    if ns is None or not expr.python:
        return None
    env = {"e": e, "a": a, "c": ctx}
    for text, node in conjuncts(expr):
        try:
            value = _eval(node, ns, env)
        except Exception:  # a plan expression never raises; should it, say nothing rather than fail
            return None
        if value is not True:
            reads = _Reads(text, ns, env, terms).of(node)
            return f"{text} was false" + (f" ({', '.join(reads)})" if reads else "")
    return None


def conjuncts(expr: Expr) -> list[tuple[str, ast.expr]]:
    """The top-level ``and`` terms of ``expr``: each one's Kairos text and compiled Python."""
    whole = ast.parse(expr.python, mode="eval").body
    text = _clean(expr.text)
    return _match(text, whole) or [(text, whole)]


def term_args(term: Term) -> str:
    """``dpi where app == "x", bytes``: what a calendar or recency term is over, as written."""
    flt = term.filter.event_type + ("" if term.filter.where is None else f" where {term.filter.where.text}")
    return flt if term.value is None else f"{flt}, {term.value.text}"


def _match(text: str, node: ast.expr) -> list[tuple[str, ast.expr]] | None:
    """``text``'s terms paired with ``node``'s: a Kairos ``a and b and c`` is Python ``((A and B) and C)``."""
    pieces = _split(text)
    if pieces is None:
        return None
    pairs: list[tuple[str, ast.expr]] = []
    for piece in reversed(pieces[1:]):
        if not (isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) and len(node.values) == 2):
            return None
        node, right = node.values
        pairs.append((piece, right))
    pairs.append((pieces[0], node))
    out: list[tuple[str, ast.expr]] = []
    for piece, sub in reversed(pairs):
        inner = _unwrap(piece)
        out.extend((inner is not None and _match(inner, sub)) or [(piece, sub)])
    return out


def _split(text: str) -> list[str] | None:
    """``text`` cut at its ``and``s outside brackets; None when an ``or`` outside brackets binds them."""
    cuts: list[tuple[int, int]] = []
    depth = i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _STRING.match(text, i).end()  # type: ignore[union-attr]  # always matches at a quote
            continue
        word = _WORD.match(text, i)
        if word is not None and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_.")):
            if depth == 0 and word.group() == "or":
                return None
            if depth == 0 and word.group() == "and":
                cuts.append(word.span())
            i = word.end()
            continue
        depth += (ch in "([{") - (ch in ")]}")
        i += 1
    starts = [0] + [end for _, end in cuts]
    ends = [start for start, _ in cuts] + [len(text)]
    return [text[s:t].strip() for s, t in zip(starts, ends)]


def _unwrap(piece: str) -> str | None:
    """What is inside the parentheses around all of ``piece``; None when they are not around all of it."""
    if not (piece.startswith("(") and piece.endswith(")")):
        return None
    depth = i = 0
    while i < len(piece):
        ch = piece[i]
        if ch == '"':
            i = _STRING.match(piece, i).end()  # type: ignore[union-attr]
            continue
        depth += (ch in "([{") - (ch in ")]}")
        if depth == 0 and i < len(piece) - 1:
            return None
        i += 1
    return piece[1:-1].strip()


def _clean(text: str) -> str:
    """``text`` on one line: comments dropped, each run of blanks outside strings one space."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = _STRING.match(text, i).end()  # type: ignore[union-attr]
            out.append(text[i:end])
            i = end
        elif ch == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
        elif ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out).strip()


def _eval(node: ast.expr, ns: dict[str, Any], env: dict[str, Any]) -> Any:
    code = compile(ast.fix_missing_locations(ast.Expression(node)), "<explain>", "eval")
    return eval(code, ns, dict(env))  # noqa: S307  # the scenario's own compiled text, evaluated again


class _Reads:
    """The values a compiled term reads, named as the scenario writes them, in the order it reads them."""

    def __init__(self, text: str, ns: dict[str, Any], env: dict[str, Any], terms: Sequence[Term]) -> None:
        self.ns = ns
        self.env = env
        self.terms = {t.key: t for t in terms}
        # ``alias.field`` / ``last.field`` as written, for ``e.field`` and ``a[j].field``, in order
        self.written = [m.group() for m in _DOTTED.finditer(_STRING.sub('""', text)) if m.group(1) != "tags"]
        self.named: dict[str, str] = {}  # Python text of an event field → its Kairos name
        self.found: dict[str, str] = {}  # name → shown value

    def of(self, node: ast.expr) -> list[str]:
        """``NAME = VALUE`` for each thing ``node`` reads."""
        self._visit(node)
        return [f"{name} = {value}" for name, value in self.found.items()]

    def _visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.Call) and _on_context(node.func):
            attr = node.func.attr  # type: ignore[attr-defined]  # _on_context: an ast.Attribute
            args = node.args
            if attr == "tag" and args and isinstance(args[0], ast.Constant):
                return self._add(f"tags.{args[0].value}", node)
            if attr == "in_list" and len(args) == 2 and isinstance(args[0], ast.Constant):
                return self._add(f'{self._name(args[1])} in list("{args[0].value}")', node)
            if attr in ("period", "since") and args and isinstance(args[0], ast.Name):
                term = self.terms.get(self.ns.get(args[0].id))  # type: ignore[arg-type]
                if term is not None:
                    if attr == "since":
                        return self._add(f"since({term_args(term)})", node, since=True)
                    n = _literal(args[1]) if len(args) > 1 else "?"
                    return self._add(f"{term.kind}({term_args(term)}) in {term.period}({n})", node)
            if attr == "prev":
                return None
        if isinstance(node, ast.Attribute) and _is_event(node.value):
            return self._add(self._name(node), node)
        for child in ast.iter_child_nodes(node):
            self._visit(child)
        return None

    def _name(self, node: ast.expr) -> str:
        """The Kairos name of a value a list is asked about, or of an event's field."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "c":
            return node.attr  # c.msisdn → msisdn
        if isinstance(node, ast.Call) and _on_context(node.func) and node.args and isinstance(
                node.args[0], ast.Constant):
            return f"tags.{node.args[0].value}"
        if isinstance(node, ast.Attribute) and _is_event(node.value):
            key = ast.unparse(node)
            if key not in self.named:
                written = next((w for w in self.written if w.endswith(f".{node.attr}")), None)
                if written is not None:
                    self.written.remove(written)
                self.named[key] = written or node.attr
            return self.named[key]
        return ast.unparse(node)

    def _add(self, name: str, node: ast.expr, since: bool = False) -> None:
        if name in self.found:
            return
        try:
            value = _eval(node, self.ns, self.env)
        except Exception:  # an unbound step's event (None): nothing to show
            return
        self.found[name] = (("null" if value is None else duration_text(value) if value else "0") if since
                            else _shown(value))


def _literal(node: ast.expr) -> Any:
    """The number a period's ``N`` is written as (``-1`` is a unary minus on 1); ``?`` if it is not one."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return "?"


def _on_context(func: ast.expr) -> bool:
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "c"


def _is_event(node: ast.expr) -> bool:
    """``e`` or ``a[j]``."""
    if isinstance(node, ast.Name):
        return node.id == "e"
    return (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "a"
            and isinstance(node.slice, ast.Constant))


def _shown(value: Any) -> str:
    """A value as the scenario language writes it: ``"text"``, ``true``, ``null``, a number, a list."""
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)
