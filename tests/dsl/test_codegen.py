"""Generated code: native where the types allow, helper-exact everywhere, debuggable."""

from __future__ import annotations

import re
import traceback
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos import dsl
from kairos.dsl import _ast as ast
from kairos.dsl._diagnostics import Source
from kairos.dsl._parser import parse
from kairos.engine._events import Dpi
from kairos.engine._routes import inlinable
from kairos.plan import _runtime as rt
from tests.dsl.support import SCHEMA, T0, FakeContext, compile_one, scenario


def _where(event_type: str, expr: str):
    return scenario(f'scenario s when {event_type} where {expr} then sms "t" end').pattern.filter.where


@pytest.mark.parametrize("event_type, expr, python", [
    ("usage", "pct >= 90", "(e.pct >= 90)"),  # required number: native ordering
    ("dpi", "bytes >= 90", "(e.bytes is not None and e.bytes >= 90)"),  # optional field: null test first
    ("usage", "used_mb < quota_mb", "(e.used_mb is not None and e.quota_mb is not None and e.used_mb < e.quota_mb)"),
    ("dpi", 'app > "m"', "(e.app is not None and e.app > 'm')"),
    ("dpi", "bytes + 1 > 2", "gt((e.bytes + 1 if e.bytes is not None else None), 2)"),
    ("dpi", "bytes / 2 > 2", "gt((e.bytes / 2 if e.bytes is not None else None), 2)"),
    ("usage", "hour(ts) + 1 > 2", "((c.hour(e.ts) + 1) > 2)"),  # the hour of a number is a number
    ("login", "hour(tags.t) + 1 > 2", "gt(add(c.hour(c.tag('t')), 1), 2)"),  # not a field: the helper
    ("login", "tags.n > 1", "gt(c.tag('n'), 1)"),
    ("dpi", 'category == "video"', "(e.category == 'video')"),  # None == "video" is False too
    ("dpi", "bytes == 1", "(e.bytes == 1)"),
    ("login", "tags.x == 1", "eq(c.tag('x'), 1)"),  # a tag may be true, and true != 1
    ("login", 'tags.x == "a"', "(c.tag('x') == 'a')"),
    ("dpi", 'app in ["a", "b"]', "(e.app in {'a', 'b'})"),
    ("dpi", 'app not in ["b", "a"]', "(not (e.app in {'a', 'b'}))"),
    ("dpi", 'host contains "qq"', "('qq' in e.host)"),
    ("dpi", 'app contains "qq"', "contains(e.app, 'qq')"),
    ("usage", "pct * 2 > 100 and pct + 1 < 50", "(((e.pct * 2) > 100) and ((e.pct + 1) < 50))"),
    ("usage", "pct / 2 > 1", "((e.pct / 2) > 1)"),
    ("usage", "pct / used_mb > 1", "gt(div(e.pct, e.used_mb), 1)"),
    ("usage", "pct / 0 > 1", "gt(div(e.pct, 0), 1)"),
    ("usage", "-pct < 0", "((-e.pct) < 0)"),
    ("dpi", "-bytes < 0", "lt(neg(e.bytes), 0)"),
    ("login", "tags.vip", "(c.tag('vip') is True)"),
    ("login", "not tags.vip or true", "((not (c.tag('vip') is True)) or True)"),
    ("login", 'msisdn in list("vip")', "c.in_list('vip', c.msisdn)"),
    ("usage", "crosses_above(pct, 90)", "crosses_above(c.prev('usage', 'pct'), e.pct, 90)"),
    ("attach", "changed(imei)", "changed(c.prev('attach', 'imei'), e.imei)"),
    ("usage", "hour(ts) >= 9", "(c.hour(e.ts) >= 9)"),
])
def test_native_operators_only_where_the_types_make_them_equal_to_the_helpers(event_type, expr, python):
    assert _where(event_type, expr).python == python


def test_expressions_of_events_literals_and_helpers_can_be_pasted_inline_by_the_engine():
    assert inlinable(_where("dpi", 'category in ["video", "music"] and bytes >= 10 and app != "x"'))
    assert not inlinable(_where("dpi", 'host matches "qq"'))  # a compiled regex is a constant


def test_regular_expressions_are_compiled_once_into_the_functions_namespace():
    w = _where("dpi", 'host matches "^v\\\\."')
    assert w.python == "(_k0.search(e.host) is not None)"
    assert w.fn.__globals__["_k0"] == re.compile(r"^v\.")


def test_text_and_origin_are_the_kairos_source_of_the_expression():
    s = compile_one('scenario s\n  when usage\n    where pct >= 90\n      and cycle != null\n  then sms "t"\nend\n')
    w = s.scenarios[0].pattern.filter.where
    assert w.text == "pct >= 90\n      and cycle != null"
    assert (w.origin.file, w.origin.line, w.origin.col) == ("t.kairos", 3, 11)


class _Broken(FakeContext):
    def tag(self, name: str) -> Any:
        raise RuntimeError("tag store down")


def test_a_traceback_through_a_compiled_expression_shows_the_scenario_file_and_line():
    text = 'scenario s\n  when login\n  audience tags.vip == true\n  then sms "t"\nend\n'
    audience = compile_one(text, name="scenarios/vip.kairos").scenarios[0].audience
    with pytest.raises(RuntimeError) as info:
        audience.fn(None, (), _Broken())
    frame = traceback.extract_tb(info.value.__traceback__)[-2]
    assert (frame.filename, frame.lineno, frame.name, frame.line) == (
        "scenarios/vip.kairos", 3, "audience", "audience tags.vip == true"
    )
    rendered = "".join(traceback.format_tb(info.value.__traceback__))
    assert '  File "scenarios/vip.kairos", line 3, in audience\n    audience tags.vip == true\n' in rendered


def test_a_traceback_from_a_file_on_disk_reads_the_file(tmp_path):
    f = tmp_path / "x.kairos"
    f.write_text('scenario s when login then sms "t" with {p: tags.p} end\n', encoding="utf-8")
    (_, param), = dsl.compile_paths([f], SCHEMA).scenarios[0].actions[0].params
    with pytest.raises(RuntimeError) as info:
        param.fn(None, (), _Broken())
    frame = traceback.extract_tb(info.value.__traceback__)[-2]
    assert (frame.filename, frame.lineno, frame.name) == (str(f), 1, "param_p")


# --- the generated code equals the helpers' semantics, whatever the types


def _oracle(node: ast.Node, e: Any, c: Any) -> Any:
    """Evaluate the syntax tree with plan._runtime helpers only: the reference semantics."""
    match node:
        case ast.Literal(value=v):
            return v
        case ast.ListLit(items=items):
            return [_oracle(i, e, c) for i in items]
        case ast.Name(tok=tok):
            return c.msisdn if tok.text == "msisdn" else getattr(e, tok.text)
        case ast.Dotted(base=base, attr=attr):
            assert base.text == "tags"
            return c.tag(attr.text)
        case ast.Unary(op=op, operand=x):
            return (not rt.truth(_oracle(x, e, c))) if op.text == "not" else rt.neg(_oracle(x, e, c))
        case ast.Binary(op="and", left=l, right=r):
            return rt.truth(_oracle(l, e, c)) and rt.truth(_oracle(r, e, c))
        case ast.Binary(op="or", left=l, right=r):
            return rt.truth(_oracle(l, e, c)) or rt.truth(_oracle(r, e, c))
        case ast.Binary(op="matches", left=l, right=r):
            return rt.matches(_oracle(l, e, c), re.compile(r.value))
        case ast.Binary(op=op, left=l, right=r):
            a, b = _oracle(l, e, c), _oracle(r, e, c)
            if op == "not in":
                return not rt.isin(a, b)
            helper = {"==": rt.eq, "!=": rt.ne, "<": rt.lt, "<=": rt.le, ">": rt.gt, ">=": rt.ge,
                      "+": rt.add, "-": rt.sub, "*": rt.mul, "/": rt.div, "in": rt.isin, "contains": rt.contains}
            return helper[op](a, b)
    raise AssertionError(node)


_num_leaf = st.sampled_from(["bytes", "duration_s", "ts", "tags.n", "0", "1", "2.5", "-3", "null"])
_str_leaf = st.sampled_from(["host", "app", "category", "msisdn", "tags.s", '"video"', '"v.qq.com"', "null"])
_any_leaf = st.sampled_from(["tags.n", "tags.s", "tags.b", "tags.l", "null"])


def _nums(children: Any) -> Any:
    return st.builds(lambda a, op, b: f"({a} {op} {b})", children, st.sampled_from("+-*/"), children) | \
        children.map(lambda a: f"-{a}")


_num = st.recursive(_num_leaf, _nums, max_leaves=4)
_str = st.recursive(_str_leaf, lambda ch: st.builds(lambda a, b: f"({a} + {b})", ch, ch), max_leaves=3)


def _conditions(children: Any) -> Any:
    return (
        st.builds(lambda a, op, b: f"({a} {op} {b})", children, st.sampled_from(["and", "or"]), children)
        | children.map(lambda a: f"(not {a})")
    )


_leaf_condition = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", _num, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _num),
    st.builds(lambda a, op, b: f"{a} {op} {b}", _str, st.sampled_from(["==", "!=", "<", ">="]), _str),
    st.builds(lambda a, op, b: f"{a} {op} {b}", _any_leaf, st.sampled_from(["==", "!="]), _num | _str | _any_leaf),
    st.builds(lambda a, op: f'{a} {op} ["video", "qq", "8613800000001"]', _str | _any_leaf,
              st.sampled_from(["in", "not in"])),
    st.builds(lambda a, op: f"{a} {op} [1, 2.5, 0]", _num | _any_leaf, st.sampled_from(["in", "not in"])),
    st.builds(lambda a: f"{a} in [1, \"video\", null, true]", _num | _str | _any_leaf),
    st.builds(lambda a, b: f"{a} in {b}", _str, _str),
    st.builds(lambda a, b: f"{a} contains {b}", _str | st.just("tags.l"), _str),
    st.builds(lambda a, rx: f'{a} matches "{rx}"', _str | _any_leaf, st.sampled_from(["qq", "^v", "o$"])),
    st.sampled_from(["tags.b", "true", "false", "null"]),
)
_condition = st.recursive(_leaf_condition, _conditions, max_leaves=4)

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 2.5, "video", "qq"]))
_collection = st.one_of(st.none(), st.sampled_from(["video", "v.qq.com", "qq"]),
                        st.lists(st.sampled_from(["video", "qq", 1, True]), max_size=3))
# tags.s and tags.l stand on the collection side of in/contains, so they hold a
# collection or null (see test_in_and_contains_on_a_tag_holding_a_scalar_are_false)
_tags = st.fixed_dictionaries({}, optional={"n": _scalar, "b": _scalar, "s": _collection, "l": _collection})


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@settings(max_examples=400, deadline=None)
@given(
    expr=_condition,
    app=st.sampled_from([None, "qq", "video"]),
    category=st.sampled_from([None, "video", "news"]),
    bytes_=st.sampled_from([None, 0, 1, 2.5, -3]),
    tags=_tags,
)
def test_a_compiled_condition_equals_the_reference_semantics(expr, app, category, bytes_, tags):
    source = f'scenario s when dpi where {expr} then sms "t" end'
    try:
        where = compile_one(source).scenarios[0].pattern.filter.where
    except dsl.CheckError:
        return  # a combination the checker refuses (e.g. text compared with a number)
    event = Dpi(ts=T0, msisdn="8613800000001", host="v.qq.com", app=app, category=category, bytes=bytes_)  # type: ignore[arg-type]
    ctx = FakeContext(tags=tags)
    node = parse(Source("t", source)).items[0].clauses[0].value.steps[0].filter.where.node
    assert where.fn(event, (event,), ctx) is rt.truth(_oracle(node, event, ctx))


@pytest.mark.parametrize("value", [5, 2.5, True])
@pytest.mark.parametrize("expr", ['tags.l contains "x"', '"x" in tags.l'])
def test_in_and_contains_on_a_tag_holding_a_scalar_are_false(expr, value):
    """A warehouse tag of the wrong shape must not stop the engine: it contains nothing."""
    audience = compile_one(f'scenario s when login audience {expr} then sms "t" end').scenarios[0].audience
    assert audience.fn(None, (), FakeContext(tags={"l": value})) is False
