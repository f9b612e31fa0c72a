"""`kairos explain` answers "why (not)": an audience refusal names the false term and the values it read,
`--scenario` narrows the timeline to the scenarios asked about, every option says what it does, and
`--templates` checks the actions and shows each send's message as the subscriber reads it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kairos._cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main

SCENARIOS = """
scenario topup_offer
  audience tags.plan_type == "prepaid" and not msisdn in list("dnd")
  when balance as b where amount < 10
  then sms "offer.topup" with {balance: b.amount}
end

scenario big_topup_thanks
  audience t.amount >= 100
  when topup as t
  then sms "thanks.topup"
end
"""

TEMPLATES = """
[templates."offer.topup"]
sms = "Only {balance} yuan left: top up 50, get 10 free."

[templates."thanks.topup"]
sms = "Thank you for your top-up."
"""

T0 = 1_795_363_200_000  # 2026-11-23 Mon 00:00 Asia/Shanghai
MIN = 60_000
SUB = "13800000001"


def _workspace(tmp_path: Path, tags: dict, dnd: tuple[str, ...] = ()) -> Path:
    (tmp_path / "s.kairos").write_text(SCENARIOS)
    ref = tmp_path / "ref"
    (ref / "lists").mkdir(parents=True)
    (ref / "tags.jsonl").write_text(json.dumps({"msisdn": SUB, "tags": tags}) + "\n")
    (ref / "lists" / "dnd.txt").write_text("".join(f"{m}\n" for m in dnd))
    events = [
        {"type": "topup", "ts": T0 + 60 * MIN, "msisdn": SUB, "amount": 20, "channel": "app"},
        {"type": "balance", "ts": T0 + 120 * MIN, "msisdn": SUB, "amount": 7.5},
        {"type": "balance", "ts": T0 + 130 * MIN, "msisdn": "13800000002", "amount": 3},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return tmp_path


def _explain(capsys, ws: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["explain", "--msisdn", SUB, "--scenarios", str(ws / "s.kairos"), "--events",
                   str(ws / "events.jsonl"), "--reference", str(ws / "ref"), *extra])
    out, err = capsys.readouterr()
    return status, out, err


# --- the audience's false term and what it read


def test_an_audience_refusal_names_the_tag_term_that_was_false_and_the_tags_value(tmp_path, capsys):
    status, out, _ = _explain(capsys, _workspace(tmp_path, {"plan_type": "postpaid"}))
    assert status == EXIT_OK
    lines = out.splitlines()
    at = lines.index("2026-11-23 Mon 02:00:00   topup_offer: the pattern completed (balance event)")
    assert lines[at + 1] == ('                            not triggered: audience — tags.plan_type == "prepaid" '
                             'was false (tags.plan_type = "postpaid")')


def test_an_audience_refusal_shows_a_missing_tag_as_null(tmp_path, capsys):
    _, out, _ = _explain(capsys, _workspace(tmp_path, {"region": "foshan"}))
    assert 'audience — tags.plan_type == "prepaid" was false (tags.plan_type = null)' in out


def test_an_audience_refusal_by_a_list_names_the_membership(tmp_path, capsys):
    _, out, _ = _explain(capsys, _workspace(tmp_path, {"plan_type": "prepaid"}, dnd=(SUB,)))
    assert ('not triggered: audience — not msisdn in list("dnd") was false (msisdn in list("dnd") = true)'
            in out)


def test_an_audience_refusal_by_an_event_field_shows_the_fields_value(tmp_path, capsys):
    _, out, _ = _explain(capsys, _workspace(tmp_path, {"plan_type": "prepaid"}))
    assert "not triggered: audience — t.amount >= 100 was false (t.amount = 20)" in out
    assert "topup_offer: sent 1 time" in out


# --- --scenario


def test_scenario_narrows_the_timeline_to_that_scenario(tmp_path, capsys):
    status, out, _ = _explain(capsys, _workspace(tmp_path, {"plan_type": "postpaid"}), "--scenario", "topup_offer")
    assert status == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == f"Timeline of {SUB} (Asia/Shanghai); topup_offer (of 2 scenarios), no contact policy"
    assert "big_topup_thanks" not in out
    assert not any(" topup amount=20" in line for line in lines)  # an event only big_topup_thanks reads
    assert "2026-11-23 Mon 02:00:00   balance amount=7.5" in lines
    assert lines[lines.index("Summary:") + 1:] == [
        "  topup_offer: matched 1 time, never sent — audience 1",
        "  1 other event of the subscriber not shown: no scenario of --scenario reads their type",
    ]


def test_scenario_repeated_shows_each_scenario_named(tmp_path, capsys):
    ws = _workspace(tmp_path, {"plan_type": "postpaid"})
    _, out, _ = _explain(capsys, ws, "--scenario", "big_topup_thanks", "--scenario", "topup_offer")
    lines = out.splitlines()
    assert lines[0] == (f"Timeline of {SUB} (Asia/Shanghai); big_topup_thanks, topup_offer (of 2 scenarios), "
                        "no contact policy")
    assert "2026-11-23 Mon 01:00:00   topup amount=20 channel=app" in lines
    assert lines[lines.index("Summary:") + 1:] == [
        "  topup_offer: matched 1 time, never sent — audience 1",
        "  big_topup_thanks: matched 1 time, never sent — audience 1",
    ]


def test_an_unknown_scenario_name_is_refused_with_the_known_ones(tmp_path, capsys):
    status, out, err = _explain(capsys, _workspace(tmp_path, {}), "--scenario", "topup_ofer")
    assert status == EXIT_USAGE
    assert out == ""
    assert err == ("kairos explain: --scenario topup_ofer: no scenario of that name; did you mean --scenario "
                   "topup_offer? The scenarios are: topup_offer, big_topup_thanks\n")


# --- help


def test_every_explain_option_has_help_text(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    text = capsys.readouterr().out
    section = text[text.index("options:"):].splitlines()[1:]
    entries: list[list[str]] = []
    for line in section:
        if re.match(r"  -", line):
            entries.append([line])
        elif line.startswith("   ") and entries:
            entries[-1].append(line)
    named = {re.match(r"\s*(-[-\w]+)", e[0]).group(1): e for e in entries}  # type: ignore[union-attr]
    assert {"--msisdn", "--scenarios", "--events", "--reference", "--policy", "--tz", "--scenario",
            "--templates"} <= set(named)
    for option, entry in named.items():
        said = re.split(r"\s{2,}", entry[0].strip(), maxsplit=1)[1:] + [line.strip() for line in entry[1:]]
        assert any(said), f"{option} has no help text"


# --- --templates


def test_templates_shows_each_sends_message_rendered(tmp_path, capsys):
    ws = _workspace(tmp_path, {"plan_type": "prepaid"})
    (ws / "catalogue.toml").write_text(TEMPLATES)
    status, out, _ = _explain(capsys, ws, "--templates", str(ws / "catalogue.toml"))
    assert status == EXIT_OK
    lines = out.splitlines()
    at = lines.index("2026-11-23 Mon 02:00:00   topup_offer: the pattern completed (balance event)")
    assert lines[at + 1].endswith('sent sms "offer.topup", send time 2026-11-23 Mon 02:00:00')
    assert lines[at + 2] == ('                            message (sms "offer.topup"): '
                             '"Only 7.5 yuan left: top up 50, get 10 free."')


def test_templates_refuses_an_action_the_catalogue_lacks_as_replay_does(tmp_path, capsys):
    ws = _workspace(tmp_path, {"plan_type": "prepaid"})
    (ws / "catalogue.toml").write_text(TEMPLATES.split('[templates."thanks.topup"]')[0])
    status, out, err = _explain(capsys, ws, "--templates", str(ws / "catalogue.toml"))
    assert status == EXIT_INVALID
    assert out == ""
    assert f"{ws / 's.kairos'}:11:8: error:" in err and "unknown template 'thanks.topup'" in err
    assert "the templates are read from" in err


# --- bad option values, refused as replay refuses them


def test_an_unknown_time_zone_is_a_usage_error_not_a_traceback(tmp_path, capsys):
    ws = _workspace(tmp_path, {})
    with pytest.raises(SystemExit) as stop:
        main(["explain", "--msisdn", SUB, "--scenarios", str(ws / "s.kairos"), "--events",
              str(ws / "events.jsonl"), "--tz", "Asia/Shanghia"])
    assert stop.value.code == EXIT_USAGE
    assert "argument --tz: unknown time zone 'Asia/Shanghia'" in capsys.readouterr().err


def test_a_scenario_folder_without_scenarios_is_refused(tmp_path, capsys):
    ws = _workspace(tmp_path, {})
    (ws / "empty").mkdir()
    capsys.readouterr()
    status = main(["explain", "--msisdn", SUB, "--scenarios", str(ws / "empty"), "--events", str(ws / "events.jsonl")])
    assert status == EXIT_USAGE
    assert capsys.readouterr().err == f"kairos explain: {ws / 'empty'}: no *.kairos files in this folder\n"
