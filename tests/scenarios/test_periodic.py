"""scenarios/periodic.kairos: a contract about to end and the monthly bill's due date (DOMAIN.md 15).

Feng (postpaid, contract ending 2027-04-30, bills due on the 5th) lives from
23 November 2026 to 3 March 2027 (``scenarios/tests/periodic.events.jsonl``): billing
publishes each bill's due date as a profile event (the first on 24 November,
then at the end of each due day); nothing else happens but a login at the end::

    2 Dec 10:00   bill due 5 Dec within 3 days     → reminder (3 and 4 Dec: once per due date)
    2 Jan 10:00   bill due 5 Jan                   → reminder
    30 Jan 10:00  contract ends 30 Apr: 90 days    → renewal offer, once per contract_end
    2 Feb, 2 Mar  bills due 5 Feb, 5 Mar           → reminders

The story itself is ``scenarios/tests/periodic.test.toml`` (``kairos test``); here, its variations.
"""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, inserted, on, replay, send, story

FENG = "13800000013"
ZHAO = "13800000003"   # prepaid
PARKED = "13800000005"  # dual_sim
PERIODIC = ("contract_ends_in_90d", "bill_due_reminder")


def _periodic(sends: list[dict]) -> list[dict]:
    return [s for s in sends if s["scenario"] in PERIODIC]


def _renew(date: str, ends: str, msisdn: str = FENG) -> dict:
    return send("contract_ends_in_90d", msisdn, on(date, "10:00"), "sms", "offer.renew_contract", {"ends": ends})


def test_a_renewed_contract_is_a_new_date_offered_again_90_days_before_it_ends(tmp_path):
    """On 15 February Feng renews until 31 May 2027 (say, a short extension): a new contract_end,
    90 days away on 2 March."""
    events = inserted(story("periodic"), {"type": "profile", "ts": on("2027-02-15", "11:00"), "msisdn": FENG,
                                          "tags": {"contract_end": "2027-05-31"}})
    events = inserted(events, {"type": "login", "ts": on("2027-03-05", "12:00"), "msisdn": FENG, "channel": "app"})
    renewals = [s for s in replay(events, tmp_path) if s["scenario"] == "contract_ends_in_90d"]
    assert renewals == [_renew("2027-01-30", "2027-04-30"), _renew("2027-03-02", "2027-05-31")]


def test_a_contract_that_already_ended_gets_no_renewal_offer(tmp_path):
    events = inserted(story("periodic"), {"type": "profile", "ts": on("2026-11-23", "08:00"), "msisdn": FENG,
                                          "tags": {"contract_end": "2026-11-01"}})
    assert [s for s in replay(events, tmp_path) if s["scenario"] == "contract_ends_in_90d"] == []


def test_a_contract_ending_tomorrow_is_offered_renewal_today_and_not_on_its_last_day(tmp_path):
    events = [{"type": "profile", "ts": on("2026-11-23", "08:00"), "msisdn": FENG,
               "tags": {"contract_end": "2026-11-25"}},
              {"type": "login", "ts": on("2026-11-26", "12:00"), "msisdn": FENG, "channel": "app"}]
    assert _periodic(replay(events, tmp_path)) == [_renew("2026-11-23", "2026-11-25")]


def test_a_bill_due_in_four_days_waits_a_day(tmp_path):
    """10:00 on 1 December is 3 days 14 hours before 5 December: too early; 2 December is within 3 days."""
    events = [e for e in story("periodic") if e["ts"] <= on("2026-12-01", "23:00")]
    events.append({"type": "login", "ts": on("2026-12-01", "23:00"), "msisdn": FENG, "channel": "app"})
    assert _periodic(replay(events, tmp_path)) == []


def test_a_prepaid_subscriber_gets_no_bill_reminder(tmp_path):
    sends = replay(as_subscriber(story("periodic"), ZHAO), tmp_path)
    assert [s for s in sends if s["scenario"] == "bill_due_reminder"] == []
    assert [s["msisdn"] for s in sends if s["scenario"] == "contract_ends_in_90d"] == [FENG]  # from tags.jsonl


def test_a_parked_second_sim_gets_no_renewal_offer(tmp_path):
    events = [{"type": "profile", "ts": on("2026-11-23", "08:00"), "msisdn": PARKED,
               "tags": {"contract_end": "2026-12-31"}},
              {"type": "login", "ts": on("2026-11-24", "12:00"), "msisdn": PARKED, "channel": "app"}]
    assert _periodic(replay(events, tmp_path)) == []
