"""``kairos demo`` runs end to end with no setup and explains what it sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kairos._cli import main
from kairos._compile import compile_plan

CATALOGUE = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.kairos"))


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["demo", "--subscribers", "400", "--hours", "24", "--seed", "3", "--examples", "3"])
    return status, out.getvalue()


def test_demo_exits_0(demo_output):
    status, _ = demo_output
    assert 0 == status


def test_demo_prints_a_table_row_for_every_catalogue_scenario(demo_output):
    _, text = demo_output
    names = [s.name for s in compile_plan([p for p in CATALOGUE if p.name != "policy.kairos"]).scenarios]
    rows = {m.group(1) for m in re.finditer(r"^  ([a-z][a-z0-9_]*) +[\d,]+ +[\d,]+ ", text, re.M)}
    assert set(names) == rows


def test_demo_says_why_a_scenario_cannot_send_in_a_day(demo_output):
    from kairos.plan import Absence

    _, text = demo_output
    plan = compile_plan([p for p in CATALOGUE if p.name != "policy.kairos"])
    waiting = [s for s in plan.scenarios if isinstance(s.pattern, Absence) and s.pattern.within_ms > 86_400_000
               and s.pattern.first.event_type != "feedback"]
    assert waiting, "the catalogue has no scenario waiting days: this test needs another example"
    for scn in waiting:
        assert re.search(rf"^  {scn.name} .*waits \d+d: longer than the 1d generated$", text, re.M)


def test_demo_explains_example_sends_with_their_text_and_events(demo_output):
    _, text = demo_output
    examples = text.split("Example sends", 1)[1]
    sends = re.findall(r'^  \d\d:\d\d:\d\d  (sms|popup|call) "[a-z_.]+" to 138\d{8}   \[[a-z0-9_]+\]$', examples, re.M)
    assert 3 == len(sends)
    assert 3 == len(re.findall(r"^      text: \S", examples, re.M))
    assert re.search(r"^      \d\d:\d\d:\d\d  (location|dpi|call|usage|balance|attach|power) ", examples, re.M)


def test_demo_refuses_a_non_positive_span(capsys):
    assert 2 == main(["demo", "--hours", "0"])
    assert "--subscribers and --hours must be positive" in capsys.readouterr().err


def test_the_printed_commands_reproduce_the_demo_sends(demo_output, tmp_path, monkeypatch):
    from kairos import traffic

    _, text = demo_output
    sends = int(re.search(r"; ([\d,]+) sends$", text, re.M).group(1).replace(",", ""))
    generate = re.search(r"^  python -m kairos\.traffic (.*)$", text, re.M).group(1).split()
    replay = re.search(r"^  kairos replay (.*)$", text, re.M).group(1).split()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios").symlink_to(CATALOGUE[0].parent)
    assert 0 == traffic.main(generate)
    assert 0 == main(["replay", *replay])
    assert sends == len((tmp_path / "sends.jsonl").read_bytes().splitlines())


def test_demo_days_span_whole_days_and_the_printed_command_repeats_them(capsys):
    assert 0 == main(["demo", "--subscribers", "60", "--days", "2", "--seed", "1", "--examples", "0"])
    text = capsys.readouterr().out
    assert "Generating 2 days of traffic for 60 subscribers (seed 1) ..." in text
    assert re.search(r"^  python -m kairos\.traffic --mix province --subscribers 60 --days 2 --seed 1 ", text, re.M)


def test_demo_days_and_hours_together_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--days", "2", "--hours", "5"])
    assert 2 == e.value.code


def _rows(text: str) -> dict[str, str]:
    """The demo table's rows by scenario name."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^  ([a-z][a-z0-9_]*) +([\d,]+) +([\d,]+) .*$", text, re.M)}


def _matched(row: str) -> int:
    """A row's matched column."""
    return int(re.match(r"^  \S+ +([\d,]+)", row).group(1).replace(",", ""))


def _sent(row: str) -> int:
    """A row's sent column."""
    return int(re.match(r"^  \S+ +[\d,]+ +([\d,]+)", row).group(1).replace(",", ""))


def test_the_default_nine_days_show_the_weekly_scenarios_and_say_what_the_monthly_ones_need(capsys):
    """Monday 30 November 04:00 writes home and work cells from the week before. On 1 December the
    silent / low-use model has seen none of September (month(-3)), and newly silent none of October
    (month(-2)): rather than rows of zeros, the table names the month missing and the --days that reach
    the first day 1 which has it (1 February 2027; 1 January)."""
    assert 0 == main(["demo", "--subscribers", "300", "--seed", "3", "--examples", "0"])
    rows = _rows(capsys.readouterr().out)
    for weekly in ("home_cell", "work_cell"):
        written = re.search(r"tags written ([\d,]+)", rows[weekly])
        assert written and int(written.group(1).replace(",", "")) > 100, rows[weekly]
    monthly = [name for name in rows if name.endswith(("_silent", "_low_use"))]
    assert len(monthly) == 12
    for name in monthly:
        needs = ("month(-2): the first run that has some is Fri 01 Jan 2027 (--days 40)" if "newly" in name
                 else "month(-3): the first run that has some is Mon 01 Feb 2027 (--days 71)")
        assert rows[name].endswith(f"  needs traffic in {needs}") and _sent(rows[name]) == 0, rows[name]


def test_the_days_the_demo_says_the_silent_model_needs_are_enough(capsys):
    """--days 71 reaches 1 February 10:00, whose month(-3) is the November the traffic starts in: silent
    and low-use subscribers match (the audience then leaves out most of them: after ten weeks of the
    catalogue nearly everyone was contacted in the last 30 days) and no row says it needs more traffic."""
    assert 0 == main(["demo", "--subscribers", "60", "--days", "71", "--seed", "3", "--examples", "0"])
    rows = _rows(capsys.readouterr().out)
    silent = {name: row for name, row in rows.items() if name.endswith(("_silent", "_low_use"))
              and "newly" not in name}
    assert len(silent) == 8 and sum(_matched(row) for row in silent.values()) > 0, silent
    assert not [row for row in rows.values() if "needs traffic" in row]
