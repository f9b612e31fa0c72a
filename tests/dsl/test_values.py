"""Durations, time-of-day ranges and weekdays parse to the right numbers at their edges."""

from __future__ import annotations

import pytest

from kairos import plan
from tests.dsl.support import errors, scenario


def _cooldown(d: str) -> int | None:
    return scenario(f'scenario s when login cooldown {d} then sms "t" end').cooldown_ms


@pytest.mark.parametrize("text, ms", [
    ("1ms", 1), ("500ms", 500), ("1s", 1_000), ("30s", 30_000), ("10m", 600_000), ("2h", 7_200_000),
    ("3d", 259_200_000), ("90m", 5_400_000), ("0010s", 10_000),
])
def test_a_duration_is_whole_milliseconds(text, ms):
    assert _cooldown(text) == ms


@pytest.mark.parametrize("text", ["10x", "1.5h", "10M", "10 m", "10", "0m", "0ms"])
def test_a_duration_that_is_not_a_whole_positive_number_and_a_unit_is_refused(text):
    assert errors(f'scenario s when login cooldown {text} then sms "t" end') == [
        f"bad duration '{text}': write a whole number "
        + ("above zero " if text.startswith("0m") else "")
        + "followed by ms, s, m, h or d"
    ]


def test_after_may_be_zero():
    assert scenario('scenario s when login then sms "t" after 0s end').actions[0].after_ms == 0


def _during(text: str) -> plan.During:
    return scenario(f'scenario s when login during {text} then sms "t" end').during


@pytest.mark.parametrize("text, start, end", [
    ("00:00..24:00", 0, 1440),
    ("7:05..9:30", 425, 570),
    ("22:00..06:00", 1320, 360),
    ("23:59..00:00", 1439, 0),
    ("00:00..00:01", 0, 1),
])
def test_a_time_range_is_minutes_of_the_day(text, start, end):
    assert _during(text).ranges == (plan.TimeRange(start, end),)


def test_a_range_ending_at_24_00_holds_the_last_minute_and_not_midnight():
    (r,) = _during("23:00..24:00").ranges
    assert (r.contains(22 * 60 + 59), r.contains(23 * 60), r.contains(23 * 60 + 59), r.contains(0)) == (
        False, True, True, False
    )


def test_a_range_that_wraps_midnight_holds_both_sides_and_excludes_its_end():
    (r,) = _during("22:00..06:00").ranges
    assert [r.contains(m) for m in (21 * 60 + 59, 22 * 60, 0, 5 * 60 + 59, 6 * 60)] == [
        False, True, True, True, False
    ]


@pytest.mark.parametrize("text, message", [
    ("24:00..06:00", "bad time '24:00': write HH:MM from 00:00 to 23:59, or 24:00 to end a range"),
    ("08:00..24:01", "bad time '24:01': write HH:MM from 00:00 to 23:59, or 24:00 to end a range"),
    ("08:60..09:00", "bad time '08:60': write HH:MM from 00:00 to 23:59, or 24:00 to end a range"),
    ("08:0..09:00", "bad time '08:0': write HH:MM from 00:00 to 23:59, or 24:00 to end a range"),
    ("008:00..09:00", "bad time '008:00': write HH:MM from 00:00 to 23:59, or 24:00 to end a range"),
    ("08:00..8:00", "empty time range 08:00..8:00: the start and the end must differ "
                    "(00:00..24:00 is the whole day)"),
])
def test_bad_times_and_empty_ranges_are_refused(text, message):
    assert errors(f'scenario s when login during {text} then sms "t" end') == [message]


@pytest.mark.parametrize("text, days", [
    ("mon", {1}),
    ("sun", {7}),
    ("mon..fri", {1, 2, 3, 4, 5}),
    ("sat..sun", {6, 7}),
    ("fri..mon", {5, 6, 7, 1}),
    ("sun..mon", {7, 1}),
    ("wed..wed", {3}),
    ("mon, wed..thu, sat", {1, 3, 4, 6}),
])
def test_days_are_iso_weekdays_and_a_day_range_may_wrap_the_week(text, days):
    assert _during(f"08:00..09:00 on {text}").days == frozenset(days)


def test_several_ranges_and_no_days():
    assert _during("07:00..09:30, 17:00..19:30") == plan.During(
        (plan.TimeRange(420, 570), plan.TimeRange(1020, 1170)), None
    )


@pytest.mark.parametrize("text, expected", [("0", 0), ("100", 100), ("55", 55)])
def test_priority_bounds_are_inclusive(text, expected):
    assert scenario(f'scenario s priority {text} when login then sms "t" end').priority == expected


@pytest.mark.parametrize("text", ["101", "-1", "50.5"])
def test_priority_outside_0_to_100_or_fractional_is_refused(text):
    assert errors(f'scenario s priority {text} when login then sms "t" end') == [
        f"priority must be a whole number from 0 to 100, got {text}"
    ]


@pytest.mark.parametrize("name", ["a", "low_balance_2", "x9"])
def test_scenario_names_are_lower_case_letters_digits_and_underscores(name):
    assert scenario(f'scenario {name} when login then sms "t" end').name == name


@pytest.mark.parametrize("name", ["Low", "_x", "lowBalance"])
def test_other_scenario_names_are_refused(name):
    assert errors(f'scenario {name} when login then sms "t" end') == [
        f"bad scenario name '{name}': use lower-case letters, digits and _, starting with a letter"
    ]


def test_numbers_with_a_fraction_and_negative_thresholds():
    p = scenario('scenario s when sum(balance, amount) > -2.5 within 1d then sms "t" end').pattern
    assert p.threshold == -2.5
