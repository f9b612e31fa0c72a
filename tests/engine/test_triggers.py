"""The trigger pipeline: gates, ids, re-entry, previous values, enrichment."""

from __future__ import annotations

import pytest

from kairos.engine import BindError, Reference
from kairos.engine._events import Attach, Balance, Dpi, Profile, Usage
from kairos.engine._reference import KnowledgeBase
from kairos.plan import Action, During, Single, TimeRange, NOPREV
from kairos.plan._runtime import changed, crosses_below

from tests.engine.builders import flt, fn, run, scenario, times

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
M = 60_000
H = 60 * M


def dpi(ms: int, m: str = "1", **kw) -> Dpi:
    return Dpi(ts=T0 + ms, msisdn=m, host=kw.pop("host", "h"), **kw)


def every_dpi(**kw):
    return scenario("s", Single(flt("dpi")), **kw)


def test_trigger_id_is_scenario_msisdn_ts_with_a_suffix_from_the_second_at_the_same_time():
    sends, _ = run(every_dpi(), [dpi(0), dpi(0), dpi(0), dpi(1), dpi(1, m="2")])
    assert [s.id for s in sends] == [
        f"s:1:{T0}", f"s:1:{T0}:2", f"s:1:{T0}:3", f"s:1:{T0 + 1}", f"s:2:{T0 + 1}"
    ]


def test_the_same_input_gives_the_same_sends():
    events = [dpi(i * 1000, m=str(i % 3)) for i in range(20)]
    assert run(every_dpi(), events)[0] == run(every_dpi(), events)[0]


def test_cooldown_suppresses_until_exactly_t_plus_d():
    sends, engine = run(every_dpi(cooldown_ms=10 * M), [dpi(0), dpi(10 * M - 1), dpi(10 * M)])
    assert times(sends) == [T0, T0 + 10 * M]
    assert engine.stats[0].suppressed == {"cooldown": 1}


def test_once_allows_one_trigger_per_subscriber():
    sends, _ = run(every_dpi(once="once"), [dpi(0), dpi(H), dpi(H, m="2")])
    assert [(s.msisdn, s.ts) for s in sends] == [("1", T0), ("2", T0 + H)]


def test_once_per_suppresses_while_the_value_is_the_same_as_at_the_last_trigger():
    usage = scenario("u", Single(flt("usage", alias="u")), once="per",
                     once_per=fn(lambda e, a, c: a[0].cycle))
    events = [Usage(ts=T0 + i, msisdn="1", pct=90, cycle=cyc)
              for i, cyc in enumerate(["2026-11", "2026-11", "2026-12", "2026-11", None, None])]
    sends, _ = run(usage, events)
    # 11 → sent; 11 again → suppressed; 12 → sent; back to 11 → sent; null → sent; null again → suppressed
    assert times(sends) == [T0, T0 + 2, T0 + 3, T0 + 4]


def test_audience_is_evaluated_when_the_pattern_completes_with_current_tags():
    vip = every_dpi(audience=fn(lambda e, a, c: c.tag("vip") is True))
    events = [dpi(0), Profile(ts=T0 + 1, msisdn="1", tags={"vip": True}), dpi(2),
              Profile(ts=T0 + 3, msisdn="1", tags={"vip": None}), dpi(4)]
    sends, engine = run(vip, events)
    assert times(sends) == [T0 + 2]
    assert engine.stats[0].suppressed == {"audience": 2}


def test_during_includes_the_start_and_excludes_the_end_of_a_range():
    rush = every_dpi(during=During((TimeRange(7 * 60, 9 * 60 + 30),)))
    events = [dpi(7 * H - 1), dpi(7 * H), dpi(9 * H + 30 * M - 1), dpi(9 * H + 30 * M)]
    assert times(run(rush, events)[0]) == [T0 + 7 * H, T0 + 9 * H + 30 * M - 1]


def test_during_a_range_may_wrap_midnight_and_days_use_the_trigger_day():
    night = every_dpi(during=During((TimeRange(22 * 60, 6 * 60),), days=frozenset({1})))
    # Monday 23:00 and Monday 05:00 are in; Tuesday 05:00 (day 2) is not; Monday 06:00 is the end
    events = [dpi(5 * H), dpi(6 * H), dpi(23 * H), dpi(29 * H)]
    assert times(run(night, events)[0]) == [T0 + 5 * H, T0 + 23 * H]


def test_action_params_and_after_delay_the_send_but_not_the_trigger_time():
    offer = every_dpi(actions=(Action("sms", "offer", (("app", fn(lambda e, a, c: e.app)),), after_ms=5 * M),))
    (send,), _ = run(offer, [dpi(0, app="iqiyi")])
    assert (send.ts, send.send_at, send.params) == (T0, T0 + 5 * M, {"app": "iqiyi"})


def test_a_sent_trigger_re_enters_as_a_trigger_event_at_its_time():
    first = scenario("first", Single(flt("dpi")))
    follow = scenario("follow", Single(flt("trigger", lambda e, a, c: e.scenario == "first", alias="t")),
                      actions=(Action("call", "x", (("of", fn(lambda e, a, c: e.id)),)),))
    sends, _ = run([first, follow], [dpi(0)])
    assert [(s.scenario, s.ts, s.params) for s in sends] == [
        ("first", T0, {}), ("follow", T0, {"of": f"first:1:{T0}"})
    ]


def test_a_scenario_triggering_on_its_own_triggers_stops_at_the_depth_limit():
    loop = scenario("loop", Single(flt("trigger")))
    starter = scenario("start", Single(flt("dpi")))
    sends, engine = run([starter, loop], [dpi(0)])
    assert engine.trigger_loops == 1
    assert len(sends) == 9  # start + 8 re-entries of loop, each still sent


def _below_10(e, a, c):
    """The balance crossed below 10 since the previous balance event."""
    return crosses_below(c.prev("balance", "amount"), e.amount, 10)


def test_crosses_below_reads_the_previous_event_of_the_type_not_only_matching_ones():
    low = scenario("low", Single(flt("balance", _below_10)), tracked=frozenset({("balance", "amount")}))
    amounts = [12, 9, 8, 15, 5, 4]
    sends, _ = run(low, [Balance(ts=T0 + i, msisdn="1", amount=a) for i, a in enumerate(amounts)])
    assert times(sends) == [T0 + 1, T0 + 4]


def test_crosses_with_no_previous_event_counts_as_crossing():
    low = scenario("low", Single(flt("balance", _below_10)), tracked=frozenset({("balance", "amount")}))
    assert times(run(low, [Balance(ts=T0, msisdn="1", amount=3)])[0]) == [T0]


def test_changed_needs_a_previous_event_with_another_value():
    new_phone = scenario("new", Single(flt("attach", lambda e, a, c: changed(c.prev("attach", "imei"), e.imei))),
                         tracked=frozenset({("attach", "imei")}))
    events = [Attach(ts=T0 + i, msisdn="1", imei=x) for i, x in enumerate(["A", "A", "B", "B"])]
    assert times(run(new_phone, events)[0]) == [T0 + 2]


def test_previous_values_are_per_subscriber():
    sends = []
    probe = scenario("p", Single(flt("balance", lambda e, a, c: sends.append(c.prev("balance", "amount")) or False)),
                     tracked=frozenset({("balance", "amount")}))
    run(probe, [Balance(ts=T0, msisdn="1", amount=5), Balance(ts=T0 + 1, msisdn="2", amount=7),
                Balance(ts=T0 + 2, msisdn="1", amount=9)])
    assert sends == [NOPREV, NOPREV, 5]


def test_dpi_without_app_or_category_is_labelled_from_the_first_matching_kb_pattern():
    kb = KnowledgeBase([("video.qq.com", "tencent_video", "video"), ("qq.com", "qq", "social")])
    seen = []
    probe = scenario("p", Single(flt("dpi", lambda e, a, c: seen.append((e.app, e.category)) or False)))
    run(probe, [dpi(0, host="m.video.qq.com"), dpi(1, host="mail.qq.com"), dpi(2, host="x.org"),
                dpi(3, host="video.qq.com", app="own")], Reference(kb=kb))
    assert seen == [("tencent_video", "video"), ("qq", "social"), (None, None), ("own", "video")]


def test_binding_refuses_a_plan_whose_lists_or_areas_are_missing_from_the_reference():
    needy = scenario("needy", Single(flt("dpi")), lists=frozenset({"dnd"}), areas=frozenset({"airport"}))
    with pytest.raises(BindError) as err:
        run(needy, [])
    assert 'uses list("dnd")' in str(err.value) and 'uses area "airport"' in str(err.value)
