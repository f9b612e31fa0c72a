"""Errors are reported all at once, in file order, rendered with the line and a caret."""

from __future__ import annotations

import pytest

from kairos import dsl
from kairos.dsl import Diagnostic
from tests.dsl.support import SCHEMA, errors


def test_render_points_the_caret_at_the_column():
    d = Diagnostic("x.kairos", 3, 24, "unknown field 'catgory' of dpi events; did you mean 'category'?",
                   '  when count(dpi where catgory == "video") >= 20 within 10m')
    assert d.render() == (
        "x.kairos:3:24: error: unknown field 'catgory' of dpi events; did you mean 'category'?\n"
        '  when count(dpi where catgory == "video") >= 20 within 10m\n'
        "                       ^"
    )


def test_render_copies_tabs_before_the_column_so_the_caret_lines_up():
    d = Diagnostic("x.kairos", 1, 5, "m", "\ta\tbc")
    assert d.render().splitlines()[2] == "\t \t ^"


def test_render_of_a_column_past_the_end_of_the_line_pads_with_spaces():
    assert Diagnostic("x", 1, 4, "m", "ab").render().splitlines()[2] == "   ^"


def test_check_error_lists_every_diagnostic_one_after_another():
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([("a.kairos", 'scenario a when lgin then sms "t" end\n'
                                          'scenario b when login then fax "t" end\n')], SCHEMA)
    a, b = info.value.diagnostics
    assert str(info.value) == a.render() + "\n" + b.render()


def test_checker_errors_are_all_collected_across_files_and_sorted_by_file_then_position():
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([
            ("b.kairos", 'scenario b when login then fax "t" cooldown 1x end'),
            ("a.kairos", 'scenario a when lgin then sms "t" end'),
        ], SCHEMA)
    assert [(d.file, d.col) for d in info.value.diagnostics] == [("b.kairos", 28), ("b.kairos", 45), ("a.kairos", 17)]


def test_a_syntax_error_reports_only_the_first_in_its_file_and_other_files_are_still_checked():
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([
            ("a.kairos", "scenario a when login where == then sms \"t\" end\nscenario b when = end"),
            ("b.kairos", 'scenario c when lgin then sms "t" end'),
        ], SCHEMA)
    assert [(d.file, d.line, d.message) for d in info.value.diagnostics] == [
        ("a.kairos", 1, "expected a value, got '=='"),
        ("b.kairos", 1, "unknown event type 'lgin'; did you mean 'login'?"),
    ]


def test_did_you_mean_only_when_exactly_one_name_is_close():
    assert errors('scenario s when usage where crosses_abov(pct, 1) then sms "t" end') == [
        "unknown function 'crosses_abov'"
    ]
    assert errors('scenario s when usage where chaged(pct) then sms "t" end') == [
        "unknown function 'chaged'; did you mean 'changed'?"
    ]


def test_a_misspelt_alias_is_suggested():
    assert errors('scenario s when dpi as device -> attach where model == devcie.model within 1m then sms "t" end') == [
        "unknown name 'devcie'; did you mean 'device'?"
    ]


def test_a_misspelt_keyword_is_suggested():
    assert errors('senario s when login then sms "t" end') == [
        "expected `scenario` or `policy`, got 'senario'; did you mean 'scenario'?"
    ]


def test_a_scenario_with_neither_then_nor_set_is_reported_at_the_scenario_keyword():
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([("a.kairos", "\n  scenario s when login end")], SCHEMA)
    (d,) = info.value.diagnostics
    assert (d.line, d.col, d.message) == (
        2, 3, "scenario 's' has no `then` clause (nor a `set` clause: a scenario sends, writes tags, or both)")


def test_a_missing_end_in_a_policy_names_it():
    assert errors("policy\n  arbitrate 10s\n") == ["missing `end` for the policy opened at line 1"]


def test_one_mistake_gives_one_message():
    assert errors('scenario s when dpi as d where d.ap == 1 and d.ap > 2 then sms "t" with {x: d.ap + 1} end') == [
        "unknown field 'ap' of dpi events; did you mean 'app'?"
    ] * 3


@pytest.mark.parametrize("text, message", [
    ('audience tags.a == 1', None),
    ('audience 1 + 1', "`audience` must be a condition, got a number"),
    ('audience "x" == 1', "cannot compare text with a number"),
    ('audience tags.a < true', "'<' compares numbers or text, not a boolean"),
    ('audience [1] contains 1 and "a" contains 1', "cannot look for a number in text"),
    ('audience 1 contains 1', "`contains` needs a list or text on its left, got a number"),
    ('audience 1 in 1', "`in` needs a list or text on its right, got a number"),
    ('audience 1 in "abc"', "cannot look for a number in text"),
    ('audience 1 in list("x")', "a list holds text; cannot look for a number in it"),
    ('audience "a" in list(x)', 'list() takes the name of a list in quotes, e.g. list("dnd")'),
    ('audience 1 in ["a"]', "cannot compare a number with text"),
    ('audience 1 matches "a"', "`matches` needs text on its left, got a number"),
    ('audience "a" matches tags.rx', '`matches` takes a regular expression in quotes, e.g. host matches "video$"'),
    ('audience -"a" == 1', "cannot negate text"),
    ('audience true + 1 == 2', "cannot apply '+' to a boolean and a number"),
    ('audience "a" + 1 == 2', "cannot apply '+' to text and a number"),
    ('audience hour("x") == 1', "hour() needs a time in ms such as ts, got text"),
    ('audience hour(1, 2) == 1', "hour() takes 1 argument, got 2"),
    ('audience tags == 1', "a subscriber tag is written `tags.NAME`"),
    ('audience crosses_above(pct, 1)', "crosses_above() can only be used in a filter's `where`"),
    ('audience last == 1', "'last' is a whole event; use one of its fields, e.g. `last.channel`"),
    ('audience l.chanel == "app"', "unknown field 'chanel' of login events; did you mean 'channel'?"),
    ('audience zzz == 1', "unknown name 'zzz'"),
])
def test_type_errors_name_both_sides(text, message):
    source = f'scenario s when login as l {text} then sms "t" end'
    if message is None:
        dsl.compile_sources([("t.kairos", source)], SCHEMA)
    else:
        assert errors(source) == [message]


@pytest.mark.parametrize("where, message", [
    ("crosses_above(pct)", "crosses_above() takes 2 arguments, got 1"),
    ("crosses_above(1, 2)",
     "the first argument of crosses_above() is a field of usage events, e.g. crosses_above(pct, 90)"),
    ("crosses_below(pct, used_mb)", None),  # any expression (LANGUAGE.md §9.2)
    ("crosses_below(pct, cycle)", "the second argument of crosses_below() is a number or an expression giving "
     "one, e.g. crosses_below(pct, 90) or crosses_below(pct, tags.alert_pct); got text"),
    ("crosses_below(pct, -5) and changed(cycle)", None),
    ("changed(cycle, 1)", "changed() takes 1 argument, got 2"),
    ("in_area(\"a\")", "in_area() can only be used in the `where` of a location filter"),
    ("pct > 1 within 1m", "`within` applies to a sequence `A -> B within D` or an aggregate"),
])
def test_functions_of_previous_values_take_a_bare_field_and_a_number(where, message):
    source = f'scenario s when usage where {where} then sms "t" end'
    if message is None:
        dsl.compile_sources([("t.kairos", source)], SCHEMA)
    else:
        assert errors(source) == [message]


def test_in_area_takes_area_names_in_quotes():
    assert errors('scenario s when location where in_area(cell) then sms "t" end') == [
        'in_area() takes area names in quotes, e.g. in_area("airport")'
    ]


def test_reserved_words_cannot_be_aliases():
    assert errors('scenario s when dpi as last then sms "t" end') == ["'last' cannot be an alias: it is reserved"]


def test_an_aggregate_value_cannot_use_functions_of_a_filters_where():
    assert errors('scenario s when distinct(usage, changed(cycle)) > 1 within 1d then sms "t" end') == [
        "changed() can only be used in a filter's `where`"
    ]


def test_a_dwell_has_no_last_event():
    assert errors('scenario s when dwell in area("a") for 1m then sms "t" with {x: last.cell} end') == [
        "`last` is not defined for dwell: it completes at a deadline, not at an event"
    ]


def test_a_not_step_alone_is_refused():
    assert errors('scenario s when not login within 1m then sms "t" end') == [
        "`not` follows exactly one step: write `A -> not B within D`"
    ]


def test_a_trailing_comparison_needs_a_number():
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([("t.kairos", 'scenario s when count(dpi) >= "x" within 1m then sms "t" end')], SCHEMA)
    assert info.value.diagnostics[0].message == 'expected a number to compare the count with, got "x"'
