"""LANGUAGE.md §9.2 in `check`: calendar and recency terms, now, durations, date(), crosses thresholds."""

from __future__ import annotations

import pytest

from kairos import dsl, plan
from tests.dsl.support import compile_one, errors, scenario


def audience(expr: str, when: str = "login") -> plan.Scenario:
    return scenario(f'scenario s\n  audience {expr}\n  when {when}\n  then sms "t"\nend\n')


def rendered(text: str) -> str:
    try:
        compile_one(text)
    except dsl.CheckError as e:
        return str(e)
    raise AssertionError("no error reported")


def test_in_period_binds_tighter_than_comparison_so_a_count_is_compared_with_zero():
    s = audience('count(dpi where app == "x") in month(-1) == 0')
    assert s.audience is not None
    assert s.audience.python.startswith("(c.period(") and s.audience.python.endswith("== 0)")


def test_in_period_is_not_the_list_operator_even_followed_by_one():
    s = audience('count(dpi) in day(0) in [1, 2]')
    assert "isin(c.period(" in s.audience.python or "in {1, 2}" in s.audience.python


def test_a_duration_is_its_milliseconds():
    s = audience("since(login) >= 30d and since(login) < 90m + 500ms")
    assert "2592000000" in s.audience.python and "5400000" in s.audience.python


@pytest.mark.parametrize("expr, message", [
    ("count(dpi) in month(1) == 0", "month(1) is in the future: N is 0 (this month so far) or below "
     "(-1: the previous month)"),
    ("count(dpi) in day(-63) == 0", "day(-63) goes back too far: at most day(-62)"),
    ("count(dpi) in week(-27) == 0", "week(-27) goes back too far: at most week(-26)"),
    ("count(dpi) in month(-13) == 0", "month(-13) goes back too far: at most month(-12)"),
    ("count(dpi) in month(-1.5) == 0", "month(N) takes a whole number, got -1.5"),
    ("count(dpi) in year(-1) == 0", "unknown period 'year' (day, week, month)"),
    ("count(dpi) in mnth(-1) == 0", "unknown period 'mnth'; did you mean 'month'?"),
    ("count(logn) in day(0) == 0", "unknown event type 'logn'; did you mean 'login'?"),
    ('sum(dpi, host) in day(0) > 1', "sum() adds numbers; got text"),
    ("count(dpi where bytes) in day(0) > 1", "a `where` must be a condition, got a number"),
    ("count(dpi where categry == 1) in day(0) > 1",
     "unknown field 'categry' of dpi events; did you mean 'category'?"),
    ("count(dpi as d) in day(0) > 1",
     "the filter of count(...) takes no alias: inside its `where` the fields of dpi events are bare names"),
    ("count(dpi where count(login) in day(0) > 1) in day(0) > 1",
     "count(...) cannot be used inside the filter of another calendar or recency term"),
    ('date("2026-02-30") < now', "'2026-02-30' is no date: write date(\"YYYY-MM-DD\"), e.g. date(\"2026-03-01\")"),
    ("date(5) < now", 'date() takes a date as text, e.g. date("2026-03-01"), got a number'),
    ("since(login) > 30x", "bad duration '30x': write a whole number followed by ms, s, m, h or d"),
    ("app == 1", "unknown name 'app'; fields are reached through an alias here, e.g. `dpi as d` … `d.app`"),
])
def test_bad_terms_are_refused_with_a_message(expr, message):
    assert errors(f'scenario s\n  audience {expr}\n  when login\n  then sms "t"\nend\n') == [message]


def test_a_future_period_is_reported_with_a_caret_under_its_number():
    text = 'scenario s\n  audience count(dpi) in month(1) == 0\n  when login\n  then sms "t"\nend\n'
    assert rendered(text).splitlines() == [
        "t.kairos:2:32: error: month(1) is in the future: N is 0 (this month so far) or below (-1: the previous month)",
        "  audience count(dpi) in month(1) == 0",
        "                               ^",
    ]


def test_a_term_without_a_period_says_how_to_write_one():
    assert "expected `in` and a period after count(...) here" in rendered(
        'scenario s\n  audience count(dpi) == 0\n  when login\n  then sms "t"\nend\n')


@pytest.mark.parametrize("pattern", ["count(login) < 3 within 30d", "sum(topup, amount) <= 10 within 30d"])
def test_a_less_than_count_or_sum_pattern_is_refused_because_it_fires_at_the_first_events(pattern):
    text = f'scenario s\n  when {pattern}\n  then sms "t"\nend\n'
    out = rendered(text)
    assert "fires at the first ones (the event counts itself)" in out
    assert "in month(0)" in out and "A -> not B within D" in out
    line = out.splitlines()[2]
    assert line.strip() == "^" and line.index("^") == text.splitlines()[1].index("<")


def test_crosses_takes_any_expression_as_its_threshold():
    s = scenario('scenario s\n  when usage where crosses_above(pct, tags.alert_pct)\n  then sms "t"\nend\n')
    assert s.pattern.filter.where.python == "crosses_above(c.prev('usage', 'pct'), e.pct, c.tag('alert_pct'))"


def test_the_same_term_read_by_two_scenarios_has_one_key_and_each_its_depth():
    text = "\n".join(
        f'scenario s{i}\n  audience count(dpi where app == "x") in month({n}) == 0\n  when login\n  then sms "t"\nend'
        for i, n in ((1, -1), (2, -3)))
    s1, s2 = compile_one(text).scenarios
    (t1,), (t2,) = s1.terms, s2.terms
    assert t1.key == t2.key == 'count|dpi|app == "x"||month'
    assert (t1.depth, t2.depth) == (1, 3)


def test_a_scenario_reads_now_only_when_it_says_so():
    assert audience("now > 0").uses_now
    assert audience("since(login) > 1d").uses_now
    assert not audience("tags.x == 1").uses_now


def test_a_field_called_now_in_a_filter_is_not_shadowed():
    s = audience("since(dpi where bytes > 0) == null")
    (term,) = s.terms
    assert (term.kind, term.period, term.filter.where.text) == ("since", None, "bytes > 0")
