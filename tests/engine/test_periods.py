"""LANGUAGE.md §9.2 in the engine: calendar periods in local time, recency, now, date(), their state.

The engine's zone is Asia/Shanghai (UTC+8), so a local day is not a UTC day.
T0 is Monday 2026-11-23 00:00 local (Sunday 16:00 UTC).
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from kairos._cli import main
from kairos._explain import explain
from kairos.engine import Engine, Reference
from kairos.engine._events import Dpi, Event, Login, Usage
from kairos.engine._localtime import LocalTime
from kairos.engine._periods import PeriodClock
from kairos.engine._universe import Universe
from kairos.engine._snapshot import decode, encode, restore, transfer
from tests.dsl.support import T0, compile_one
from tests.engine.builders import column_growth

M = 60_000
H = 60 * M
D = 24 * H
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> int:
    """Epoch ms of a local Shanghai wall time."""
    return int(dt.datetime(*args, tzinfo=SHANGHAI).timestamp() * 1000)


def dpi(ts: int, m: str = "1", app: str | None = "x", bytes: int | None = 1) -> Dpi:
    return Dpi(ts=ts, msisdn=m, host="h", app=app, bytes=bytes)


def login(ts: int, m: str = "1") -> Login:
    return Login(ts=ts, msisdn=m, channel="app")


def probe(values: str, when: str = "login") -> str:
    """A scenario sending, at each login, the values of the given expressions."""
    return f'scenario probe\n  when {when}\n  then sms "t" with {{{values}}}\nend\n'


def run(text: str, events: list[Event], reference: Reference | None = None) -> tuple[list[dict[str, Any]], Engine]:
    sends: list = []
    engine = Engine(compile_one(text), reference or Reference(), sink=sends.append)
    engine.feed(events)
    engine.finish()
    return [s.params for s in sends], engine


def test_the_event_being_processed_counts_in_its_own_period():
    params, _ = run(probe("n: count(dpi) in day(0), s: since(dpi)", when="dpi"), [dpi(T0), dpi(T0 + M)])
    assert params == [{"n": 1, "s": 0}, {"n": 2, "s": 0}]


def test_a_day_is_the_local_day_a_minute_before_midnight_is_yesterday():
    #  Sun 23:59 local | Mon 00:00 local | Mon 07:59 / 08:00 local (= 23:59 / 00:00 UTC) | login Mon 09:00
    events = [dpi(T0 - M), dpi(T0), dpi(T0 + 8 * H - M), dpi(T0 + 8 * H), login(T0 + 9 * H)]
    params, _ = run(probe("d0: count(dpi) in day(0), d1: count(dpi) in day(-1)"), events)
    assert params == [{"d0": 3, "d1": 1}]


def test_weeks_run_monday_to_sunday():
    #  Sun (week -2) | Mon 00:00 (week -1) | Sun 23:59 (week -1) | login next Mon 00:00 (week 0)
    events = [dpi(T0 - M), dpi(T0), dpi(T0 + 7 * D - M), login(T0 + 7 * D)]
    params, _ = run(probe("w0: count(dpi) in week(0), w1: count(dpi) in week(-1), w2: count(dpi) in week(-2)"),
                    events)
    assert params == [{"w0": 0, "w1": 2, "w2": 1}]


def test_months_have_their_own_lengths():
    events = [dpi(local(2027, 1, 31, 23, 59)), dpi(local(2027, 2, 28, 23, 59)), dpi(local(2027, 3, 1)),
              login(local(2027, 3, 1, 10))]
    params, _ = run(probe("m0: count(dpi) in month(0), m1: count(dpi) in month(-1), m2: count(dpi) in month(-2)"),
                    events)
    assert params == [{"m0": 1, "m1": 1, "m2": 1}]


def test_month_minus_twelve_reaches_the_same_month_of_last_year():
    events = [dpi(local(2025, 12, 15)), dpi(local(2026, 1, 1)), login(local(2026, 12, 1))]
    params, _ = run(probe("m12: count(dpi) in month(-12), m11: count(dpi) in month(-11)"), events)
    assert params == [{"m12": 1, "m11": 1}]


def test_an_older_period_is_no_longer_read_once_its_slot_is_reused():
    # day(-1) keeps two slots: the one of T0 is reused for T0 + 2d, so T0's count is gone from it
    events = [dpi(T0), dpi(T0 + 2 * D), login(T0 + 3 * D)]
    params, _ = run(probe("d0: count(dpi) in day(0), d1: count(dpi) in day(-1)"), events)
    assert params == [{"d0": 0, "d1": 1}]


def test_top_is_the_most_frequent_value_ties_go_to_the_smallest_and_none_is_null():
    events = [dpi(T0, app="y"), dpi(T0 + 1, app="x"), dpi(T0 + 2, app="y"), dpi(T0 + 3, app="x"),
              dpi(T0 + 4, app=None), login(T0 + 5), login(T0 + 6, "2")]
    params, _ = run(probe("top: top(dpi, app) in day(0), b: top(dpi, bytes) in day(0)"), events)
    assert params == [{"top": "x", "b": 1}, {"top": None, "b": None}]


def test_sum_is_zero_when_none_and_skips_null_values():
    events = [dpi(T0, bytes=5), dpi(T0 + 1, bytes=None), dpi(T0 + 2, bytes=7),
              login(T0 + 3), login(T0 + 4, "2")]
    params, _ = run(probe("s: sum(dpi, bytes) in day(0)"), events)
    assert params == [{"s": 12}, {"s": 0}]


def test_since_is_null_before_the_first_event_and_counts_from_the_latest():
    events = [login(T0), dpi(T0 + M), dpi(T0 + 2 * M, app="y"), login(T0 + 5 * M)]
    params, _ = run(probe('s: since(dpi where app == "x"), own: since(login)'), events)
    assert params == [{"s": None, "own": 0}, {"s": 4 * M, "own": 0}]


def test_durations_and_now_read_as_they_sound():
    text = ('scenario back\n  audience since(login) >= 30d\n  when login\n  then sms "t" with {now: now}\nend\n')
    events = [login(T0), login(T0 + 30 * D - 1), login(T0 + 60 * D)]
    params, _ = run(text, events)
    # the login being processed counts: since(login) is 0 at each login, so nobody is ever "back"
    assert params == []
    text = text.replace("since(login) >= 30d", "since(dpi) >= 30d")
    params, _ = run(text, [dpi(T0), login(T0 + 30 * D - 1), login(T0 + 30 * D)])
    assert params == [{"now": T0 + 30 * D}]


def test_date_is_local_midnight_and_null_for_no_date():
    ref = Reference()
    ref.tags.update({"1": {"end": "2026-11-23"}, "2": {"end": "2026-13-01"}, "3": {"end": 5}})
    logins = [Login(ts=T0 + i, msisdn=m, channel="app") for i, m in enumerate(["1", "2", "3", "4"])]
    params, _ = run(probe('d: date(tags.end), lit: date("2026-11-24") - date("2026-11-23")'), logins, ref)
    assert params == [{"d": T0, "lit": D}, {"d": None, "lit": D}, {"d": None, "lit": D}, {"d": None, "lit": D}]


def test_in_period_binds_tighter_than_the_comparison_at_run_time():
    text = 'scenario quiet\n  audience count(dpi) in day(0) == 0\n  when login\n  then sms "t"\nend\n'
    params, _ = run(text, [login(T0), dpi(T0 + 1, m="2"), login(T0 + 2, "2")])
    assert params == [{}]


def test_crosses_reads_a_personal_threshold_and_a_null_threshold_never_crosses():
    ref = Reference()
    ref.tags.update({"1": {"alert_pct": 80}})
    text = ('scenario alert\n  when usage as u where crosses_above(pct, tags.alert_pct)\n'
            '  then sms "t" with {m: u.msisdn, p: u.pct}\nend\n')
    events = [Usage(ts=T0 + i, msisdn=m, pct=p) for i, (m, p) in
              enumerate([("1", 50), ("2", 50), ("1", 85), ("2", 99), ("1", 90)])]
    params, _ = run(text, events, ref)
    assert params == [{"m": "1", "p": 85}]


def test_two_scenarios_reading_one_term_share_its_column_at_the_deepest_period():
    text = "".join(f'scenario s{i}\n  audience count(dpi where app == "x") in day({n}) >= 0\n  when login\n'
                   f'  then sms "t"\nend\n' for i, n in ((1, -1), (2, -5)))
    _, engine = run(text, [])
    (key,) = engine.periods.columns
    assert engine.periods.terms[key].depth == 5


def test_a_subscriber_whose_buckets_are_all_past_is_dropped_at_the_next_day():
    events = [dpi(T0, m="1"), dpi(T0 + D, m="2")]
    _, engine = run(probe("d: count(dpi) in day(0)"), events)
    assert engine.periods.rows == {"2": 0}  # subscriber 1's row was recycled
    assert engine.subscribers_in_state() == 1


def test_a_count_costs_four_bytes_per_subscriber_per_period_the_calendar_has_reached():
    events = [dpi(T0 + i, m=str(i)) for i in range(5000)]
    _, engine = run(probe("m: count(dpi) in month(-2)"), events)
    (col,) = engine.periods.columns.values()
    width = engine.periods._capacity
    assert col.nbytes() == 4 * width  # int32, one column: the two months before were never reached
    assert len(engine.periods.rows) == 5000
    _, engine = run(probe("m: count(dpi) in month(-2)"), [*events, dpi(T0 + 40 * D)])
    (col,) = engine.periods.columns.values()
    assert col.nbytes() == 2 * 4 * engine.periods._capacity  # a second month: a second column


def test_a_row_is_keyed_by_the_one_copy_of_the_number_not_the_decoded_lines():
    kept = [sys.intern("".join(["1380", str(k)])) for k in range(50)]  # the copies the states key by
    events = [dpi(T0 + i, m="".join(["1380", str(i % 50)])) for i in range(200)]  # each line its own copy
    _, engine = run(probe("n: count(dpi) in week(0)"), events)
    assert sorted(engine.periods.rows, key=kept.index) == kept
    assert all(any(m is k for k in kept) for m in engine.periods.rows)


def test_a_top_row_of_one_value_holds_the_one_copy_of_the_text_not_a_list():
    events = [dpi(T0 + i, m=str(i % 50), app="".join(["vid", "eo"])) for i in range(200)]
    _, engine = run(probe("t: top(dpi, app) in week(0)"), events)
    (col,) = engine.periods.columns.values()
    held = [v for values in col.slots if values is not None for v in values if v is not None]
    assert len(held) == 50 and len({id(v) for v in held}) == 1 and held[0] == "video"


def test_the_universe_keeps_the_one_copy_of_a_number_seen_in_events():
    kept = sys.intern("".join(["1390", "77"]))
    universe = Universe({})
    universe.see(dpi(T0, m="".join(["1390", "77"])))
    assert universe.member(kept)
    assert [m is kept for m in universe.known] == [True]


def test_columns_reserved_for_the_subscribers_to_come_never_double_while_they_arrive(monkeypatch):
    # a doubling copies every column at once: at half a million rows a live stream stalls for it (issue 17)
    grown = column_growth(monkeypatch)
    sends: list = []
    engine = Engine(compile_one(probe("n: count(dpi) in day(0), s: since(dpi)", when="dpi")), Reference(),
                    sink=sends.append)
    engine.periods.reserve(5000)
    assert grown == [8192, 8192]  # each column, once
    engine.feed([dpi(T0 + i, m=str(i)) for i in range(5000)] + [dpi(T0 + 5000, m="7")])
    assert grown == [8192, 8192]  # and never again while the 5000 came
    assert len(engine.periods.rows) == 5000
    assert sends[-1].params == {"n": 2, "s": 0}  # subscriber 7's second event, counted in the columns


# --- snapshots and reloads -----------------------------------------------

TERMS = probe("d0: count(dpi) in day(0), d1: count(dpi) in day(-1), s: sum(dpi, bytes) in week(0), "
              "t: top(dpi, app) in month(0), since: since(dpi)")
BEFORE = [dpi(T0, bytes=3), dpi(T0 + 1, m="2", app="y"), dpi(T0 + D, bytes=4, app="z"), dpi(T0 + D + 1, app="z")]
AFTER = [dpi(T0 + D + 2), login(T0 + D + 3), login(T0 + D + 4, "2")]


def test_a_snapshot_keeps_the_calendar_state_and_the_run_continues_as_if_uninterrupted():
    straight, _ = run(TERMS, BEFORE + AFTER)
    first = Engine(compile_one(TERMS), Reference(), sink=lambda s: None)
    first.feed(BEFORE)
    sends: list = []
    second = Engine(compile_one(TERMS), Reference(), sink=sends.append)
    report = restore(second, decode(encode(first)).engine)
    second.feed(AFTER)
    second.finish()
    assert report.calendar_started == []
    assert [s.params for s in sends] == straight
    assert straight[0] == {"d0": 3, "d1": 1, "s": 9, "t": "x", "since": 1}  # x and z tie in the month


def test_a_snapshot_from_before_calendar_terms_loads_and_they_start_empty():
    fixture = Path(__file__).parent / "fixtures" / "snapshot-v1.bin"
    sends: list = []
    engine = Engine(compile_one(probe("n: count(dpi) in day(0)")), Reference(), sink=sends.append)
    snap = decode(fixture.read_bytes())
    assert snap.engine.calendar is None
    report = restore(engine, snap.engine)
    assert report.calendar_started == [("probe", "count|dpi|||day")]
    engine.feed([dpi(T0 + 10, m="2"), login(T0 + 11, "2")])
    assert [s.params for s in sends] == [{"n": 1}]  # the fixture's dpi events of subscriber 2 were never counted


def test_a_reload_adding_a_term_starts_it_empty_and_keeps_the_others():
    old = Engine(compile_one(probe("n: count(dpi) in day(0)")), Reference(), sink=lambda s: None)
    old.feed([dpi(T0), dpi(T0 + 1)])
    sends: list = []
    new = Engine(compile_one(probe("n: count(dpi) in day(0), s: since(login)")), old.reference, sink=sends.append)
    report = transfer(old, new)
    new.feed([login(T0 + 2)])
    assert report.calendar_started == [("probe", "since|login|||")]
    assert [s.params for s in sends] == [{"n": 2, "s": 0}]


def test_a_reload_reading_a_term_deeper_says_its_older_periods_start_empty_and_they_read_empty():
    days = [dpi(T0 + k * D) for k in range(4)]  # one a day: day(-3) of the fourth day counts the first
    old = Engine(compile_one(probe("n: count(dpi) in day(-1)")), Reference(), sink=lambda s: None)
    old.feed(days)
    deeper = probe("n: count(dpi) in day(-3)")
    sends: list = []
    new = Engine(compile_one(deeper), old.reference, sink=sends.append)
    report = transfer(old, new)
    new.feed([login(T0 + 3 * D + 1)])
    assert report.calendar_started == []
    assert report.calendar_deepened == [("probe", "count|dpi|||day", 1, 3)]
    assert [s.params for s in sends] == [{"n": 0}]  # uninterrupted, day(-3) would count the first day's
    assert run(deeper, [*days, login(T0 + 3 * D + 1)])[0] == [{"n": 1}]
    # as deep as before, or shallower: nothing to say
    assert transfer(new, Engine(compile_one(probe("n: count(dpi) in day(-2)")), new.reference,
                                sink=lambda s: None)).calendar_deepened == []


def test_a_plan_without_calendar_terms_keeps_no_calendar_state_and_routes_do_not_set_now():
    _, engine = run('scenario v when dpi where app == "x" then sms "t" end', [dpi(T0)])
    assert not engine.periods and engine.ctx.now == 0
    assert encode(engine)  # and its snapshot holds none
    assert decode(encode(engine)).engine.calendar is None


def test_explain_shows_the_calendar_values_a_completion_read():
    text = ('scenario quiet\n  audience count(dpi where app == "x") in day(-1) == 0 and since(dpi) > 1h\n'
            '  when login\n  then sms "t"\nend\n')
    lines = [msgspec.json.encode(ev) + b"\n" for ev in [dpi(T0), dpi(T0 + D), login(T0 + D + 2 * H)]]
    out = list(explain(compile_one(text), Reference(), io.BytesIO(b"".join(lines)), "1"))
    assert any(line.strip() == 'count(dpi where app == "x") in day(-1) = 1' for line in out)
    assert any(line.strip() == "since(dpi) = 2h" for line in out)
    assert any("not triggered: audience" in line for line in out)


def test_top_over_many_values_is_the_same_before_and_after_a_snapshot():
    apps = [f"a{k}" for k in range(12)] + ["a7", "a3", "a7"]  # past the short list's eight values
    before = [dpi(T0 + k, app=app) for k, app in enumerate(apps)] + [dpi(T0 + 20, m="2", app="b")]
    after = [login(T0 + 30), login(T0 + 31, "2")]
    text = probe("top: top(dpi, app) in day(0)")
    straight, _ = run(text, before + after)
    first = Engine(compile_one(text), Reference(), sink=lambda s: None)
    first.feed(before)
    sends: list = []
    second = Engine(compile_one(text), Reference(), sink=sends.append)
    restore(second, decode(encode(first)).engine)
    second.feed(after)
    assert straight == [s.params for s in sends] == [{"top": "a7"}, {"top": "b"}]


def test_a_term_filter_spanning_lines_with_a_comment_builds_and_counts():
    text = (
        "scenario probe\n"
        "  when login\n"
        '  then sms "t" with {n: count(dpi where app == "x"  # the app\n'
        '                                  or app == "y") in day(0)}\n'
        "end\n"
    )
    params, _ = run(text, [dpi(T0), dpi(T0 + M, app="y"), dpi(T0 + M, app="z"), login(T0 + 2 * M)])
    assert params == [{"n": 2}]


CALL_QUEUE = """
scenario callback
  when login
  then call "care.callback"
end

scenario thanks
  audience AUDIENCE
  when topup
  then sms "thanks"
end
"""


PEOPLE = {"alex": "13800000001", "bob": "13800000002", "erin": "13800000003", "dana": "13800000004",
          "casey": "13800000005"}


def _call_queue(tmp_path: Path, audience: str, topups: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Monday 2026-11-23, Shanghai: four callbacks for one call a day, so the last (Dana) waits for
    Thursday 00:00 and re-enters as a Monday trigger; ``topups`` (who, day of November) ask for a
    "thanks" SMS that ``audience`` may refuse. The sends of ``kairos replay``."""
    (tmp_path / "s.kairos").write_text(CALL_QUEUE.replace("AUDIENCE", audience))
    (tmp_path / "policy.kairos").write_text("policy\n  capacity call 1 per 1d\nend\n")
    events = [{"type": "login", "ts": local(2026, 11, 23, 10, k), "msisdn": PEOPLE[who], "channel": "app"}
              for k, who in enumerate(["alex", "bob", "erin", "dana"])]
    events += [{"type": "topup", "ts": local(2026, 11, day, 12), "msisdn": PEOPLE[who], "amount": 50}
               for who, day in topups]
    (tmp_path / "e.jsonl").write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    out = tmp_path / "sends.jsonl"
    code = main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--policy", str(tmp_path / "policy.kairos"),
                 "--events", str(tmp_path / "e.jsonl"), "--out", str(out), "--quiet"])
    assert code == 0
    sends = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    calls = [(s["msisdn"], s["send_at"]) for s in sends if s["channel"] == "call"]
    assert calls == [(PEOPLE["alex"], local(2026, 11, 23, 10)), (PEOPLE["bob"], local(2026, 11, 24)),
                     (PEOPLE["erin"], local(2026, 11, 25)), (PEOPLE["dana"], local(2026, 11, 26))]
    return sends


@pytest.mark.parametrize("audience", ["count(trigger) in day(-1) == 0", "sum(trigger, 1) in day(-1) == 0",
                                      "top(trigger, scenario) in day(-1) == null"])
def test_a_callback_decided_days_late_does_not_wipe_yesterdays_contacts(tmp_path, audience):
    # Casey got an SMS on Wednesday, so on Thursday she is not contacted again ("nothing the day
    # after a contact"): Dana's Monday trigger, decided on Thursday, must not clear Wednesday
    sends = _call_queue(tmp_path, audience, [("casey", 25), ("casey", 26)])
    assert [(s["msisdn"], s["ts"]) for s in sends if s["scenario"] == "thanks"] == [
        (PEOPLE["casey"], local(2026, 11, 25, 12))]


def test_a_callback_decided_late_does_not_make_the_latest_contact_look_older(tmp_path):
    # Dana got an SMS on Wednesday; her Monday callback, decided on Thursday, is not her latest
    # contact: on Thursday since(trigger) is a day, so she is not contacted again
    sends = _call_queue(tmp_path, "since(trigger) == null or since(trigger) >= 2d", [("dana", 25), ("dana", 26)])
    assert [(s["msisdn"], s["ts"]) for s in sends if s["scenario"] == "thanks"] == [
        (PEOPLE["dana"], local(2026, 11, 25, 12))]


def _utc(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


@pytest.mark.parametrize("zone, noon, lo, hi", [
    # Santiago, DST starts: midnight does not exist, the day starts at 01:00 -03 (04:00 UTC), 23 h long
    ("America/Santiago", _utc(2024, 9, 8, 15), _utc(2024, 9, 8, 4), _utc(2024, 9, 9, 3)),
    ("America/Santiago", _utc(2024, 9, 7, 16), _utc(2024, 9, 7, 4), _utc(2024, 9, 8, 4)),
    ("America/Santiago", _utc(2024, 4, 6, 15), _utc(2024, 4, 6, 3), _utc(2024, 4, 7, 4)),  # 25 h: 23:00 twice
    ("America/Sao_Paulo", _utc(2018, 11, 4, 14), _utc(2018, 11, 4, 3), _utc(2018, 11, 5, 2)),
    ("Europe/Berlin", _utc(2025, 3, 30, 10), _utc(2025, 3, 29, 23), _utc(2025, 3, 30, 22)),
    ("Europe/Berlin", _utc(2025, 10, 26, 11), _utc(2025, 10, 25, 22), _utc(2025, 10, 26, 23)),
    ("Asia/Shanghai", T0 + 12 * H, T0, T0 + D),
])
def test_a_local_day_runs_from_its_first_instant_to_the_next_days_first_across_dst(zone, noon, lo, hi):
    clock = PeriodClock(LocalTime(zone))
    day = clock.of(noon)
    assert (clock.lo, clock.hi) == (lo, hi)
    # the minute before the day's first is the day before, and the first is this day, whatever came before
    assert [clock.of(lo - 1)[0], clock.of(lo)[0], clock.of(hi - 1)[0], clock.of(hi)[0]] == [
        day[0] - 1, day[0], day[0], day[0] + 1]


def test_date_is_the_first_instant_of_the_day_where_midnight_does_not_exist():
    clock = PeriodClock(LocalTime("America/Santiago"))
    assert [clock.date("2024-09-08"), clock.date("2024-09-09")] == [_utc(2024, 9, 8, 4), _utc(2024, 9, 9, 3)]


def test_a_midnight_schedule_fires_once_a_local_day_where_midnight_is_skipped(tmp_path):
    # Santiago skips 2024-09-08 00:00..01:00: that day's midnight message goes at 01:00, dated that day
    (tmp_path / "s.kairos").write_text('scenario midnight\n  when every day at 00:00\n'
                                       '  then sms "good.morning" with {day: day(now)}\nend\n')
    events = [{"type": "login", "ts": _utc(2024, 9, 6, 16), "msisdn": "13800000005", "channel": "app"},
              {"type": "login", "ts": _utc(2024, 9, 9, 16), "msisdn": "13800000005", "channel": "app"}]
    (tmp_path / "e.jsonl").write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
    out = tmp_path / "sends.jsonl"
    code = main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", str(tmp_path / "e.jsonl"),
                 "--tz", "America/Santiago", "--out", str(out), "--quiet"])
    assert code == 0
    sends = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert [(s["ts"], s["params"]["day"]) for s in sends] == [
        (_utc(2024, 9, 7, 4), "2024-09-07"), (_utc(2024, 9, 8, 4), "2024-09-08"), (_utc(2024, 9, 9, 3), "2024-09-09")]


def test_a_tag_rows_number_seen_in_events_is_a_member_the_universe_keeps_nothing_for():
    universe = Universe({"139": {}})
    universe.see(dpi(T0, m="".join(["1", "39"])))
    assert universe.member("139")
    assert not universe.known and not universe._fresh


def test_period_terms_are_updated_in_the_route_with_no_call():
    text = probe("n: count(dpi) in day(0), v: count(dpi where app == \"v\") in day(0)", when="login")
    params, engine = run(text, [dpi(T0), dpi(T0 + M, app="v"), dpi(T0 + 2 * M), login(T0 + 3 * M)])
    assert params == [{"n": 3, "v": 1}]
    route = engine._routes[Dpi].source
    assert "_Trows.get(e.msisdn)" in route and "_b0(" not in route  # the terms' lines, pasted


def test_the_hour_read_by_several_period_terms_is_read_once_per_event():
    text = probe("n: count(dpi where hour(ts) < 7 or hour(ts) >= 21) in day(0), "
                 "w: count(dpi where hour(ts) >= 9) in day(0)", when="login")
    _, engine = run(text, [])
    hour = engine.ctx.hour
    reads: list[int] = []
    engine.ctx.hour = lambda ts: (reads.append(ts), hour(ts))[1]
    sends: list = []
    engine.sink = sends.append
    engine.feed([dpi(T0 + H), dpi(T0 + 10 * H), dpi(T0 + 22 * H), login(T0 + 23 * H)])
    assert [s.params for s in sends] == [{"n": 2, "w": 2}]
    assert reads == [T0 + H, T0 + 10 * H, T0 + 22 * H]  # one read per DPI event, not one per use
