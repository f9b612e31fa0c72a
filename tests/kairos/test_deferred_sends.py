"""A send that goes out later than its trigger says so where a person reads sends.

``after`` and the policy's quiet hours move a send's ``send_at`` past its
trigger: the replay summary counts those sends (the same over workers), and
``explain`` names what moved each one. (The demo's examples: tests/demo.)
"""

from __future__ import annotations

import json

import pytest

from kairos import main

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
SCENARIOS = """\
scenario low_balance
  when balance where amount < 10
  then sms "offer.topup" after 1m
end

scenario topup_thanks
  when topup
  then sms "thanks"
end
"""
QUIET = "policy\n  quiet 22:00..08:00 for sms defer\nend\n"


def _events(tmp_path, *events: dict) -> str:
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_replay_summary_counts_the_sends_deferred_past_their_trigger(tmp_path, capsys, workers):
    (tmp_path / "s.kairos").write_text(SCENARIOS)
    events = _events(tmp_path, *({"type": "balance", "ts": T0 + 12 * 3_600_000 + k, "msisdn": str(k), "amount": 5}
                                 for k in range(3)),
                     {"type": "topup", "ts": T0 + 13 * 3_600_000, "msisdn": "9", "amount": 50})
    assert 0 == main(["replay", "--scenarios", str(tmp_path / "s.kairos"), "--events", events,
                      "--out", str(tmp_path / "out.jsonl"), "--workers", workers])
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.startswith("kairos replay: 4 events, 0 malformed and 0 out-of-order lines skipped, 4 sends, "
                              "3 of them deferred past their trigger time (")


def test_explain_says_a_send_was_deferred_by_after_and_then_by_quiet_hours(tmp_path, capsys):
    (tmp_path / "s.kairos").write_text(SCENARIOS)
    (tmp_path / "p.kairos").write_text(QUIET)
    events = _events(tmp_path, {"type": "balance", "ts": T0, "msisdn": "1", "amount": 5})
    assert 0 == main(["explain", "--msisdn", "1", "--scenarios", str(tmp_path / "s.kairos"), "--events", events])
    assert ('trigger low_balance:1:1795363200000: sent sms "offer.topup", send time 2026-11-23 Mon 00:01:00 '
            "(deferred by `after 1m` from the trigger)") in capsys.readouterr().out
    assert 0 == main(["explain", "--msisdn", "1", "--scenarios", str(tmp_path / "s.kairos"), "--policy",
                      str(tmp_path / "p.kairos"), "--events", events])
    assert ('sent sms "offer.topup", send time 2026-11-23 Mon 08:00:00 (deferred by `after 1m` from the trigger; '
            "deferred from 2026-11-23 Mon 00:01:00 by quiet hours 22:00..08:00 for sms)") in capsys.readouterr().out
