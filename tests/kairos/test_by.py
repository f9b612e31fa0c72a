"""``kairos replay --stats/--report --by tags.NAME``: the counts per scenario grouped by a subscriber's tag.

A generated day over the bundled catalogue (with its policy), its reference
data given a ``region`` and a ``brand`` (some subscribers have no region): the
grouped counts add up to the per-scenario totals, the HTML report shows them,
and several workers or a partitioned log give the same numbers as one process.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kairos import main
from tests.stats_text import stats_cells

REPO = Path(__file__).resolve().parents[2]
REGIONS = ("north", "south", "east", None)  # None: no region tag, shown as (none)
BRANDS = ("gotone", "mzone", "easyown")
T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """(folder, the replay arguments up to the output options) for a generated day of 600 subscribers."""
    root = tmp_path_factory.mktemp("by")
    subprocess.run([sys.executable, "-m", "kairos.traffic", "--subscribers", "600", "--hours", "24", "--seed", "3",
                    "--out", str(root / "day.jsonl"), "--reference", str(root / "ref")],
                   check=True, capture_output=True)
    rows = [json.loads(line) for line in (root / "ref" / "tags.jsonl").read_text().splitlines()]
    with open(root / "ref" / "tags.jsonl", "w") as f:
        for n, row in enumerate(rows):
            region = REGIONS[n % len(REGIONS)]
            row["tags"].pop("region", None)  # the generator's own region (a city) is replaced by these
            if region is not None:
                row["tags"]["region"] = region
            row["tags"]["brand"] = BRANDS[n % len(BRANDS)]
            f.write(json.dumps(row) + "\n")
    scenarios = root / "scenarios"
    shutil.copytree(REPO / "scenarios", scenarios, ignore=shutil.ignore_patterns("reference"))
    return root, ["replay", "--scenarios", str(scenarios), "--reference", str(root / "ref"), "--quiet"]


def _stats(day, capsys, *extra: str, events: str = "day.jsonl") -> str:
    root, args = day
    capsys.readouterr()
    assert main(args + ["--events", str(root / events), "--out", str(root / "out.jsonl"), "--stats", *extra]) == 0
    return capsys.readouterr().err


def totals(text: str) -> dict[str, tuple[int, int, dict[str, int]]]:
    """scenario → (matched, sent, suppressed by reason) from the main --stats table."""
    return {scenario: (_n(cells["matched"]), _n(cells["sent"]), _reasons(cells["suppressed (reason count)"]))
            for (scenario, channel), cells in stats_cells(text).items() if channel == "all"}


def grouped(text: str) -> dict[str, dict[str, dict[str, tuple[int, int, dict[str, int]]]]]:
    """grouping label → scenario → value → (matched, sent, suppressed) from the --by tables, cut
    into columns where the dashes under their heads are."""
    out: dict[str, dict[str, dict[str, tuple[int, int, dict[str, int]]]]] = {}
    for block in text.split("\nby ")[1:]:
        lines = block.splitlines()
        spans = [m.span() for m in re.finditer(r"-+", lines[2])]
        table: dict[str, dict[str, tuple[int, int, dict[str, int]]]] = out.setdefault(lines[0], {})
        scenario = value = ""
        for line in lines[3:]:
            if not line.strip():
                break
            cells = [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0]:].strip()]
            if not any(cells[:-1]):  # the reasons of the row above, wrapped
                matched, sent, reasons = table[scenario][value]
                table[scenario][value] = (matched, sent, reasons | _reasons(cells[-1]))
                continue
            scenario = cells[0] or scenario
            value = cells[1]
            table.setdefault(scenario, {})[value] = (_n(cells[2]), _n(cells[3]), _reasons(cells[-1]))
    return out


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def _reasons(text: str) -> dict[str, int]:
    text = text.strip().rstrip(",")
    if text in ("", "-"):
        return {}
    return {k: _n(v) for k, v in (item.rsplit(" ", 1) for item in text.split(", "))}


def _sum(by: dict[str, tuple[int, int, dict[str, int]]]) -> tuple[int, int, dict[str, int]]:
    reasons: dict[str, int] = {}
    for _, _, r in by.values():
        for k, v in r.items():
            reasons[k] = reasons.get(k, 0) + v
    return sum(m for m, _, _ in by.values()), sum(s for _, s, _ in by.values()), reasons


def test_stats_by_region_splits_each_scenarios_matched_suppressed_and_sent_and_adds_up_to_its_totals(day, capsys):
    text = _stats(day, capsys, "--by", "tags.region")
    total = totals(text)
    tables = grouped(text)
    assert list(tables) == ["tags.region"]
    by_region = tables["tags.region"]
    matched = {name for name, (m, _, _) in total.items() if m}
    assert set(by_region) == matched and len(matched) > 5  # every scenario that matched, none other
    for scenario, by in by_region.items():
        assert _sum(by) == total[scenario], scenario
        assert set(by) <= {"north", "south", "east", "(none)"}
    assert any("(none)" in by for by in by_region.values())  # a subscriber without the tag is counted
    assert sum(s for by in by_region.values() for _, s, _ in by.values()) > 0


def test_two_by_options_give_one_table_per_tag_each_adding_up_to_the_totals(day, capsys):
    text = _stats(day, capsys, "--by", "tags.region", "--by", "tags.brand")
    total = totals(text)
    tables = grouped(text)
    assert list(tables) == ["tags.region", "tags.brand"]
    for scenario in tables["tags.brand"]:
        assert set(tables["tags.brand"][scenario]) <= set(BRANDS)
        assert _sum(tables["tags.brand"][scenario]) == _sum(tables["tags.region"][scenario]) == total[scenario]


def test_tags_joined_by_a_comma_give_one_table_by_their_combination(day, capsys):
    text = _stats(day, capsys, "--by", "tags.region,tags.brand")
    total = totals(text)
    table = grouped(text)["tags.region × tags.brand"]
    pairs = {v for by in table.values() for v in by}
    assert {p.split(" / ")[1] for p in pairs} <= set(BRANDS)
    assert len({p.split(" / ")[0] for p in pairs}) == 4  # three regions and (none)
    for scenario, by in table.items():
        assert _sum(by) == total[scenario]


def test_the_stats_tables_fit_a_100_column_terminal(day, capsys):
    text = _stats(day, capsys, "--by", "tags.region", "--by", "tags.region,tags.brand,tags.plan_type")
    grouped_part = text[text.index("Grouped by"):]
    assert max(len(line) for line in grouped_part.splitlines()) <= 100


def test_the_html_report_has_a_chart_and_a_table_per_grouping_with_the_numbers_of_stats(day, capsys):
    root, _ = day
    text = _stats(day, capsys, "--by", "tags.region", "--by", "tags.brand", "--report", str(root / "by.html"))
    page = (root / "by.html").read_text()
    assert "<script" not in page and "http://" not in page
    assert page.count('<div class="chart') == 3 + 2  # the report's three charts and one per grouping
    assert "<h2>By tags.region</h2>" in page and "<h2>By tags.brand</h2>" in page
    from_stats = grouped(text)["tags.region"]
    section = page[page.index("<h2>By tags.region</h2>"):page.index("<h2>By tags.brand</h2>")]
    rows = {}
    scenario = ""
    for tr in re.findall(r"<tr class=\"(?:first|more)\">(.*?)</tr>", section):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", tr)]
        scenario = cells[0] or scenario
        rows[(scenario, cells[1])] = (_n(cells[2]), _n(cells[3]), _reasons(cells[-1]))
    assert rows == {(s, v): c for s, by in from_stats.items() for v, c in by.items()}


@pytest.mark.parametrize("workers", [2, 3])
def test_several_workers_give_one_processs_stats_by_tag_and_report(day, capsys, workers):
    root, _ = day
    by = ["--by", "tags.region", "--by", "tags.brand,tags.region"]
    one = _stats(day, capsys, *by, "--report", str(root / "one.html"))
    sends = (root / "out.jsonl").read_bytes()
    many = _stats(day, capsys, *by, "--report", str(root / "many.html"), "--workers", str(workers))
    assert many == one
    assert (root / "out.jsonl").read_bytes() == sends
    assert (root / "many.html").read_text() == (root / "one.html").read_text()


def test_a_partitioned_log_gives_the_unsplit_files_stats_by_tag(day, capsys):
    root, _ = day
    one = _stats(day, capsys, "--by", "tags.region")
    assert main(["split", "--events", str(root / "day.jsonl"), "--partitions", "4", "--out", str(root / "log")]) == 0
    for workers in ("1", "2"):
        assert _stats(day, capsys, "--by", "tags.region", "--workers", workers, events="log") == one
    assert main(["split", "--events", str(root / "day.jsonl"), "--partitions", "1", "--out", str(root / "one")]) == 0
    assert _stats(day, capsys, "--by", "tags.region", "--workers", "2", events="one") == one  # no engine here


def test_grouping_changes_no_send(day, capsys):
    root, _ = day
    _stats(day, capsys)
    plain = (root / "out.jsonl").read_bytes()
    _stats(day, capsys, "--by", "tags.region")
    assert (root / "out.jsonl").read_bytes() == plain


@pytest.mark.parametrize(("by", "says"), [
    ("plan", "--by plan: group by a subscriber tag, written tags.NAME (did you mean --by tags.plan?)"),
    ("region", "(did you mean --by tags.region?)"),
    ("tags.", "--by tags.: group by a subscriber tag, written tags.NAME"),
    ("tags.regoin", "--by tags.regoin: no subscriber has a tag 'regoin' in the reference data (tags.jsonl) and "
                    "no scenario reads or writes it (did you mean --by tags.region?); the known tags are: alert_pct,"),
    ("tags.zzz", "no scenario reads or writes it; the known tags are: alert_pct, arpu_band, bill_day, bill_due,"),
    ("tags.region,", "--by tags.region,: group by a subscriber tag, written tags.NAME"),
])
def test_a_by_that_names_no_known_tag_is_refused_saying_what_to_write(day, capsys, by, says):
    root, args = day
    capsys.readouterr()
    code = main(args + ["--events", str(root / "day.jsonl"), "--out", str(root / "x.jsonl"), "--stats", "--by", by])
    assert code == 2
    err = capsys.readouterr().err
    assert says in err
    assert err.startswith("kairos replay: ")


def test_by_without_stats_or_report_is_refused(day, capsys):
    root, args = day
    capsys.readouterr()
    assert main(args + ["--events", str(root / "day.jsonl"), "--by", "tags.region"]) == 2
    assert "--by groups the counts of --stats and --report" in capsys.readouterr().err


def test_a_tag_only_a_scenario_reads_may_be_grouped_by(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text('scenario low\n  audience tags.segment != "vip"\n'
                                       '  when balance where amount < 10\n  then sms "offer.topup"\nend\n')
    (tmp_path / "e.jsonl").write_text(json.dumps({"type": "balance", "ts": T0, "msisdn": "1", "amount": 5}) + "\n")
    assert main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", str(tmp_path / "e.jsonl"),
                 "--out", str(tmp_path / "o.jsonl"), "--stats", "--by", "tags.segment", "--quiet"]) == 0
    assert grouped(capsys.readouterr().err) == {"tags.segment": {"low": {"(none)": (1, 1, {})}}}


def test_a_tag_named_only_in_a_scenarios_comment_is_not_a_known_tag(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text('# groups by tags.segment one day\nscenario low\n'
                                       '  audience tags.plan != "vip#1"  # tags.tier too\n'
                                       '  when balance where amount < 10\n  then sms "offer.topup"\nend\n')
    (tmp_path / "e.jsonl").write_text(json.dumps({"type": "balance", "ts": T0, "msisdn": "1", "amount": 5}) + "\n")
    args = ["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", str(tmp_path / "e.jsonl"),
            "--out", str(tmp_path / "o.jsonl"), "--stats", "--quiet"]
    for commented in ("tags.segment", "tags.tier"):
        capsys.readouterr()
        assert main(args + ["--by", commented]) == 2
        assert "the known tags are: plan\n" in capsys.readouterr().err
    assert main(args + ["--by", "tags.plan"]) == 0


def test_a_match_is_counted_under_the_tag_value_the_subscriber_had_when_it_matched(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text('scenario low\n  when balance where amount < 10\n  then sms "offer.topup"\nend\n'
                                       'scenario vip_low\n  audience tags.region == "north"\n'
                                       '  when balance where amount < 5\n  then sms "offer.topup"\nend\n')
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "tags.jsonl").write_text(json.dumps({"msisdn": "1", "tags": {"region": "north"}}) + "\n")
    events = [{"type": "balance", "ts": T0, "msisdn": "1", "amount": 4},
              {"type": "profile", "ts": T0 + 1, "msisdn": "1", "tags": {"region": "south"}},
              {"type": "balance", "ts": T0 + 2, "msisdn": "1", "amount": 3},
              {"type": "profile", "ts": T0 + 3, "msisdn": "1", "tags": {"region": None}},
              {"type": "balance", "ts": T0 + 4, "msisdn": "1", "amount": 9}]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", str(tmp_path / "e.jsonl"),
                 "--reference", str(ref), "--out", str(tmp_path / "o.jsonl"), "--stats", "--by", "tags.region",
                 "--quiet"]) == 0
    assert grouped(capsys.readouterr().err)["tags.region"] == {
        "low": {"north": (1, 1, {}), "south": (1, 1, {}), "(none)": (1, 1, {})},
        "vip_low": {"north": (1, 1, {}), "south": (1, 0, {"audience": 1})},
    }


def test_a_trigger_decided_later_counts_under_the_tag_its_match_had(tmp_path, capsys):
    """Arbitration holds a trigger for a minute; a profile event moves the subscriber meanwhile. The sent
    and the arbitration-suppressed trigger both count where their matches were: in the north."""
    (tmp_path / "s.kairos").write_text(
        'scenario low\n  priority 80\n  when balance where amount < 10\n  then sms "offer.topup"\nend\n'
        'scenario lower\n  priority 20\n  when balance where amount < 10\n  then sms "offer.topup"\nend\n')
    (tmp_path / "p.kairos").write_text("policy\n  arbitrate 1m\nend\n")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "tags.jsonl").write_text(json.dumps({"msisdn": "1", "tags": {"region": "north"}}) + "\n")
    events = [{"type": "balance", "ts": T0, "msisdn": "1", "amount": 4},
              {"type": "profile", "ts": T0 + 1_000, "msisdn": "1", "tags": {"region": "south"}},
              {"type": "balance", "ts": T0 + 120_000, "msisdn": "1", "amount": 50}]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--policy", str(tmp_path / "p.kairos"),
                 "--events", str(tmp_path / "e.jsonl"), "--reference", str(ref), "--out", str(tmp_path / "o.jsonl"),
                 "--stats", "--by", "tags.region", "--quiet"]) == 0
    assert grouped(capsys.readouterr().err)["tags.region"] == {
        "low": {"north": (1, 1, {})}, "lower": {"north": (1, 0, {"arbitration": 1})}}


def test_a_match_whose_set_writes_the_tag_counts_under_the_value_before_the_write(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text('scenario move\n  when balance where amount < 10\n'
                                       '  set tags.region = "south"\n  then sms "offer.topup"\nend\n')
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "tags.jsonl").write_text(json.dumps({"msisdn": "1", "tags": {"region": "north"}}) + "\n")
    events = [{"type": "balance", "ts": T0 + n, "msisdn": "1", "amount": 4} for n in range(2)]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", str(tmp_path / "e.jsonl"),
                 "--reference", str(ref), "--out", str(tmp_path / "o.jsonl"), "--stats", "--by", "tags.region",
                 "--quiet"]) == 0
    assert grouped(capsys.readouterr().err)["tags.region"] == {"move": {"north": (1, 1, {}), "south": (1, 1, {})}}


DAY = 86_400_000
HOUR = 3_600_000


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_scheduled_scenarios_matches_are_grouped_by_the_tag_at_each_instant(tmp_path, capsys, workers):
    (tmp_path / "s.kairos").write_text('scenario daily_hello\n  when every day at 10:00\n'
                                       '  then sms "offer.topup"\nend\n')
    ref = tmp_path / "ref"
    ref.mkdir()
    regions = {"1": "north", "2": "north", "3": "north", "4": "south", "5": "south", "6": None}
    (ref / "tags.jsonl").write_text("".join(
        json.dumps({"msisdn": m, "tags": {"brand": "mzone"} | ({"region": r} if r else {})}) + "\n"
        for m, r in regions.items()))
    # every subscriber is seen before the first instant: a worker that sees none of its subscribers until
    # after it would not fire it (the schedules' own matter, reported apart; here the grouping is tested)
    events = [{"type": "balance", "ts": T0 + 9 * HOUR, "msisdn": m, "amount": 50} for m in regions] + [
              {"type": "profile", "ts": T0 + 12 * HOUR, "msisdn": "1", "tags": {"region": "south"}},
              {"type": "balance", "ts": T0 + DAY + 11 * HOUR, "msisdn": "4", "amount": 50}]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", str(tmp_path / "e.jsonl"),
                 "--reference", str(ref), "--out", str(tmp_path / "o.jsonl"), "--stats", "--by", "tags.region",
                 "--quiet", "--workers", workers]) == 0
    text = capsys.readouterr().err
    assert totals(text)["daily_hello"][:2] == (12, 12)  # six subscribers, two instants
    assert grouped(text)["tags.region"] == {
        "daily_hello": {"north": (5, 5, {}), "south": (5, 5, {}), "(none)": (2, 2, {})}}
