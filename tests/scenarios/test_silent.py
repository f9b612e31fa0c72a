"""scenarios/silent.kairos: the silent / low-use model (DOMAIN.md 14), evaluated on day 1 of each month.

The story (``scenarios/tests/silent_model.events.jsonl``) runs from 15 July to 1 December
2026: the engine has run since July, so on each day 1 from October it has
seen the three calendar months before. At noon on 1 September the CRM's
profile events say who bought which service; a "use" is a DPI record on the
service's host (the knowledge base labels ``feixin.10086.cn`` fetion,
``read.migu.cn`` migu_reading …)::

                    Jul  Aug  Sep    Oct    Nov    1 Dec before 10:00
    SILENT   mailbox  0    0    0      0      0      0
    LOW      reading  0    0    1      2      1      0
    NEWLY    fetion   -    -    4      3      0      0
    BACK     fetion   -    -    4      3      0      3   (back before the push)
    ACTIVE   video    -    -    4      4      4      0

SILENT and LOW also read the news (``news.qq.com``) on the 15th of July,
August and September: the silent and low-use scenarios need some DPI traffic
in month(-3), proof that the engine saw the subscriber then, so that counts
of 0 mean "no use" and not "not yet running" (on a fresh deployment every
buyer would otherwise be silent on the first day 1).

The subscribers are in no list and have no tags but those bought, so only
the exclusions a test adds stop a send.
"""

from __future__ import annotations

import pytest

from tests.scenarios.support import as_subscriber, inserted, on, replay, send, story

SILENT, LOW, NEWLY, BACK, ACTIVE = "13800000101", "13800000102", "13800000103", "13800000104", "13800000105"
DND, BLACK, RED, PARKED = "13800000098", "13800000099", "13800000097", "13800000005"
NEWS = "news.qq.com"  # the story's browsing: traffic of no service
MODEL = [f"{service}_{kind}" for service in ("fetion", "mailbox", "reading", "video")
         for kind in ("silent", "low_use", "newly_silent")]


def _model(sends: list[dict]) -> list[dict]:
    return [s for s in sends if s["scenario"] in MODEL]


def _only(events: list[dict], msisdn: str) -> list[dict]:
    """The story of one subscriber, with the clock event that takes time past 1 December 10:00."""
    return [e for e in events if e["msisdn"] == msisdn] + [e for e in events if e["type"] == "login"]


def _from(events: list[dict], date: str) -> list[dict]:
    """The story as a deployment that starts on ``date`` sees it: the CRM's tags (the profiles) at its start,
    no traffic before."""
    start = on(date, "00:00")
    return ([{**e, "ts": start} for e in events if e["type"] == "profile" and e["ts"] < start]
            + [e for e in events if e["ts"] >= start])


def _unseen(events: list[dict]) -> list[dict]:
    """The story without its news browsing: a subscriber with no traffic but the service's."""
    return [e for e in events if e.get("host") != NEWS]


def test_two_uses_this_month_do_not_stop_the_newly_silent_push_and_three_do(tmp_path):
    events = [e for e in _only(story("silent_model"), BACK) if e["ts"] != on("2026-12-01", "09:40")]
    assert _model(replay(events, tmp_path)) == [
        send("fetion_newly_silent", BACK, on("2026-12-01", "10:00"), "sms", "vas.newly_silent", {"app": "fetion"}),
    ]
    assert _model(replay(_only(story("silent_model"), BACK), tmp_path)) == []


def test_two_uses_the_month_before_last_are_not_enough_to_be_newly_silent(tmp_path):
    """September 4, October 2, November none: not newly silent (October < 3), not low use (September >= 3)."""
    events = [e for e in _only(story("silent_model"), NEWLY) if e["ts"] != on("2026-10-16", "12:30")]
    assert _model(replay(events, tmp_path)) == []


def test_one_use_in_any_of_the_three_months_is_not_silent(tmp_path):
    events = inserted(_only(story("silent_model"), SILENT),
                      {"type": "dpi", "ts": on("2026-10-20", "08:00"), "msisdn": SILENT, "host": "mail.10086.cn",
                       "bytes": 9000, "duration_s": 20})
    assert [(s["scenario"], s["ts"]) for s in _model(replay(events, tmp_path))] == [
        ("mailbox_silent", on("2026-10-01", "10:00")),
        ("mailbox_low_use", on("2026-11-01", "10:00")),
        ("mailbox_low_use", on("2026-12-01", "10:00")),
    ]


def test_a_service_not_bought_is_never_silent(tmp_path):
    events = [e for e in _only(story("silent_model"), SILENT) if e["type"] != "profile"]
    assert _model(replay(events, tmp_path)) == []


def test_do_not_disturb_red_black_and_dual_sim_subscribers_are_left_out(tmp_path):
    for excluded in (DND, RED, BLACK, PARKED):
        assert _model(replay(as_subscriber(_only(story("silent_model"), NEWLY), excluded), tmp_path)) == [], excluded


def test_a_subscriber_contacted_in_the_last_30_days_is_left_out(tmp_path):
    """NEWLY got the data add-on SMS on 20 November (usage crossed 90 %): 11 days before the push."""
    events = inserted(_only(story("silent_model"), NEWLY),
                      {"type": "usage", "ts": on("2026-11-20", "15:00"), "msisdn": NEWLY, "pct": 91.0,
                       "used_mb": 4659, "quota_mb": 5120, "cycle": "2026-11"})
    sends = replay(events, tmp_path)
    assert [s["scenario"] for s in sends] == ["data_90"]


def test_a_contact_31_days_before_does_not_stop_the_push(tmp_path):
    events = inserted(_only(story("silent_model"), NEWLY),
                      {"type": "usage", "ts": on("2026-10-31", "09:00"), "msisdn": NEWLY, "pct": 91.0,
                       "used_mb": 4659, "quota_mb": 5120, "cycle": "2026-10"})
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["data_90", "fetion_newly_silent"]


@pytest.mark.parametrize(("service", "host", "app", "silent", "low_use", "newly_silent"), [
    ("fetion", "feixin.10086.cn", "fetion", "fetion_silent", "fetion_low_use", "fetion_newly_silent"),
    ("mailbox", "mail.10086.cn", "mail139", "mailbox_silent", "mailbox_low_use", "mailbox_newly_silent"),
    ("reading", "read.migu.cn", "migu_reading", "reading_silent", "reading_low_use", "reading_newly_silent"),
    ("video", "m.miguvideo.com", "migu_video", "video_silent", "video_low_use", "video_newly_silent"),
])
def test_every_service_has_the_three_kinds(tmp_path, service, host, app, silent, low_use, newly_silent):
    """The story's three subscribers, each with this service instead of their own: the same pushes, this
    service's scenarios, its app named (the knowledge base labels the host, e.g. mail.10086.cn is the
    mailbox, not the operator's portal at 10086.cn)."""
    events = [e for e in story("silent_model") if e["msisdn"] in (SILENT, LOW, NEWLY) or e["type"] == "login"]
    events = [{**e, "tags": {f"has_{service}": True}} if e["type"] == "profile"
              else {**e, "host": host} if e["type"] == "dpi" and e["host"] != NEWS else e for e in events]
    dec_1 = [(s["scenario"], s["msisdn"], s["params"]) for s in _model(replay(events, tmp_path))
             if s["ts"] == on("2026-12-01", "10:00")]
    assert dec_1 == sorted([  # replay writes the sends of one instant in the order of their ids
        (silent, SILENT, {"app": app}), (low_use, LOW, {"app": app}), (newly_silent, NEWLY, {"app": app}),
    ])


def test_a_deployment_started_less_than_three_months_before_day_1_sends_no_silent_or_low_use_sms(tmp_path):
    """The engine starts on 1 October and sees SILENT and LOW read the news in October and November, but
    on 1 November and 1 December it has not seen month(-3) (August, September): counts of 0 there say
    nothing, so no silent or low-use SMS, no mass send to every buyer. Newly silent reads October and
    November, both seen: NEWLY still gets it."""
    events = _from(story("silent_model"), "2026-10-01")
    for msisdn in (SILENT, LOW):
        for day in ("2026-10-15", "2026-11-15"):
            events = inserted(events, {"type": "dpi", "ts": on(day, "20:15"), "msisdn": msisdn, "host": NEWS,
                                       "bytes": 30000, "duration_s": 90})
    assert _model(replay(events, tmp_path)) == [
        send("fetion_newly_silent", NEWLY, on("2026-12-01", "10:00"), "sms", "vas.newly_silent",
             {"app": "fetion"}),
    ]


def test_a_buyer_never_seen_is_never_silent(tmp_path):
    """SILENT without the news browsing: no DPI at all, so however long the engine runs it has no proof
    that the subscriber was there to use the mailbox."""
    assert _model(replay(_unseen(_only(story("silent_model"), SILENT)), tmp_path)) == []


def test_a_buyer_seen_in_month_minus_3_with_no_use_since_gets_the_silent_sms(tmp_path):
    """The engine starts on 1 September; SILENT reads the news on 15 September and never opens the
    mailbox: silent on 1 December, the first day 1 whose month(-3) the engine saw (not 1 October or
    1 November)."""
    events = _from(_only(story("silent_model"), SILENT), "2026-09-01")
    assert _model(replay(events, tmp_path)) == [
        send("mailbox_silent", SILENT, on("2026-12-01", "10:00"), "sms", "vas.silent", {"app": "mail139"}),
    ]


def test_a_buyer_seen_in_month_minus_3_with_few_uses_since_gets_the_low_use_sms(tmp_path):
    """The engine starts on 1 September; LOW reads the news on 15 September (no reading then), then
    reads twice in October and once in November: low use on 1 December only."""
    events = [e for e in _from(_only(story("silent_model"), LOW), "2026-09-01")
              if not (e.get("host") == "read.migu.cn" and e["ts"] < on("2026-10-01", "00:00"))]
    assert _model(replay(events, tmp_path)) == [
        send("reading_low_use", LOW, on("2026-12-01", "10:00"), "sms", "vas.low_use", {"app": "migu_reading"}),
    ]
