"""Checking one expression: resolve its names in a ``Scope``, type every node, build the IR.

Errors are reported through a callback and checking goes on with a node that
passes every check (``POISON``), so one mistake gives one message.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kairos import plan
from kairos.dsl import _ast as ast
from kairos.dsl import _ir as ir
from kairos.dsl._codegen import compile_expr
from kairos.dsl._diagnostics import Source, did_you_mean
from kairos.dsl._tokens import Token

Report = Callable[[Source, Token, str], None]

FUNCTIONS = ("list", "in_area", "crosses_above", "crosses_below", "changed", "hour", "weekday", "day", "date")
#: the periods of ``count|sum|top(F) in PERIOD(N)``
PERIODS = ("day", "week", "month")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_PREVIOUS = ("crosses_above", "crosses_below", "changed")
_CLOCK = ("hour", "weekday", "day")
_ORDERING = ("<", "<=", ">", ">=")
_COMMON = ("ts", "msisdn", "type")
_VALUE_KINDS = ("num", "str", "any", "null")


@dataclass(slots=True)
class Uses:
    """Reference data and previous values a scenario's expressions read."""

    lists: set[str] = field(default_factory=set)
    areas: set[str] = field(default_factory=set)
    tracked: set[tuple[str, str]] = field(default_factory=set)
    #: calendar and recency terms read, by key (LANGUAGE.md §9.2); each with the deepest N read
    terms: dict[str, plan.Term] = field(default_factory=dict)
    now: bool = False  # ``now`` is read
    #: each list, area and tag name read, where (``kairos check --reference`` reports a name the data lacks there)
    names: list[plan.NameUse] = field(default_factory=list)

    def name(self, kind: str, name: str, source: Source, tok: Token) -> None:
        """Record a use of a name only the reference data knows, at ``tok``."""
        self.names.append(plan.NameUse(kind, name, plan.Origin(source.name, tok.line, tok.col)))  # type: ignore[arg-type]  # kind is one of the three


@dataclass(slots=True)
class Scope:
    """What the names of one expression mean.

    In a filter's ``where`` (or an aggregate's value) ``bare`` is the event type
    whose fields are bare names; in a completion context (audience, once per,
    action parameters) it is None. ``aliases`` maps a visible alias to its slot
    (None: the current event ``e``; j: ``a[j]``) and event type (None when the
    type was unknown); ``hidden`` says why other aliases cannot be used here.
    """

    source: Source
    uses: Uses
    bare: str | None = None
    in_filter: bool = False
    aliases: dict[str, tuple[int | None, str | None]] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    last: str | None = None  # event type of `last` (None: unknown type)
    no_last: str | None = None  # why `last` cannot be used here; None: it can
    pattern_types: tuple[str, ...] = ()
    reads_earlier: bool = False  # an alias of an earlier step was read
    in_term: bool = False  # inside the filter of a calendar or recency term
    #: why a bare name (or an event's field) cannot be read here: there is no event (a schedule)
    no_event: str | None = None


class ExprChecker:
    """Type-checks expressions against the event schema."""

    def __init__(self, schema: plan.EventSchema, report: Report,
                 duration: Callable[[Source, ast.Duration], int | None] | None = None) -> None:
        self.schema = schema
        self._reported = report
        self.errors = 0  # how many errors were reported (a term's filter compiles only without one)
        #: a duration's milliseconds, or None after reporting why it is bad (the checker's, as for `within`)
        self._duration = duration

    def _report(self, source: Source, tok: Token, message: str) -> None:
        self.errors += 1
        self._reported(source, tok, message)

    def condition(self, top: ast.TopExpr, scope: Scope, what: str) -> ir.Ir:
        """A condition (a where, an audience); ``what`` names it in the message."""
        node = self.check(top.node, scope)
        self._need_condition(node, top.node, scope, f"{what} must be a condition")
        return node

    def value(self, top: ast.TopExpr, scope: Scope) -> ir.Ir:
        """A value (a parameter, once per, an aggregate's EXPR)."""
        return self.check(top.node, scope)

    def check(self, node: ast.Node, scope: Scope) -> ir.Ir:
        match node:
            case ast.Literal(value=value):
                return _literal(value)
            case ast.ListLit(items=items):
                return ir.ListOf(tuple(self.check(item, scope) for item in items))
            case ast.Name(tok=tok):
                return self._name(tok, scope)
            case ast.Dotted():
                return self._dotted(node, scope)
            case ast.Call():
                return self._call(node, scope)
            case ast.Unary():
                return self._unary(node, scope)
            case ast.Binary():
                return self._binary(node, scope)
            case ast.DurationLit(tok=tok):
                ms = None if self._duration is None else self._duration(
                    scope.source, ast.Duration(tok, tok.text))
                return ir.POISON if ms is None else ir.Const(ms, ir.NUM)
            case ast.PeriodTerm() | ast.SinceTerm():
                return self._term(node, scope)
        raise AssertionError(node)

    def _error(self, scope: Scope, tok: Token, message: str) -> ir.Ir:
        self._report(scope.source, tok, message)
        return ir.POISON

    def _need_condition(self, node: ir.Ir, syntax: ast.Node, scope: Scope, prefix: str) -> None:
        if node.type.kind not in ("bool", "any", "null"):
            self._error(scope, syntax.first, f"{prefix}, got {node.type.describe()}")

    # --- names

    def _name(self, tok: Token, scope: Scope) -> ir.Ir:
        name = tok.text
        if name == "msisdn":
            return ir.Subscriber()
        if scope.bare is not None and name in self.schema.fields(scope.bare):
            return self._field(None, scope.bare, tok, scope)
        if name == "now" and name not in scope.aliases:
            scope.uses.now = True
            return ir.Now()
        if name in scope.aliases:
            return self._whole_event(tok, scope.aliases[name][1], scope)
        if name in scope.hidden:
            return self._error(scope, tok, scope.hidden[name])
        if name == "last":
            if scope.no_last is not None:
                return self._error(scope, tok, scope.no_last)
            return self._whole_event(tok, scope.last, scope)
        if name == "tags":
            return self._error(scope, tok, "a subscriber tag is written `tags.NAME`")
        if scope.no_event is not None:
            return self._error(scope, tok, f"unknown name '{name}': {scope.no_event}")
        hint = self._hint(name, scope)
        if scope.bare is not None and (not hint or did_you_mean(name, self.schema.fields(scope.bare))):
            return self._field(None, scope.bare, tok, scope)  # reports the unknown field
        if scope.bare is None and not hint:
            hint = self._alias_hint(name, scope)
        return self._error(scope, tok, f"unknown name '{name}'{hint}")

    def _hint(self, name: str, scope: Scope) -> str:
        """Did-you-mean among the names visible here."""
        candidates = set(scope.aliases) | set(scope.hidden) | {"msisdn"}
        if scope.bare is not None:
            candidates |= set(self.schema.fields(scope.bare))
        if scope.no_last is None:
            candidates.add("last")
        return did_you_mean(name, candidates)

    def _alias_hint(self, name: str, scope: Scope) -> str:
        for t in (*scope.pattern_types, *sorted(self.schema.types)):
            if name in self.schema.fields(t):
                a = t[0]
                return f"; fields are reached through an alias here, e.g. `{t} as {a}` … `{a}.{name}`"
        return ""

    def _whole_event(self, tok: Token, event_type: str | None, scope: Scope) -> ir.Ir:
        fields = [f for f in self.schema.fields(event_type) if f not in _COMMON] if event_type else []
        example = f"{tok.text}.{fields[0] if fields else 'ts'}"
        return self._error(scope, tok, f"'{tok.text}' is a whole event; use one of its fields, e.g. `{example}`")

    def _dotted(self, node: ast.Dotted, scope: Scope) -> ir.Ir:
        base = node.base.text
        if base == "tags":
            scope.uses.name("tag", node.attr.text, scope.source, node.attr)
            return ir.Tag(node.attr.text)
        if base in scope.aliases:
            slot, event_type = scope.aliases[base]
            if slot is not None:
                scope.reads_earlier = True
            return self._field(slot, event_type, node.attr, scope)
        if base in scope.hidden:
            return self._error(scope, node.base, scope.hidden[base])
        if base == "last":
            if scope.no_last is not None:
                return self._error(scope, node.base, scope.no_last)
            return self._field(None, scope.last, node.attr, scope)
        if scope.no_event is not None:
            return self._error(scope, node.base, f"unknown name '{base}': {scope.no_event}")
        if base in self.schema.types:
            a = base[0]
            return self._error(
                scope, node.base, f"unknown name '{base}'; to use a {base} event's fields here, "
                f"give it an alias: `{base} as {a}` … `{a}.{node.attr.text}`",
            )
        return self._error(scope, node.base, f"unknown name '{base}'{self._hint(base, scope)}")

    def _field(self, slot: int | None, event_type: str | None, tok: Token, scope: Scope) -> ir.Ir:
        if event_type is None:
            return ir.POISON
        fields = self.schema.fields(event_type)
        spec = fields.get(tok.text)
        if spec is None:
            hint = did_you_mean(tok.text, fields) or f" (fields: {', '.join(sorted(fields))})"
            return self._error(scope, tok, f"unknown field '{tok.text}' of {event_type} events{hint}")
        return ir.Field(slot, tok.text, ir.Type(spec.type, not spec.required), spec.choices)

    # --- functions

    def _call(self, node: ast.Call, scope: Scope) -> ir.Ir:
        name = node.name.text
        if name == "list":
            return self._error(scope, node.name, 'list("NAME") can only be the right side of `in` or `not in`')
        if name == "in_area":
            return self._in_area(node, scope)
        if name in _PREVIOUS:
            return self._previous(node, scope)
        if name in _CLOCK:
            if not self._arity(node, 1, scope):
                return ir.POISON
            arg = self.check(node.args[0], scope)
            if arg.type.kind not in ("num", "any", "null"):
                return self._error(scope, node.args[0].first,
                                   f"{name}() needs a time in ms such as ts, got {arg.type.describe()}")
            kind: ir.Kind = "str" if name == "day" else "num"
            return ir.Clock(name, arg, ir.Type(kind, not arg.type.certain("num")))
        if name == "date":
            return self._date(node, scope)
        return self._error(scope, node.name, f"unknown function '{name}'{did_you_mean(name, FUNCTIONS)}")

    def _date(self, node: ast.Call, scope: Scope) -> ir.Ir:
        """``date("YYYY-MM-DD")`` or ``date(EXPR)``: local midnight of that date (null for no date)."""
        if not self._arity(node, 1, scope):
            return ir.POISON
        arg = self.check(node.args[0], scope)
        if arg.type.kind not in ("str", "any", "null"):
            return self._error(scope, node.args[0].first,
                               f'date() takes a date as text, e.g. date("2026-03-01"), got {arg.type.describe()}')
        if isinstance(arg, ir.Const) and isinstance(arg.value, str) and not _is_date(arg.value):
            return self._error(scope, node.args[0].first,
                               f'{arg.value!r} is no date: write date("YYYY-MM-DD"), e.g. date("2026-03-01")')
        return ir.DateOf(arg)

    # --- calendar and recency terms (LANGUAGE.md §9.2)

    def _term(self, node: ast.PeriodTerm | ast.SinceTerm, scope: Scope) -> ir.Ir:
        kind = node.kind.text
        if scope.in_term:
            return self._error(scope, node.kind, f"{kind}(...) cannot be used inside the filter of another "
                               "calendar or recency term")
        flt = node.filter
        event_type = flt.type.text
        if event_type not in self.schema.types:
            hint = did_you_mean(event_type, self.schema.types) or f" ({', '.join(sorted(self.schema.types))})"
            return self._error(scope, flt.type, f"unknown event type '{event_type}'{hint}")
        if flt.alias is not None:
            return self._error(scope, flt.alias, f"the filter of {kind}(...) takes no alias: inside its `where` "
                               f"the fields of {event_type} events are bare names")
        errors = self.errors
        inner = Scope(scope.source, scope.uses, bare=event_type, in_filter=True, in_term=True,
                      no_last=f"`last` is not known inside {kind}(...): bare names there are fields of its events")
        where = value = None
        if flt.where is not None:
            checked = self.check(flt.where.node, inner)
            if checked.type.kind not in ("bool", "any", "null"):
                self._error(scope, flt.where.first, f"a `where` must be a condition, got {checked.type.describe()}")
            elif self.errors == errors:
                where = compile_expr(checked, condition=True, name="where", source=scope.source,
                                     first=flt.where.first, last=flt.where.last)
        value_type = ir.ANY
        if isinstance(node, ast.PeriodTerm) and node.over is not None:
            before = self.errors
            checked = self.check(node.over.node, inner)
            value_type = checked.type
            if kind == "sum" and checked.type.kind not in ("num", "any", "null"):
                self._error(scope, node.over.first, f"sum() adds numbers; got {checked.type.describe()}")
            elif self.errors == before:
                value = compile_expr(checked, condition=False, name="value", source=scope.source,
                                     first=node.over.first, last=node.over.last)
        if isinstance(node, ast.SinceTerm):
            period, n = None, 0
        else:
            period = node.period.text
            if period not in PERIODS:
                hint = did_you_mean(period, PERIODS) or " (day, week, month)"
                return self._error(scope, node.period, f"unknown period '{period}'{hint}")
            raw = node.n.value
            limit = plan.PERIOD_LIMITS[period]
            if isinstance(raw, float):
                return self._error(scope, node.n.tok, f"{period}(N) takes a whole number, got {raw}")
            if raw > 0:
                return self._error(scope, node.n.tok, f"{period}({raw}) is in the future: N is 0 (this {period} so "
                                   f"far) or below (-1: the previous {period})")
            if raw < -limit:
                return self._error(scope, node.n.tok, f"{period}({raw}) goes back too far: at most "
                                   f"{period}(-{limit})")
            n = raw
        if self.errors > errors:
            return ir.POISON
        key = "|".join((kind, event_type, "" if flt.where is None else where.text,  # type: ignore[union-attr]  # compiled: no error
                        "" if value is None else value.text, period or ""))
        seen = scope.uses.terms.get(key)
        reads = tuple(sorted({n, *(() if seen is None else seen.reads)}, reverse=True))
        if seen is None or seen.depth < -n or reads != seen.reads:
            scope.uses.terms[key] = plan.Term(
                kind,  # type: ignore[arg-type]  # one of the four: the parser takes no other
                plan.Filter(event_type, None, where, origin=plan.Origin(scope.source.name, flt.type.line,
                                                                             flt.type.col)),
                value, period, max(-n, 0 if seen is None else seen.depth), key,  # type: ignore[arg-type]  # period: checked
                reads)
        scope.uses.now = True
        if kind in ("count", "sum"):
            return ir.Period(key, n, ir.NUM)
        if kind == "top":
            return ir.Period(key, n, ir.Type(value_type.kind if value_type.kind != "null" else "any", True))
        return ir.Since(key)

    def _arity(self, node: ast.Call, n: int, scope: Scope) -> bool:
        if len(node.args) == n:
            return True
        s = "" if n == 1 else "s"
        self._error(scope, node.name, f"{node.name.text}() takes {n} argument{s}, got {len(node.args)}")
        return False

    def list_ref(self, node: ast.Call, scope: Scope) -> ir.Ir:
        """``list("NAME")`` on the right of ``in``."""
        if len(node.args) != 1 or not _is_string(node.args[0]):
            return self._error(scope, node.name, 'list() takes the name of a list in quotes, e.g. list("dnd")')
        name = node.args[0].value  # type: ignore[union-attr]  # _is_string checked it is a Literal
        scope.uses.lists.add(name)
        scope.uses.name("list", name, scope.source, node.args[0].first)
        return ir.InList(name)

    def _in_area(self, node: ast.Call, scope: Scope) -> ir.Ir:
        if not (scope.in_filter and scope.bare == "location"):
            return self._error(scope, node.name, "in_area() can only be used in the `where` of a location filter")
        if not node.args or not all(_is_string(a) for a in node.args):
            return self._error(scope, node.name, 'in_area() takes area names in quotes, e.g. in_area("airport")')
        areas = frozenset(a.value for a in node.args)  # type: ignore[union-attr]  # all _is_string
        scope.uses.areas |= areas
        for a in node.args:
            scope.uses.name("area", a.value, scope.source, a.first)  # type: ignore[union-attr]  # all _is_string
        return ir.InArea(areas)

    def _previous(self, node: ast.Call, scope: Scope) -> ir.Ir:
        name = node.name.text
        if not scope.in_filter or scope.bare is None:
            return self._error(scope, node.name, f"{name}() can only be used in a filter's `where`")
        example = f"{name}(pct, 90)" if name != "changed" else "changed(imei)"
        if not self._arity(node, 1 if name == "changed" else 2, scope):
            return ir.POISON
        arg = node.args[0]
        if not isinstance(arg, ast.Name):
            return self._error(scope, arg.first,
                               f"the first argument of {name}() is a field of {scope.bare} events, e.g. {example}")
        target = self._field(None, scope.bare, arg.tok, scope)
        if not isinstance(target, ir.Field):
            return ir.POISON
        threshold = None
        if name != "changed":
            if target.type.kind not in ("num", "any"):
                return self._error(scope, arg.tok,
                                   f"{name}() needs a numeric field; '{target.name}' is {target.type.describe()}")
            n = self.check(node.args[1], scope)
            if n.type.kind not in ("num", "any", "null"):
                return self._error(scope, node.args[1].first, f"the second argument of {name}() is a number "
                                   f"or an expression giving one, e.g. {example} or {name}(pct, tags.alert_pct); "
                                   f"got {n.type.describe()}")
            threshold = n
        scope.uses.tracked.add((scope.bare, target.name))
        return ir.Previous(name, scope.bare, target.name, threshold)

    # --- operators

    def _unary(self, node: ast.Unary, scope: Scope) -> ir.Ir:
        operand = self.check(node.operand, scope)
        if node.op.text == "not":
            self._need_condition(operand, node.operand, scope, "`not` needs a condition")
            return ir.Not(operand)
        if isinstance(operand, ir.Const) and operand.type == ir.NUM:
            return ir.Const(-operand.value, ir.NUM)
        if operand.type.kind not in ("num", "any", "null"):
            return self._error(scope, node.op, f"cannot negate {operand.type.describe()}")
        return ir.Neg(operand, ir.Type("num", not operand.type.certain("num")))

    def _binary(self, node: ast.Binary, scope: Scope) -> ir.Ir:
        op = node.op
        if op in ("and", "or"):
            left, right = self.check(node.left, scope), self.check(node.right, scope)
            for operand, syntax in ((left, node.left), (right, node.right)):
                self._need_condition(operand, syntax, scope, f"`{op}` needs a condition on each side")
            return ir.Op(op, left, right, ir.BOOL)
        if op in ("in", "not in"):
            return self._membership(node, scope)
        left, right = self.check(node.left, scope), self.check(node.right, scope)
        lt, rt = left.type, right.type
        if op in ("==", "!=", *_ORDERING):
            if op in _ORDERING and (bad := next((t for t in (lt, rt) if t.kind not in _VALUE_KINDS), None)):
                self._error(scope, node.op_tok, f"'{op}' compares numbers or text, not {bad.describe()}")
            elif not _comparable(lt, rt):
                self._error(scope, node.op_tok, f"cannot compare {lt.describe()} with {rt.describe()}")
            else:
                self._choices(left, node.right, scope)
                self._choices(right, node.left, scope)
            return ir.Op(op, left, right, ir.BOOL)
        if op == "contains":
            if lt.kind not in ("list", "str", "dict", "any", "null"):
                self._error(scope, node.op_tok, f"`contains` needs a list or text on its left, got {lt.describe()}")
            elif lt.kind == "str" and rt.known and rt.kind != "str":
                self._error(scope, node.op_tok, f"cannot look for {rt.describe()} in text")
            return ir.Op(op, left, right, ir.BOOL)
        if op == "matches":
            return self._matches(node, left, scope)
        return self._arithmetic(node, left, right, scope)

    def _membership(self, node: ast.Binary, scope: Scope) -> ir.Ir:
        left = self.check(node.left, scope)
        lt = left.type
        if isinstance(node.right, ast.Call) and node.right.name.text == "list":
            right = self.list_ref(node.right, scope)
            if lt.known and lt.kind != "str":
                self._error(scope, node.op_tok, f"a list holds text; cannot look for {lt.describe()} in it")
            return ir.Op(node.op, left, right, ir.BOOL)
        right = self.check(node.right, scope)
        rt = right.type
        if isinstance(right, ir.ListOf) and isinstance(node.right, ast.ListLit):
            for item, syntax in zip(right.items, node.right.items, strict=True):
                if not _comparable(lt, item.type):
                    self._error(scope, node.op_tok, f"cannot compare {lt.describe()} with {item.type.describe()}")
                    break
                self._choices(left, syntax, scope)
        elif rt.kind == "str":
            if lt.known and lt.kind != "str":
                self._error(scope, node.op_tok, f"cannot look for {lt.describe()} in text")
        elif rt.kind not in ("list", "dict", "any", "null"):
            self._error(scope, node.op_tok, f"`{node.op}` needs a list or text on its right, got {rt.describe()}")
        return ir.Op(node.op, left, right, ir.BOOL)

    def _matches(self, node: ast.Binary, left: ir.Ir, scope: Scope) -> ir.Ir:
        if left.type.kind not in ("str", "any", "null"):
            return self._error(scope, node.op_tok, f"`matches` needs text on its left, got {left.type.describe()}")
        if not _is_string(node.right):
            return self._error(scope, node.right.first,
                               '`matches` takes a regular expression in quotes, e.g. host matches "video$"')
        try:
            rx = re.compile(node.right.value)  # type: ignore[union-attr]  # _is_string checked it
        except re.error as e:
            return self._error(scope, node.right.first, f"bad regular expression: {e}")
        return ir.Op("matches", left, ir.Const(rx, ir.STR), ir.BOOL)

    def _arithmetic(self, node: ast.Binary, left: ir.Ir, right: ir.Ir, scope: Scope) -> ir.Ir:
        op = node.op
        lt, rt = left.type, right.type
        allowed = ("num", "str", "any", "null") if op == "+" else ("num", "any", "null")
        if lt.kind not in allowed or rt.kind not in allowed or not _comparable(lt, rt):
            return self._error(scope, node.op_tok, f"cannot apply '{op}' to {lt.describe()} and {rt.describe()}")
        kind = lt.kind if lt.known else rt.kind if rt.known else "any"
        divisor_safe = op != "/" or (isinstance(right, ir.Const) and right.type == ir.NUM and right.value != 0)
        native = kind in ("num", "str") and lt.certain(kind) and rt.certain(kind) and divisor_safe
        return ir.Op(op, left, right, ir.Type(kind, not native))

    def _choices(self, target: ir.Ir, other: ast.Node, scope: Scope) -> None:
        """A literal compared with a field whose values are fixed must be one of them."""
        if isinstance(target, ir.Field) and target.choices and _is_string(other):
            value = other.value  # type: ignore[union-attr]  # _is_string checked it
            if value not in target.choices:
                allowed = ", ".join(repr(c) for c in target.choices)
                self._error(scope, other.first,
                            f"{value!r} is never a value of {target.name}: it is one of {allowed}")


def _literal(value: object) -> ir.Const:
    if value is None:
        return ir.Const(None, ir.NULL)
    if isinstance(value, bool):
        return ir.Const(value, ir.BOOL)
    if isinstance(value, str):
        return ir.Const(value, ir.STR)
    return ir.Const(value, ir.NUM)


def _is_date(text: str) -> bool:
    m = _DATE.fullmatch(text)
    if m is None:
        return False
    try:
        datetime.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def _is_string(node: ast.Node) -> bool:
    return isinstance(node, ast.Literal) and isinstance(node.value, str)


def _comparable(a: ir.Type, b: ir.Type) -> bool:
    return not (a.known and b.known and a.kind != b.kind)
