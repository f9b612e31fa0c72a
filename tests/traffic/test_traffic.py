"""The traffic generator: deterministic, valid for the engine, shaped as asked (province and W1)."""

from __future__ import annotations

import collections
from itertools import pairwise
from pathlib import Path

import msgspec
import numpy as np
import orjson
import pytest

from kairos import traffic
from kairos.engine import Engine, Reference, event_types, event_union, replay
from kairos._compile import compile_plan
from kairos.plan import Scenario, Schedule

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = sorted((ROOT / "scenarios").glob("*.kairos"))
START = traffic.DEFAULT_START_MS
HOUR = 3_600_000


@pytest.fixture(scope="module")
def province(tmp_path_factory) -> tuple[Path, Path]:
    """A day of the province mix for 600 subscribers, with its reference folder."""
    root = tmp_path_factory.mktemp("province")
    traffic.make_reference(root / "reference", 600, seed=3)
    traffic.write(root / "events.jsonl", subscribers=600, hours=24, seed=3, mix="province")
    return root / "events.jsonl", root / "reference"


@pytest.fixture(scope="module")
def w1(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w1") / "w1.jsonl"
    traffic.write(path, subscribers=5_000, events=200_000, hours=1, seed=5, mix="w1")
    return path


def _events(path: Path) -> list:
    return msgspec.json.Decoder(event_union()).decode_lines(path.read_bytes())


@pytest.mark.parametrize("mix", ["province", "w1"])
def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tmp_path, mix):
    def make(seed: int, name: str) -> bytes:
        traffic.write(tmp_path / name, subscribers=300, hours=6, seed=seed, mix=mix, events=20_000)
        return (tmp_path / name).read_bytes()

    first = make(11, "a")
    assert first == make(11, "b")
    assert first != make(12, "c")


def test_province_lines_decode_with_the_engine_decoder_sorted_by_ts(province):
    events_path, _ = province
    lines = events_path.read_bytes().splitlines()
    events = _events(events_path)
    assert len(lines) == len(events)
    ts = [e.ts for e in events]
    assert ts == sorted(ts)
    assert START <= ts[0] and ts[-1] < START + 24 * HOUR


def test_province_writes_only_fields_the_engine_knows(province):
    events_path, _ = province
    known = {name: set(msgspec.structs.fields(cls)[i].name for i in range(len(msgspec.structs.fields(cls))))
             for name, cls in event_types().items()}
    unknown = collections.Counter()
    for line in events_path.read_bytes().splitlines()[::7]:
        row = orjson.loads(line)
        kind = row.pop("type")
        unknown.update(f"{kind}.{k}" for k in row if k not in known[kind])
    assert {} == dict(unknown)


def test_province_has_every_feed_of_the_domain(province):
    events_path, _ = province
    kinds = collections.Counter(e.__struct_config__.tag for e in _events(events_path))
    expected = {"location", "power", "call", "sms", "attach", "dpi", "usage", "balance", "topup", "login", "profile"}
    assert expected == set(kinds) & expected
    assert kinds["dpi"] > kinds["location"] > kinds["call"]  # DPI dominates, as on a real network


def test_province_msisdns_are_the_generated_subscribers(province):
    events_path, _ = province
    numbers = {e.msisdn for e in _events(events_path)}
    assert numbers <= {str(13_800_000_000 + i) for i in range(600)}
    assert len(numbers) > 550  # nearly everyone does something in a day


def test_province_location_visits_the_named_areas(province):
    events_path, reference_path = province
    reference = Reference.load(reference_path)
    areas = collections.Counter()
    for e in _events(events_path):
        if e.__struct_config__.tag == "location":
            areas.update(reference.areas(e.cell))
    assert {"airport_t1", "metro", "cbd", "mall", "stadium", "university"} <= set(areas)


def test_reference_loads_and_the_catalogue_binds_to_it(province):
    _, reference_path = province
    reference = Reference.load(reference_path)
    plan = compile_plan([p for p in CATALOGUE if p.name != "policy.kairos"])
    Engine(plan, reference, sink=lambda s: None)  # raises BindError on a missing list or area
    assert 600 == len(reference.tags)
    assert {"plan_type", "arpu_band", "churn_score", "churn_risk", "video_pack", "music_pack", "months_over_plan",
            "has_app", "handset_os"} <= set(reference.tags["13800000000"])
    assert {"dnd", "blacklist", "dual_sim", "complaint_prone", "low_spend_whitelist", "customer_service",
            "competitor_hotlines"} <= set(reference.lists)


def test_reference_shares_are_realistic(tmp_path):
    traffic.make_reference(tmp_path, 10_000, seed=1)
    reference = Reference.load(tmp_path)
    share = {name: len(reference.lists[name]) / 10_000 for name in ("dnd", "blacklist", "dual_sim", "complaint_prone")}
    assert 0.02 < share["dnd"] < 0.04
    assert 0.002 < share["blacklist"] < 0.01
    assert 0.03 < share["dual_sim"] < 0.05
    assert 0.04 < share["complaint_prone"] < 0.06
    without_plan = sum("data_plan" not in t for t in reference.tags.values()) / 10_000
    assert 0.05 < without_plan < 0.11
    prepaid = sum(t["plan_type"] == "prepaid" for t in reference.tags.values()) / 10_000
    assert 0.35 < prepaid < 0.45


def _sends_in_a_day(scn: Scenario) -> bool:
    """A scenario that can send within the generated day (Monday 23 November): not set alone, not a weekly
    or monthly schedule (their first instants are on the 30th and the 1st), and not commuter_pack, which
    reads the home and work cells the weekly schedules write."""
    return bool(scn.actions) and scn.name != "commuter_pack" and not (
        isinstance(scn.pattern, Schedule) and scn.pattern.period != "day")


def test_a_generated_day_sends_for_most_of_the_catalogue_and_floods_none(tmp_path):
    """Most scenarios that can send in a day find someone; none reaches more than a tenth of the base."""
    n = 1500
    traffic.make_reference(tmp_path / "ref", n, seed=7)
    traffic.write(tmp_path / "events.jsonl", subscribers=n, hours=24, seed=7, mix="province")
    plan = compile_plan([p for p in CATALOGUE if p.name != "policy.kairos"])
    reference = Reference.load(tmp_path / "ref")
    reached: dict[str, set[str]] = collections.defaultdict(set)

    def make(sink):
        def keep(send):
            reached[send.scenario].add(send.msisdn)
            sink(send)

        return Engine(plan, reference, sink=keep)

    with open(tmp_path / "events.jsonl", "rb") as events, open(tmp_path / "sends.jsonl", "wb") as out:
        replay(make, events, out)
    names = [s.name for s in plan.scenarios if _sends_in_a_day(s)]
    assert len(set(reached) & set(names)) >= 0.6 * len(names), f"only {sorted(reached)} sent"
    flooding = {k: len(v) for k, v in reached.items() if len(v) > 0.10 * n}
    assert {} == flooding


def test_w1_is_dpi_only_with_app_and_category_and_a_quarter_video(w1):
    events = _events(w1)
    assert 200_000 == len(events)
    assert {"dpi"} == {e.__struct_config__.tag for e in events}
    assert all(e.app is not None and e.category is not None for e in events)
    video = sum(e.category == "video" for e in events) / len(events)
    assert abs(video - 0.25) < 0.01
    ts = [e.ts for e in events]
    assert ts == sorted(ts) and START <= ts[0] and ts[-1] < START + HOUR


def test_w1_activity_follows_zipf_1_2(w1):
    counts = np.array(sorted(collections.Counter(e.msisdn for e in _events(w1)).values(), reverse=True))
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert abs(slope + 1.2) < 0.15
    top = counts[: len(counts) // 100].sum() / counts.sum()
    assert top > 0.5  # the busiest 1 % of active subscribers carry most of the traffic


def test_w1_heavy_users_fire_the_video_burst_scenario(w1, tmp_path):
    scenario = tmp_path / "w1.kairos"
    scenario.write_text(
        'scenario w1\n  when count(dpi where category == "video") >= 20 within 10m\n  cooldown 60m\n'
        '  then sms "offer.video_pack"\nend\n'
    )
    plan = compile_plan([scenario])
    with open(w1, "rb") as events, open(tmp_path / "sends.jsonl", "wb") as out:
        report = replay(lambda sink: Engine(plan, Reference(), sink=sink), events, out)
    per_sub = collections.Counter(e.msisdn for e in _events(w1))
    busiest = [m for m, _ in per_sub.most_common(200)]
    sent_to = {orjson.loads(line)["msisdn"] for line in (tmp_path / "sends.jsonl").read_bytes().splitlines()}
    assert set(busiest[:10]) <= sent_to  # the heaviest users burst,
    assert sent_to <= set(busiest)  # and only heavy users do
    assert len(sent_to) == report.sends  # an hour of traffic and a 60 min cool-down: one each


def test_the_command_line_writes_the_file_and_the_reference(tmp_path, capsys):
    status = traffic.main(["--mix", "w1", "--subscribers", "100", "--events", "1000", "--seed", "2",
                           "--out", str(tmp_path / "w1.jsonl"), "--reference", str(tmp_path / "ref")])
    assert 0 == status
    assert 1000 == len((tmp_path / "w1.jsonl").read_bytes().splitlines())
    assert (tmp_path / "ref" / "tags.jsonl").is_file()
    assert "1,000 w1 events" in capsys.readouterr().err


def test_the_command_line_refuses_events_for_the_province_mix(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        traffic.main(["--mix", "province", "--events", "10", "--out", str(tmp_path / "x")])
    assert 2 == e.value.code
    assert "--events applies to --mix w1 only" in capsys.readouterr().err


def test_an_impossible_subscriber_count_is_refused_with_the_range(tmp_path):
    with pytest.raises(ValueError, match="subscribers must be 1 to 99 999 999"):
        traffic.write(tmp_path / "x", subscribers=0, mix="w1")


def test_province_from_hour_gives_that_hour_of_the_day(tmp_path):
    traffic.write(tmp_path / "peak.jsonl", subscribers=500, hours=1, from_hour=20, seed=4, mix="province")
    ts = [e.ts for e in _events(tmp_path / "peak.jsonl")]
    assert START + 20 * HOUR <= min(ts) and max(ts) < START + 21 * HOUR
    assert len(ts) > 500 * 4  # the evening peak: several events per subscriber in the hour


@pytest.fixture(scope="module")
def day_by_subscriber(tmp_path_factory) -> tuple[dict[str, list], Reference]:
    """A day for 2 000 subscribers, each subscriber's events in time order."""
    root = tmp_path_factory.mktemp("day")
    traffic.make_reference(root / "ref", 2000, seed=9)
    traffic.write(root / "events.jsonl", subscribers=2000, hours=24, seed=9, mix="province")
    reference = Reference.load(root / "ref")
    by_sub: dict[str, list] = collections.defaultdict(list)
    for e in _events(root / "events.jsonl"):
        if getattr(e, "host", None) is not None and e.category is None:
            label = reference.kb.label(e.host)
            e.category, e.app = (label[1], label[0]) if label else (None, None)
        by_sub[e.msisdn].append(e)
    return by_sub, reference


def _tag(e) -> str:
    return e.__struct_config__.tag


def test_airport_has_travellers_dwelling_20_minutes_and_drop_offs_who_leave_sooner(day_by_subscriber):
    by_sub, reference = day_by_subscriber
    airport = {"airport_t1", "airport_t2"}
    stays = []
    for events in by_sub.values():
        entered = None
        for e in events:
            inside = _tag(e) == "location" and bool(reference.areas(e.cell) & airport)
            leaves = (_tag(e) == "location" and not inside) or (_tag(e) == "power" and e.state == "off")
            if inside and entered is None:
                entered = e.ts
            elif leaves and entered is not None:
                stays.append(e.ts - entered)
                entered = None
    long_ = sum(s >= 20 * 60_000 for s in stays)
    short = sum(s < 20 * 60_000 for s in stays)
    assert long_ >= 5 and short >= 5


def test_dropped_calls_come_in_runs_of_three_for_a_few_and_two_for_more(day_by_subscriber):
    by_sub, _ = day_by_subscriber
    most_in_an_hour = []
    for events in by_sub.values():
        dropped = [e.ts for e in events if _tag(e) == "call" and e.dropped]
        best = max((sum(1 for u in dropped if t <= u <= t + HOUR) for t in dropped), default=0)
        most_in_an_hour.append(best)
    three = sum(n >= 3 for n in most_in_an_hour)
    two = sum(n == 2 for n in most_in_an_hour)
    assert 5 <= three < 0.05 * 2000
    assert two > three


def test_usage_crosses_90_for_some_and_stops_just_short_for_others(day_by_subscriber):
    by_sub, _ = day_by_subscriber
    crossed = short = 0
    for events in by_sub.values():
        pct = [e.pct for e in events if _tag(e) == "usage"]
        if any(a < 90 <= b for a, b in pairwise(pct)):
            crossed += 1
        elif pct and 85 <= max(pct) < 90:
            short += 1
    assert crossed >= 10 and short >= 10


def test_prepaid_balances_fall_under_10_for_some_and_stop_just_above_for_others(day_by_subscriber):
    by_sub, _ = day_by_subscriber
    under = above = 0
    for events in by_sub.values():
        amounts = [e.amount for e in events if _tag(e) == "balance"]
        if any(a >= 10 > b for a, b in pairwise(amounts)):
            under += 1
        elif amounts and 10 <= min(amounts) < 11:
            above += 1
    assert under >= 10 and above >= 5


def test_handset_review_pages_two_within_5_minutes_for_some_one_page_for_others(day_by_subscriber):
    by_sub, _ = day_by_subscriber
    twice = once = 0
    for events in by_sub.values():
        reviews = [(e.ts, e.app) for e in events if _tag(e) == "dpi" and e.category == "handset_review"]
        if any(b[0] - a[0] <= 5 * 60_000 and a[1] == b[1] for a, b in pairwise(reviews)):
            twice += 1
        elif len(reviews) == 1:
            once += 1
    assert twice >= 5 and once >= 5
