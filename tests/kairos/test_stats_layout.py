"""``kairos replay --stats`` fits a 100-column terminal and keeps every number.

The counts per scenario and channel come as a table of matched, sent and
suppressed (long reasons wrap under their column), then a table of feedback
and conversion with short heads and a legend; a table that still does not fit
(long scenario names, big numbers) goes on in a second one that repeats the
names.
"""

from __future__ import annotations

import subprocess
import sys

from kairos import main
from kairos._measure import Row, table
from tests.stats_text import stats_cells


def test_stats_of_the_catalogue_over_a_generated_day_fit_100_columns_with_every_column_there(tmp_path, capsys):
    subprocess.run([sys.executable, "-m", "kairos.traffic", "--subscribers", "300", "--hours", "24", "--seed", "5",
                    "--out", str(tmp_path / "day.jsonl"), "--reference", str(tmp_path / "ref")],
                   check=True, capture_output=True)
    capsys.readouterr()
    assert main(["replay", "--scenarios", "scenarios", "--reference", str(tmp_path / "ref"), "--quiet",
                 "--events", str(tmp_path / "day.jsonl"), "--out", str(tmp_path / "sends.jsonl"), "--stats"]) == 0
    text = capsys.readouterr().err
    assert [] == [line for line in text.splitlines() if len(line) > 100]
    cells = stats_cells(text)
    total = next(c for (_, channel), c in cells.items() if channel == "all" and c["sent"] != "0")
    assert {"matched", "sent", "control", "suppressed (reason count)", "delivered", "clicked", "accepted",
            "rejected", "conversion", "ctl conv", "uplift"} <= set(total)


def test_a_table_too_wide_for_100_columns_goes_on_in_a_second_one_that_repeats_the_names():
    name = "a_scenario_with_a_name_as_long_as_a_sentence_of_its_own"
    rows = [Row(name, "all", matched=123_456_789, triggered=123_456_789, sent=12_345_678, delivered=12_345_678,
                clicked=1_234_567, accepted=1_234_567, rejected=1_234_567, control=1_234_567, control_accepted=12_345,
                suppressed={"cooldown": 100_000_000, "audience": 9_876_543, "exclude": 1, "cap": 2,
                            "control": 1_234_567}),
            Row(name, "sms", sent=12_345_678, delivered=12_345_678, clicked=1_234_567, accepted=1_234_567)]
    text = table(rows, "unmatched feedback: 0")
    assert [] == [line for line in text.splitlines() if len(line) > 100]
    feedback = text.split("Feedback and conversion:\n")[1]
    assert sum(1 for line in feedback.splitlines() if line.startswith("scenario ")) >= 2
    cells = stats_cells(text)
    assert {"matched": "123,456,789", "sent": "12,345,678", "control": "1,234,567",
            "suppressed (reason count)": "cooldown 100,000,000, audience 9,876,543, exclude 1, cap 2, "
                                         "control 1,234,567",
            "delivered": "12,345,678", "clicked": "1,234,567", "accepted": "1,234,567", "rejected": "1,234,567",
            "conversion": "10.0%", "ctl conv": "1.0%", "uplift": "+9.0 pp"} == cells[(name, "all")]
    assert {"sent": "12,345,678", "control": "", "delivered": "12,345,678",
            "clicked": "1,234,567", "accepted": "1,234,567", "rejected": "0", "conversion": "10.0%",
            "ctl conv": "", "uplift": ""} == {k: v for k, v in cells[(name, "sms")].items() if k != "matched"}
