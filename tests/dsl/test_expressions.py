"""Compiled expressions give the language's values on real events (LANGUAGE.md §3)."""

from __future__ import annotations

from typing import Any

import pytest

from kairos.engine._events import Attach, Balance, Call, Dpi, Feedback, Location, Login, Trigger, Usage
from kairos.plan import NOPREV
from tests.dsl.support import T0, FakeContext, scenario

LOGIN = Login(ts=T0, msisdn="8613800000001", channel="app")


def value(expr: str, ctx: FakeContext | None = None, event: Any = LOGIN) -> Any:
    """``expr`` as an action parameter after ``when login as l``: the raw value."""
    s = scenario(f'scenario s when {event.__struct_config__.tag} as l then sms "t" with {{v: {expr}}} end')
    (_, param), = s.actions[0].params
    return param.fn(event, (event,), ctx or FakeContext())


def where(event_type: str, expr: str):
    """The compiled ``where`` of a single filter, as ``f(event, ctx)``."""
    fn = scenario(f'scenario s when {event_type} where {expr} then sms "t" end').pattern.filter.where.fn
    return lambda ev, ctx=None: fn(ev, (ev,), ctx or FakeContext())


def dpi(**kw: Any) -> Dpi:
    return Dpi(ts=T0, msisdn="8613800000001", host=kw.pop("host", "v.qq.com"), **kw)


# --- null semantics


@pytest.mark.parametrize("expr, expected", [
    ("tags.missing == null", True),
    ("tags.missing != null", False),
    ("tags.missing == 1", False),
    ("tags.missing != 1", True),
    ("tags.missing == tags.other_missing", True),
    ("tags.missing < 5", False),
    ("tags.missing >= 5", False),
    ("tags.missing + 1", None),
    ("tags.missing * 2", None),
    ("-tags.missing", None),
    ("tags.missing in [1, 2]", False),
    ("tags.missing not in [1, 2]", True),
    ("tags.missing in [1, null]", True),
    ("tags.missing contains 1", False),
    ("tags.missing matches \"x\"", False),
])
def test_a_missing_tag_is_null(expr, expected):
    assert value(expr) == expected


@pytest.mark.parametrize("expr, expected", [
    ("tags.flag == 1", False),
    ("tags.flag != 1", True),
    ("tags.one == true", False),
    ("tags.one != true", True),
    ("tags.flag == true", True),
    ("tags.flag in [1, 2]", False),
    ("tags.one in [true]", False),
    ("tags.one in [1, 2]", True),
    ("tags.flag + 1", None),
    ("tags.flag < 2", False),
])
def test_true_is_not_one(expr, expected):
    assert value(expr, FakeContext(tags={"flag": True, "one": 1})) == expected


def test_an_optional_field_left_out_is_null():
    f = where("dpi", "category == null and app != \"x\" and not bytes > 0")
    assert f(Dpi(ts=T0, msisdn="1", host="h", bytes=None)) is True  # type: ignore[arg-type]
    assert f(dpi(category="video")) is False


def test_ordering_compares_numbers_with_numbers_and_text_with_text_only():
    ctx = FakeContext(tags={"n": 5, "s": "b"})
    assert [value(e, ctx) for e in ("tags.n > 4", "tags.n > \"4\"", "tags.s > \"a\"", "tags.s < 9")] == [
        True, False, True, False
    ]


def test_arithmetic_of_numbers_and_joining_of_text():
    ctx = FakeContext(tags={"n": 4, "s": "ab"})
    assert [value(e, ctx) for e in ("tags.n + 1", "tags.n - 1", "tags.n * 2", "tags.n / 8", "tags.s + \"c\"",
                                    "tags.s + 1", "tags.n / 0", "1 / 0", "tags.n - tags.s")] == [
        5, 3, 8, 0.5, "abc", None, None, None, None
    ]


# --- membership and text


@pytest.mark.parametrize("expr, expected", [
    ('"video" in ["video", "music"]', True),
    ('"news" in ["video", "music"]', False),
    ('"news" not in ["video", "music"]', True),
    ("2 in [1, 2.0]", True),
    ('"qq" in "v.qq.com"', True),
    ('"x" in "v.qq.com"', False),
    ('tags.apps contains "wechat"', True),
    ('tags.apps contains "alipay"', False),
    ('"v.qq.com" contains "qq"', True),
    ('tags.apps contains 1', False),
    ('"8613800000001" in list("vip")', True),
    ('msisdn in list("vip")', True),
    ('msisdn not in list("vip")', False),
    ('msisdn in list("unknown")', False),
    ('"v.qq.com" matches "q+\\\\.com$"', True),
    ('"v.qq.com" matches "^qq"', False),
    ('tags.n matches "5"', False),
])
def test_membership_containment_and_regular_expressions(expr, expected):
    ctx = FakeContext(tags={"apps": ["wechat", "qq"], "n": 5}, lists={"vip": {"8613800000001"}})
    assert value(expr, ctx) is expected


def test_a_field_with_fixed_values_is_tested_against_a_constant_set():
    f = where("location", 'roaming in ["domestic", "international"]')
    assert [f(Location(ts=T0, msisdn="1", cell="c", roaming=r)) for r in ("none", "domestic")] == [False, True]


def test_membership_in_a_list_computed_at_run_time():
    ctx = FakeContext(tags={"a": "x", "b": "y"})
    assert (value('"y" in [tags.a, tags.b]', ctx), value('"z" in [tags.a, tags.b]', ctx)) == (True, False)


def test_an_unhashable_tag_is_in_no_list_of_strings():
    assert value('tags.d in ["a"]', FakeContext(tags={"d": {"k": 1}})) is False


# --- precedence and conditions


@pytest.mark.parametrize("expr, expected", [
    ("true or false and false", True),
    ("(true or false) and false", False),
    ("not 1 == 2", True),
    ("not true or true", True),
    ("not (true or true)", False),
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 2 - 3", 5),
    ("8 / 2 / 2", 2.0),
    ("-2 * 3", -6),
    ("- -2", 2),
    ('"a" in ["a"] == true', True),
    ("1 + 1 == 2 and 2 > 1", True),
])
def test_operators_bind_loosest_first_or_and_not_comparison_membership_sum_product(expr, expected):
    assert value(expr) == expected


def test_a_condition_is_true_only_for_true():
    f = where("login", "tags.vip")
    assert [f(LOGIN, FakeContext(tags={"vip": v})) for v in (True, 1, "yes", None)] == [True, False, False, False]
    g = where("login", "not tags.vip")
    assert [g(LOGIN, FakeContext(tags={"vip": v})) for v in (True, 1, None)] == [False, True, True]


def test_a_boolean_field_is_a_condition():
    f = where("call", "dropped")
    assert [f(Call(ts=T0, msisdn="1", direction="mo", dropped=d)) for d in (True, False)] == [True, False]


# --- names


def test_msisdn_is_the_subscriber_and_tags_are_theirs():
    ctx = FakeContext(msisdn="861", tags={"plan": "gold"})
    assert (value("msisdn", ctx), value("tags.plan", ctx), value("tags.none", ctx)) == ("861", "gold", None)


def test_last_and_aliases_read_the_completing_and_bound_events():
    s = scenario("""
scenario s
  when dpi as d where category == "review" -> attach as n within 5m
  then sms "t" with {model: n.model, app: d.app, os: last.os}
end
""")
    first, second = dpi(category="review", app="zol"), Attach(ts=T0 + 1, msisdn="1", imei="i", model="m", os="android")
    params = {k: e.fn(second, (first, second), FakeContext()) for k, e in s.actions[0].params}
    assert params == {"model": "m", "app": "zol", "os": "android"}


def test_a_later_step_reads_an_earlier_alias():
    s = scenario('scenario s when trigger as t -> feedback where trigger_id == t.id within 3d then call "x" end')
    f = s.pattern.steps[1].where.fn
    t = Trigger(ts=T0, msisdn="1", id="s:1:0", scenario="s", channel="sms", template="x")
    assert f(Feedback(ts=T0, msisdn="1", trigger_id="s:1:0", outcome="clicked"), (t, None), FakeContext()) is True
    assert f(Feedback(ts=T0, msisdn="1", trigger_id="other", outcome="clicked"), (t, None), FakeContext()) is False


def test_an_aggregate_value_is_computed_on_each_event():
    p = scenario('scenario s when distinct(dpi, app) >= 3 within 1h then sms "t" end').pattern
    assert p.value.fn(dpi(app="qq"), (), FakeContext()) == "qq"


# --- functions


def test_crosses_above_is_true_when_the_previous_value_was_below_or_missing():
    f = where("usage", "crosses_above(pct, 90)")
    u = Usage(ts=T0, msisdn="1", pct=92)
    assert [f(u, FakeContext(prev={("usage", "pct"): p})) for p in (NOPREV, None, 80, 90, 95)] == [
        True, True, True, False, False
    ]
    assert f(Usage(ts=T0, msisdn="1", pct=89), FakeContext(prev={("usage", "pct"): 10})) is False


def test_crosses_below_is_true_when_the_previous_value_was_at_or_above_or_missing():
    f = where("balance", "crosses_below(amount, 10)")
    b = Balance(ts=T0, msisdn="1", amount=9.5)
    assert [f(b, FakeContext(prev={("balance", "amount"): p})) for p in (NOPREV, 10, 12, 9)] == [
        True, True, True, False
    ]


def test_changed_needs_a_previous_event_and_a_different_value():
    f = where("attach", "changed(imei)")
    a = Attach(ts=T0, msisdn="1", imei="B")
    assert [f(a, FakeContext(prev={("attach", "imei"): p})) for p in (NOPREV, "A", "B", None)] == [
        False, True, False, True
    ]


def test_in_area_asks_the_context_about_the_events_cell():
    f = where("location", 'in_area("airport", "t2")')
    ctx = FakeContext(cells={"c1": {"t2"}, "c2": {"mall"}})
    assert [f(Location(ts=T0, msisdn="1", cell=c), ctx) for c in ("c1", "c2", "c3")] == [True, False, False]


def test_hour_weekday_and_day_are_the_contexts_local_time():
    assert [value(f"{fn}(l.ts)") for fn in ("hour", "weekday", "day")] == [
        ("hour", T0), ("weekday", T0), ("day", T0)
    ]
    assert value("hour(tags.t)", FakeContext(tags={"t": 5})) == ("hour", 5)
