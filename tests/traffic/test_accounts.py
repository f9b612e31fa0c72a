"""The generator over months: the tags the calendar scenarios read, service use that changes by month, bills.

The silent / low-use model (DOMAIN.md 14) needs subscribers who bought a
service and never use it, use it once or twice a month, or stop using it; the
periodic pushes (15) need contract ends and bill due dates; a personal alert
level (17) is a tag. These tests read what the generator wrote, as a scenario
would: the tags file, and DPI events labelled by the knowledge base.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import re
from pathlib import Path

import msgspec
import pytest

from kairos import traffic
from kairos.engine import Reference, event_union

LOCAL = dt.timezone(dt.timedelta(hours=8))
#: the value-added services (the has_SERVICE tags) and the app the knowledge base labels their hosts with
SERVICE_APPS = {"fetion": "fetion", "mailbox": "mail139", "reading": "migu_reading", "video": "migu_video",
                "games": "migu_games"}
FIRST_DAY = dt.date(2026, 9, 28)


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL).timestamp() * 1000)


@pytest.fixture(scope="module")
def months(tmp_path_factory) -> tuple[Path, Reference]:
    """28 September to 1 December 2026 (65 days) for 150 subscribers, with the reference as of the first day."""
    root = tmp_path_factory.mktemp("months")
    traffic.make_reference(root / "ref", 150, seed=5, start_ms=_ms(FIRST_DAY))
    traffic.write(root / "events.jsonl", subscribers=150, hours=65 * 24, seed=5, start_ms=_ms(FIRST_DAY))
    return root / "events.jsonl", Reference.load(root / "ref")


def _uses_by_month(path: Path, reference: Reference) -> dict[tuple[str, str], collections.Counter]:
    """(msisdn, service) → uses per local month "YYYY-MM", from DPI labelled by the knowledge base."""
    service_of = {app: name for name, app in SERVICE_APPS.items()}
    decoder = msgspec.json.Decoder(event_union())
    uses: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for line in path.read_bytes().splitlines():
        if b'"type":"dpi"' not in line:
            continue
        e = decoder.decode(line)
        label = reference.kb.label(e.host) if e.app is None else (e.app, e.category)
        if label is not None and label[0] in service_of:
            month = dt.datetime.fromtimestamp(e.ts / 1000, LOCAL).strftime("%Y-%m")
            uses[(e.msisdn, service_of[label[0]])][month] += 1
    return uses


def test_the_tags_hold_region_brand_services_contract_bill_and_alert_level(tmp_path):
    traffic.make_reference(tmp_path, 4000, seed=1)
    tags = Reference.load(tmp_path).tags
    assert 4000 == len(tags)
    assert {"guangzhou", "shenzhen"} <= {t["region"] for t in tags.values()}
    assert {"gotone", "mzone", "easyown"} == {t["brand"] for t in tags.values()}
    for name in SERVICE_APPS:
        share = sum(t.get(f"has_{name}") is True for t in tags.values()) / 4000
        assert 0.04 < share < 0.4, name
    start = dt.date(2026, 11, 23)  # the default first day
    ends = [dt.date.fromisoformat(t["contract_end"]) for t in tags.values() if "contract_end" in t]
    assert all(tags[m]["plan_type"] == "postpaid" for m, t in tags.items() if "contract_end" in t)
    assert any(start < e <= start + dt.timedelta(days=90) for e in ends)  # a reminder is due for some
    assert any(e <= start for e in ends) and any(e > start + dt.timedelta(days=90) for e in ends)
    billed = [t for t in tags.values() if "bill_day" in t]
    assert billed and all(t["plan_type"] == "postpaid" for t in billed)
    for t in billed:
        due = dt.date.fromisoformat(t["bill_due"])
        assert due.day == t["bill_day"] and start <= due < start + dt.timedelta(days=31)
    alert = [t["alert_pct"] for t in tags.values() if "alert_pct" in t]
    assert 0.05 < len(alert) / 4000 < 0.25 and set(alert) <= {50, 60, 70, 80}
    assert all("data_plan" in t for t in tags.values() if "alert_pct" in t)


def test_the_red_list_is_written_with_the_other_do_not_market_lists(tmp_path):
    traffic.make_reference(tmp_path, 10_000, seed=1)
    reference = Reference.load(tmp_path)
    assert 0.002 < len(reference.lists["redlist"]) / 10_000 < 0.01
    assert reference.lists["redlist"] <= set(reference.tags)


def test_the_date_tags_are_as_of_the_traffics_first_day(tmp_path):
    traffic.make_reference(tmp_path / "a", 300, seed=2, start_ms=_ms(dt.date(2026, 1, 10)))
    traffic.make_reference(tmp_path / "b", 300, seed=2, start_ms=_ms(dt.date(2026, 3, 10)))
    a, b = Reference.load(tmp_path / "a").tags, Reference.load(tmp_path / "b").tags
    moved = {m: (dt.date.fromisoformat(b[m]["contract_end"]) - dt.date.fromisoformat(a[m]["contract_end"])).days
             for m in a if "contract_end" in a[m]}
    assert moved and set(moved.values()) == {59}  # 10 January to 10 March
    assert all(dt.date.fromisoformat(t["bill_due"]) >= dt.date(2026, 3, 10) for t in b.values() if "bill_due" in t)


def test_only_subscribers_who_bought_a_service_use_it(months):
    path, reference = months
    uses = _uses_by_month(path, reference)
    assert uses
    assert all(reference.tags[m].get(f"has_{name}") is True for m, name in uses)


def test_silent_low_use_and_newly_silent_subscribers_appear_by_calendar_month(months):
    """October and November are whole months of the traffic; what the model's classes need is there."""
    path, reference = months
    uses = _uses_by_month(path, reference)
    bought = [(m, name) for m, t in reference.tags.items() for name in SERVICE_APPS if t.get(f"has_{name}")]
    per = {k: (uses[k]["2026-10"], uses[k]["2026-11"]) if k in uses else (0, 0) for k in bought}
    silent = [k for k, (oct_, nov) in per.items() if oct_ == 0 and nov == 0]
    low = [k for k, (oct_, nov) in per.items() if 1 <= oct_ < 3 and 1 <= nov < 3]
    newly_silent = [k for k, (oct_, nov) in per.items() if oct_ >= 3 and nov == 0]
    often = [k for k, (oct_, nov) in per.items() if oct_ >= 3 and nov >= 3]
    assert len(silent) >= 5 and len(low) >= 3 and len(newly_silent) >= 2
    assert len(often) > len(silent)  # most who bought a service use it


def test_a_bills_due_date_moves_to_the_next_month_at_the_end_of_its_day(months):
    path, reference = months
    moves: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for line in path.read_bytes().splitlines():
        if b'"bill_due"' in line:
            e = msgspec.json.decode(line)
            moves[e["msisdn"]].append((e["ts"], e["tags"]["bill_due"]))
    billed = {m: t for m, t in reference.tags.items() if "bill_day" in t}
    assert set(moves) == set(billed)
    for m, seen in moves.items():
        first_due = dt.date.fromisoformat(billed[m]["bill_due"])
        for k, (ts, due) in enumerate(seen):
            published = dt.datetime.fromtimestamp(ts / 1000, LOCAL)
            old_due = first_due if k == 0 else dt.date.fromisoformat(seen[k - 1][1])
            assert published.date() == old_due and published.hour == 23  # at the end of the due day
            new = dt.date.fromisoformat(due)
            assert new.day == billed[m]["bill_day"] and 28 <= (new - old_due).days <= 31


def test_the_days_before_the_months_were_added_are_unchanged():
    """The services, bills and tags added for the calendar scenarios come from their own random
    stream: the everyday province traffic and W1 are byte for byte what they were before
    (digests taken with the generator as it was; W1's decisions are the bench's checksum)."""
    import tempfile

    added = re.compile(rb'feixin\.10086|mail\.10086|read\.migu|miguvideo|migufun|"bill_due"')
    with tempfile.TemporaryDirectory() as tmp:
        traffic.write(Path(tmp) / "p", subscribers=300, hours=48, seed=11, mix="province")
        traffic.write(Path(tmp) / "w", subscribers=5000, events=50000, hours=1, seed=5, mix="w1")
        lines = (Path(tmp) / "p").read_bytes().splitlines(keepends=True)
        everyday = hashlib.sha256(b"".join(x for x in lines if not added.search(x))).hexdigest()[:24]
        w1 = hashlib.sha256((Path(tmp) / "w").read_bytes()).hexdigest()[:24]
    assert "0082050d0568b6a83df381c2" == everyday
    assert "a5ae04976a32fa3e6f80d969" == w1


def test_the_command_line_takes_days(tmp_path, capsys):
    out = tmp_path / "two.jsonl"
    assert 0 == traffic.main(["--subscribers", "50", "--days", "2", "--seed", "3", "--out", str(out)])
    ts = [msgspec.json.decode(x)["ts"] for x in out.read_bytes().splitlines()]
    assert traffic.DEFAULT_START_MS + 86_400_000 < max(ts) < traffic.DEFAULT_START_MS + 2 * 86_400_000
    assert "over 48 h" in capsys.readouterr().err


def test_the_command_line_refuses_days_with_hours(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        traffic.main(["--days", "2", "--hours", "5", "--out", str(tmp_path / "x")])
    assert 2 == e.value.code
    assert "not allowed with argument" in capsys.readouterr().err
