"""scenarios/thresholds.kairos: a data alert at the subscriber's own level (DOMAIN.md 17).

Qian (10GB plan) set her alert at 70 % (``tags.alert_pct``)::

    23 Nov 10:00  55 %    14:00  68.5 %    18:00  72 %  crosses 70 → alert    21:00  75 %  once per cycle
     1 Dec 01:00   2 %  (December)         19:00  70 %  crosses 70 → alert
"""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, changed, inserted, of, on, replay, send, story

QIAN = "13800000012"
WANG = "13800000001"  # no alert level of his own


def _alert(date: str, hhmm: str, pct: float) -> dict:
    return send("data_alert_personal", QIAN, on(date, hhmm), "sms", "care.data_alert",
                {"level": 70, "pct": pct, "used_mb": int(pct * 10240 / 100), "quota_mb": 10240})


def test_just_under_the_level_sends_nothing(tmp_path):
    events = changed(story("personal_alert")[:4], 2, pct=69.9)
    events = changed(events, 3, pct=69.95)
    assert of("data_alert_personal", replay(events, tmp_path)) == []


def test_a_subscriber_without_a_level_of_their_own_gets_no_alert(tmp_path):
    assert of("data_alert_personal", replay(as_subscriber(story("personal_alert"), WANG), tmp_path)) == []


def test_a_changed_level_is_read_at_the_next_usage(tmp_path):
    """Qian moves her alert to 80 % at 15:00: 72 % no longer crosses it, 75 % neither."""
    events = inserted(story("personal_alert")[:4], {"type": "profile", "ts": on("2026-11-23", "15:00"),
                                                    "msisdn": QIAN, "tags": {"alert_pct": 80}})
    assert of("data_alert_personal", replay(events, tmp_path)) == []


def test_from_90_percent_on_the_alert_leaves_it_to_data_90(tmp_path):
    events = changed(story("personal_alert")[:3], 2, pct=91.0)
    sends = replay(events, tmp_path)
    assert [s["scenario"] for s in sends] == ["data_90"]
