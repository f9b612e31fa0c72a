"""The policy language: LANGUAGE.md §6 and its extensions compile to the plan's Policy."""

from __future__ import annotations

from kairos import plan
from kairos.plan import Cap, Capacity, Control, Exclusive, Hours, NoRepeat, Quiet, TimeRange

from tests.dsl.support import compile_one, errors

SCENARIOS = """
scenario data_90
  when usage as u where crosses_above(pct, 90)
  then sms "offer.data_addon"
end
scenario data_100
  when usage as u where crosses_above(pct, 100)
  then call "offer.data_addon" or sms "offer.data_addon"
end
"""


def policy(text: str) -> plan.Policy:
    p = compile_one(SCENARIOS + "policy\n" + text + "\nend\n").policy
    assert p is not None
    return p


def test_the_spec_rules_compile():
    p = policy("""
      exclude list("dnd"), list("blacklist")
      cap sms 2 per 1d
      cap any 3 per 7d
      quiet 22:00..08:00 for sms, call defer
      arbitrate 10s""")
    assert p.exclude == ("dnd", "blacklist")
    assert p.caps == (Cap("sms", 2, 86_400_000), Cap("any", 3, 7 * 86_400_000))
    assert p.quiet == (Quiet(TimeRange(22 * 60, 8 * 60), ("sms", "call"), "defer"),)
    assert p.arbitrate_ms == 10_000


def test_quiet_may_be_limited_to_weekdays():
    p = policy("quiet 00:00..24:00 on sat, sun for call defer")
    assert p.quiet == (Quiet(TimeRange(0, 24 * 60), ("call",), "defer", frozenset({6, 7})),)


def test_call_centre_hours_and_capacity():
    p = policy("hours call 09:00..12:00, 13:00..20:00 on mon..fri\ncapacity call 500 per 1d")
    assert p.hours == (Hours("call", (TimeRange(540, 720), TimeRange(780, 1200)), frozenset({1, 2, 3, 4, 5})),)
    assert p.capacity == (Capacity("call", 500, 1),)


def test_no_repeat_exclusive_and_control():
    p = policy("""
      no_repeat after accepted, rejected for 30d
      exclusive "data_offers": data_90, data_100 per 7d
      control 5%
      control 10% for data_100""")
    assert p.no_repeat == NoRepeat(("accepted", "rejected"), 30 * 86_400_000)
    assert p.exclusive == (Exclusive("data_offers", ("data_90", "data_100"), 7 * 86_400_000),)
    assert p.control == (Control(5.0), Control(10.0, ("data_100",)))


def test_a_second_global_control_share_is_refused():
    assert errors(SCENARIOS + "policy\n control 5%\n control 6%\nend\n") == [
        "duplicate global `control` rule; the first is at line 11"]


def test_a_policy_naming_a_scenario_loaded_later_is_accepted():
    p = compile_one("policy\n control 5% for late\nend\n" + SCENARIOS.replace("data_90", "late")).policy
    assert p is not None and p.control == (Control(5.0, ("late",)),)


def test_feedback_within_sets_how_long_a_send_can_be_joined_by_its_feedback():
    assert 45 * 86_400_000 == policy("feedback within 45d").feedback_within_ms
    assert None is policy("cap sms 1 per 1d").feedback_within_ms  # the engine's default applies


def test_a_second_feedback_rule_is_refused():
    assert errors(SCENARIOS + "policy\n feedback within 30d\n feedback within 7d\nend\n") == [
        "duplicate `feedback` rule; the first is at line 11"]


def test_feedback_needs_within_and_a_duration():
    assert errors(SCENARIOS + "policy\n feedback 30d\nend\n") == [
        "expected `within` and a duration, e.g. `feedback within 30d`, got '30d'"]
