"""What a reader of ``--stats`` and ``--report`` sees: nothing that misleads.

Without any ``feedback`` in the input, conversion and uplift are unknown, not
0 %; up to 30 scenarios each get a colour of their own (beyond, the smallest
share one "other" colour); a long name or tag value is cut with an ellipsis and
keeps its whole text in a title; the time axis' labels stay a label apart; a
funnel from a million matches to two clicks shows every stage.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from pathlib import Path

from kairos import main
from kairos._measure import Row
from kairos._report import OTHERS, Series, render
from kairos.engine import LocalTime
from tests.stats_text import stats_cells as cells_of

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
HOUR = 3_600_000


def workspace(tmp_path: Path, scenarios: int, *, name: str = "s{k:02d}", hours: int = 1) -> Path:
    """``scenarios`` scenarios, the k-th sending to every call of at least k seconds (so the later ones
    send less), and one call per second of duration 0…scenarios, a subscriber each, over ``hours``."""
    (tmp_path / "many.kairos").write_text("".join(
        f'scenario {name.format(k=k)}\n  when call where duration_s >= {k}\n  then sms "offer.x"\nend\n\n'
        for k in range(scenarios)))
    spread = hours * HOUR // (scenarios + 1)
    with open(tmp_path / "events.jsonl", "w") as f:
        for d in range(scenarios + 1):
            for copy in range(3):
                f.write(json.dumps({"type": "call", "ts": T0 + d * spread + copy, "msisdn": f"1380000{d:02d}{copy}",
                                    "direction": "mo", "duration_s": d, "peer": "13900000000"}) + "\n")
    return tmp_path


def replay(tmp_path: Path, capsys, *extra: str, events: str = "events.jsonl") -> tuple[str, str]:
    """(the --stats table, the --report page) of a replay of ``events``."""
    capsys.readouterr()
    assert main(["replay", "--scenarios", str(tmp_path / "many.kairos"), "--events", str(tmp_path / events),
                 "--out", str(tmp_path / "sends.jsonl"), "--quiet", "--stats",
                 "--report", str(tmp_path / "report.html"), *extra]) == 0
    return capsys.readouterr().err, (tmp_path / "report.html").read_text()


def stats_cells(table: str, scenario: str) -> dict[str, str]:
    """The scenario's cells of the --stats tables (all channels), by column."""
    return cells_of(table)[(scenario, "all")]


def test_without_feedback_in_the_input_conversion_and_uplift_read_no_feedback_not_zero(tmp_path, capsys):
    table, page = replay(workspace(tmp_path, 3), capsys)
    cells = stats_cells(table, "s00")
    assert cells["sent"] == "12" and cells["conversion"] == "n/a"
    assert "0.0%" not in table
    assert "conv, ctl conv, uplift: n/a, no feedback in the input" in table
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "0.0%" not in text
    assert re.search(r"no feedback in the input\s+offers accepted\s+no feedback in the input\s+conversion", text)
    funnel = text[text.index("From match to conversion"):text.index("Why matches were not sent")]
    for stage in ("delivered", "clicked", "accepted (converted)"):
        assert re.search(stage.replace("(", r"\(").replace(")", r"\)") + r"\s+no feedback in the input", funnel)


def test_with_feedback_in_the_input_conversion_is_a_percentage(tmp_path, capsys):
    root = workspace(tmp_path, 3)
    replay(root, capsys)
    sends = [json.loads(line) for line in (root / "sends.jsonl").read_text().splitlines()]
    first = next(s for s in sends if s["scenario"] == "s00")
    answer = {"type": "feedback", "ts": first["ts"] + 60_000, "msisdn": first["msisdn"], "trigger_id": first["id"],
              "scenario": "s00", "channel": "sms", "outcome": "accepted"}
    events = (root / "events.jsonl").read_text().splitlines() + [json.dumps(answer)]
    (root / "answered.jsonl").write_text("\n".join(sorted(events, key=lambda e: json.loads(e)["ts"])) + "\n")
    table, page = replay(root, capsys, events="answered.jsonl")
    assert stats_cells(table, "s00")["conversion"] == "8.3%"  # 1 of 12
    assert stats_cells(table, "s01")["conversion"] == "0.0%"  # feedback came, none for s01: nobody took its offer
    assert "no feedback in the input" not in table and "n/a" not in table
    assert "no feedback in the input" not in page
    assert re.search(r"<b>\d+\.\d%</b><span>conversion", page)


def lab(colour: str) -> tuple[float, float, float]:
    """CIELAB (D65) of ``#rrggbb``."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    x, y, z = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b,
               (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116
    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def legend(page: str) -> list[tuple[str, str, str]]:
    """(colour, text, title) of each entry of the page's first legend."""
    block = re.search(r"<div class=legend>(.*?)</div>", page).group(1)
    return [(c, html.unescape(t), html.unescape(title)) for title, c, t in
            re.findall(r'<span title="([^"]*)"><i style="background:(#[0-9a-f]{6})"></i>(.*?)</span>', block)]


def test_thirty_scenarios_get_thirty_clearly_different_colours(tmp_path, capsys):
    _, page = replay(workspace(tmp_path, 30), capsys)
    entries = legend(page)
    assert sorted(t for _, t, _ in entries) == [f"s{k:02d}" for k in range(30)]
    colours = [c for c, _, _ in entries]
    assert len(set(colours)) == 30 and OTHERS not in colours
    closest = min(math.dist(lab(a), lab(b)) for a, b in itertools.combinations(colours + [OTHERS], 2))
    assert closest >= 25  # CIELAB ΔE: 2.3 is barely noticeable side by side; 25 tells a legend's squares apart
    chart = page[page.index("<svg"):page.index("</svg>")]
    assert set(re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"', chart)) == set(colours)


def test_beyond_thirty_scenarios_the_smallest_share_one_other_colour(tmp_path, capsys):
    _, page = replay(workspace(tmp_path, 33), capsys)
    entries = legend(page)
    assert [t for _, t, _ in entries[:29]] == [f"s{k:02d}" for k in range(29)]  # the 29 that sent most
    assert len({c for c, _, _ in entries[:29]}) == 29
    colour, text, title = entries[29]
    assert (colour, text) == (OTHERS, "4 other scenarios (42 sent)")  # s29…s32 send 15, 12, 9, 6
    assert title == "s29 (15), s30 (12), s31 (9), s32 (6)"
    assert len(entries) == 30


def test_a_long_scenario_name_is_cut_in_the_legend_and_kept_whole_in_its_title(tmp_path, capsys):
    long = "s{k:02d}_prepaid_subscribers_whose_data_allowance_runs_out_before_the_month_ends"
    _, page = replay(workspace(tmp_path, 2, name=long), capsys)
    entries = legend(page)
    whole = long.format(k=0)
    colour, text, title = next(e for e in entries if e[2].startswith(whole + ":"))
    assert text == whole[:27] + "…" and title == whole + ": 9 sent"


def test_a_long_tag_value_is_cut_in_the_chart_by_tag_and_kept_whole_in_its_title(tmp_path, capsys):
    root = workspace(tmp_path, 1)
    value = "Inner Mongolia Autonomous Region, Hulunbuir prefecture"
    (root / "ref").mkdir()
    (root / "ref" / "tags.jsonl").write_text("".join(
        json.dumps({"msisdn": f"1380000{d:02d}{c}", "tags": {"region": value if d % 2 else "north"}}) + "\n"
        for d in range(2) for c in range(3)))
    _, page = replay(root, capsys, "--reference", str(root / "ref"), "--by", "tags.region")
    section = page[page.index("<h2>By tags.region</h2>"):]
    names = re.findall(r'<span class=name title="([^"]*)">([^<]*)</span>', section)
    assert (html.escape(value), html.escape(value[:27] + "…")) in names
    assert ("north", "north") in names


def test_the_time_axis_writes_labels_a_label_apart_and_none_cut_at_the_edge(tmp_path, capsys):
    _, page = replay(workspace(tmp_path, 2, hours=72), capsys)  # 72 bars of an hour
    chart = page[page.index("<svg"):page.index("</svg>")]
    width = int(re.search(r'viewBox="0 0 (\d+)', chart).group(1))
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" class=axis text-anchor=middle>', chart)]
    assert len(xs) >= 6
    assert min(b - a for a, b in itertools.pairwise(xs)) >= 75  # a label ("Mon 14:00", 12 px) is about 66 wide
    assert max(xs) + 35 <= width


def funnel_bars(page: str) -> dict[str, tuple[float, str]]:
    """stage → (its bar's length as a fraction of the longest, the value written after it)."""
    funnel = page[page.index("From match to conversion"):page.index("Why matches were not sent")]
    return {html.unescape(label): (float(w), value) for label, w, value in re.findall(
        r'<span class=name title="([^"]*)">[^<]*</span><span class=track><i[^>]* style="--w:([\d.]+);[^"]*">'
        r'</i><b>([\d,]+)</b>', funnel)}


def page_of(row: Row) -> str:
    return render([row], Series(LocalTime("UTC")), title="t", subtitle="s")


def test_a_funnel_from_a_million_to_two_shows_every_stage_on_a_log_scale():
    page = page_of(Row("s", "all", matched=1_000_000, triggered=1_000, sent=300, delivered=280, clicked=2, accepted=1))
    bars = funnel_bars(page)
    assert [v for _, v in bars.values()] == ["1,000,000", "1,000", "300", "280", "2", "1"]
    assert bars["matched (pattern seen)"][0] == 1.0
    assert all(w >= 0.1 for w, _ in bars.values())  # on a linear scale, 300 would be 0.0003 of the bar
    assert "300</b> <small>30% of passed</small>" in page and "2</b> <small>0.71% of delivered</small>" in page
    assert "logarithmic scale" in page


def test_a_funnel_of_similar_numbers_is_drawn_to_a_linear_scale():
    page = page_of(Row("s", "all", matched=1_000, triggered=800, sent=600, delivered=500, clicked=100, accepted=50))
    bars = funnel_bars(page)
    assert bars["sent"] == (0.6, "600") and bars["accepted (converted)"] == (0.05, "50")
    assert "logarithmic" not in page


def test_the_time_chart_grid_reads_round_numbers_above_the_tallest_bar(tmp_path, capsys):
    _, page = replay(workspace(tmp_path, 30, hours=1), capsys)  # 31 calls of ≥ 0 s … 1 of ≥ 29 s, thrice
    chart = page[page.index("<svg"):page.index("</svg>")]
    grid = [int(v.replace(",", "")) for v in re.findall(r"class=axis text-anchor=end>([\d,]+)</text>", chart)]
    tallest = sum(3 * (31 - k) for k in range(30))  # every send in the one hour: 1,485
    assert grid == [0, 400, 800, 1200, 1600] and grid[-1] >= tallest
