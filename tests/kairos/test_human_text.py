"""Counts read right in what a person sees: ``1 event``, ``1 send``, ``1,200 events``, one decimal for shares.

The replay summary, ``explain``'s heading and the demo use one convention:
thousands separators and the noun in the right number.
"""

from __future__ import annotations

import json
from pathlib import Path

from kairos import main
from kairos._words import count, percent

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
ONE = 'scenario low_balance\n  when balance where amount < 10\n  then sms "offer.topup"\nend\n'


def _balances(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"type": "balance", "ts": T0 + k, "msisdn": str(k), "amount": 5}) + "\n"
                            for k in range(n)))
    return path


def test_the_replay_summary_of_one_event_and_one_send_is_singular(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text(ONE)
    assert 0 == main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events",
                      str(_balances(tmp_path / "e.jsonl", 1)), "--out", str(tmp_path / "out.jsonl")])
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.startswith("kairos replay: 1 event, 0 malformed and 0 out-of-order lines skipped, 1 send (")


def test_the_replay_summary_writes_big_counts_with_thousands_separators(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text(ONE)
    assert 0 == main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events",
                      str(_balances(tmp_path / "e.jsonl", 1_200)), "--out", str(tmp_path / "out.jsonl")])
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.startswith("kairos replay: 1,200 events, 0 malformed and 0 out-of-order lines skipped, "
                              "1,200 sends (")


def test_explain_heads_its_timeline_with_1_scenario_not_1_scenarios(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text(ONE)
    assert 0 == main(["explain", "--msisdn", "0", "--scenarios", str(tmp_path / "s.kairos"), "--events",
                      str(_balances(tmp_path / "e.jsonl", 1))])
    assert "Timeline of 0 (Asia/Shanghai); 1 scenario, no contact policy" == capsys.readouterr().out.splitlines()[0]


def test_counts_and_shares_follow_one_convention():
    assert ["1 send", "0 sends", "2 sends", "1,234,567 events", "2 matches"] == [
        count(1, "send"), count(0, "send"), count(2, "send"), count(1_234_567, "event"), count(2, "match", "matches")]
    assert ["12.5%", "0.0%", "<0.1%", "0.1%", "100.0%"] == [
        percent(0.125), percent(0), percent(0.0004), percent(0.0006), percent(1)]


def test_the_traffic_generator_says_1_subscriber(tmp_path, capsys):
    from kairos.traffic import main as generate

    assert 0 == generate(["--subscribers", "1", "--hours", "1", "--out", str(tmp_path / "e.jsonl")])
    assert " province events for 1 subscriber over 1 h in " in capsys.readouterr().err
