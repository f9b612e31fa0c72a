"""``kairos test``: an author's recorded story and the sends it must give, run without pytest.

A passing test prints ``ok`` and exits 0; a failing one prints what was
missing, sent differently, not expected or suppressed for another reason, in
local time, and exits 1; a test file that cannot be read names its file and
line; a path that is not a test is a usage error (2).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from kairos import main

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
MINUTE = 60_000

SCENARIOS = """\
scenario low_balance
  when balance as b where amount < 10
  cooldown 1h
  then sms "offer.topup" with {amount: b.amount}
end

scenario no_topup
  when balance as b where amount < 10 -> not topup within 10m
  then call "care.topup"
end
"""

#: the events every test below replays: 1 runs low at 10:00 and again at 10:30 (cool-down), and
#: does not top up; 2 runs low at 11:00 and tops up at 11:05
EVENTS = [
    {"type": "balance", "ts": T0 + 600 * MINUTE, "msisdn": "1", "amount": 5},
    {"type": "balance", "ts": T0 + 630 * MINUTE, "msisdn": "1", "amount": 4},
    {"type": "balance", "ts": T0 + 660 * MINUTE, "msisdn": "2", "amount": 8},
    {"type": "topup", "ts": T0 + 665 * MINUTE, "msisdn": "2", "amount": 50},
]

PASSING = """\
description = "running low: an SMS, and a call when no top-up follows"
scenarios = ["offers.kairos"]

[[send]]
scenario = "low_balance"
msisdn = "1"
time = "2026-11-23 10:00"
channel = "sms"
template = "offer.topup"
params = { amount = 5 }

[[send]]
scenario = "no_topup"
msisdn = "1"
time = "2026-11-23 Mon 10:10"
channel = "call"
template = "care.topup"

[[send]]
scenario = "no_topup"
msisdn = "1"
time = "2026-11-23 10:40"
channel = "call"
template = "care.topup"

[[send]]
scenario = "low_balance"
msisdn = "2"
time = "2026-11-23 11:00"
channel = "sms"
template = "offer.topup"

[[suppressed]]
scenario = "low_balance"
msisdn = "1"
reason = "cooldown"
time = "2026-11-23 10:30"
"""


def _story(folder: Path, test: str, name: str = "story") -> Path:
    (folder / "offers.kairos").write_text(SCENARIOS, encoding="utf-8")
    (folder / f"{name}.events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS), encoding="utf-8")
    path = folder / f"{name}.test.toml"
    path.write_text(test, encoding="utf-8")
    return path


def test_a_passing_test_prints_ok_and_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _story(tmp_path, PASSING)
    status = main(["test", "story.test.toml"])
    assert (0, "ok     story.test.toml\n1 test: all passed\n", "") == (status, *capsys.readouterr())


def test_a_failing_test_shows_each_difference_in_local_time_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failing = """\
scenarios = ["offers.kairos"]

[[send]]                     # a minute off: missing, and the 10:00 send unexpected
scenario = "low_balance"
msisdn = "1"
time = "2026-11-23 10:01"
channel = "sms"
template = "offer.topup"
params = { amount = 5 }

[[send]]
scenario = "no_topup"
msisdn = "1"
time = "2026-11-23 10:10"
channel = "call"
template = "care.topup"

[[send]]                     # the call expected as an SMS
scenario = "no_topup"
msisdn = "1"
time = "2026-11-23 10:40"
channel = "sms"
template = "care.topup"

# 2's SMS at 11:00 not listed: unexpected

[[suppressed]]
scenario = "low_balance"
msisdn = "1"
reason = "audience"
time = "2026-11-23 10:30"

[[suppressed]]               # 2 topped up: the pattern never completed
scenario = "no_topup"
msisdn = "2"
reason = "cooldown"

[[suppressed]]               # sent, not stopped
scenario = "low_balance"
msisdn = "2"
reason = "cooldown"
"""
    _story(tmp_path, failing)
    status = main(["test", "."])
    out, err = capsys.readouterr()
    assert status == 1 and err == ""
    assert out == (
        "FAILED story.test.toml\n"
        '  missing send:    low_balance to 1 at 2026-11-23 Mon 10:01: sms "offer.topup" { amount = 5 }\n'
        "  sent differently: no_topup to 1 at 2026-11-23 Mon 10:40\n"
        '      expected: sms "care.topup"\n'
        '      sent:     call "care.topup"\n'
        '  unexpected send: low_balance to 1 at 2026-11-23 Mon 10:00: sms "offer.topup" { amount = 5 }\n'
        '  unexpected send: low_balance to 2 at 2026-11-23 Mon 11:00: sms "offer.topup" { amount = 8 }\n'
        "  suppressed for another reason: low_balance to 1 at 2026-11-23 Mon 10:30: expected audience, "
        "was cooldown at 2026-11-23 Mon 10:30\n"
        "  missing suppression: no_topup to 2 (cooldown): its pattern never completed for the subscriber\n"
        "  missing suppression: low_balance to 2 (cooldown): sent at 2026-11-23 Mon 11:00\n"
        "1 test: 1 failed\n"
    )


def test_a_suppression_by_the_contact_policy_is_checked_with_its_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.kairos").write_text("policy\n  cap call 1 per 1d\nend\n", encoding="utf-8")
    test = PASSING.replace('scenarios = ["offers.kairos"]', 'scenarios = ["offers.kairos"]\npolicy = "policy.kairos"')
    test = test.replace('time = "2026-11-23 10:40"\nchannel = "call"\ntemplate = "care.topup"\n',
                        'time = "2026-11-23 10:40"\nchannel = "call"\ntemplate = "care.topup"\nREMOVED\n')
    test = test.replace('[[send]]\nscenario = "no_topup"\nmsisdn = "1"\ntime = "2026-11-23 10:40"\nchannel = "call"\n'
                        'template = "care.topup"\nREMOVED\n',
                        '[[suppressed]]\nscenario = "no_topup"\nmsisdn = "1"\nreason = "cap"\n')
    _story(tmp_path, test)
    assert 0 == main(["test", "story.test.toml"]), capsys.readouterr().out
    _story(tmp_path, test.replace('reason = "cap"', 'reason = "quiet"'))
    assert 1 == main(["test", "story.test.toml"])
    assert ("suppressed for another reason: no_topup to 1: expected quiet, was cap at 2026-11-23 Mon 10:40"
            in capsys.readouterr().out)


def test_only_checks_the_named_scenarios_sends(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    only = ('scenarios = ["offers.kairos"]\nonly = ["no_topup"]\n\n'
            + "\n".join(PASSING.split("\n\n")[2:4]) + "\n")  # the two calls, none of the SMS
    _story(tmp_path, only)
    assert (0, "ok     story.test.toml\n1 test: all passed\n", "") == (main(["test", "."]), *capsys.readouterr())


def test_a_story_expected_to_send_nothing_fails_on_any_send(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _story(tmp_path, 'scenarios = ["offers.kairos"]\n')
    assert 1 == main(["test", "."])
    assert capsys.readouterr().out.count("unexpected send:") == 4


@pytest.mark.parametrize(("text", "error"), [
    ('scenarios = ["offers.kairos"\n\n[[send]]\n',
     "story.test.toml:3:1: error: Unclosed array"),
    ('scenarios = ["offers.kairos"]\n\n[[send]]\nscenario = "low_balance"\nmsisdn = "1"\ntime = "2026-11-23 25:00"\n'
     'channel = "sms"\ntemplate = "offer.topup"\n',
     "story.test.toml:6: error: '2026-11-23 25:00' is not a local time: hour must be in 0..23"),
    ('scenarios = ["offers.kairos"]\n\n[[send]]\nscenario = "low_balance"\nmsisdn = "1"\ntime = "2026-11-23 10:00"\n'
     'chanel = "sms"\ntemplate = "offer.topup"\n',
     "story.test.toml:7: error: unknown key 'chanel' in [[send]]; did you mean 'channel'?"),
    ('scenarios = ["offers.kairos"]\n\n[[send]]\nscenario = "low_balance"\nmsisdn = "1"\n'
     'channel = "sms"\ntemplate = "offer.topup"\n',
     "story.test.toml:3: error: [[send]] needs 'time'"),
    ('scenarios = ["offers.kairos"]\n\n[[suppressed]]\nscenario = "low_balance"\nmsisdn = "1"\nreason = "cooldwn"\n',
     "story.test.toml:6: error: unknown reason 'cooldwn'; did you mean 'cooldown'?"),
    ('scenarios = ["offers.kairos"]\n\n[[suppressed]]\nscenario = "low_balanse"\nmsisdn = "1"\nreason = "cooldown"\n',
     "story.test.toml:3: error: no scenario 'low_balanse' among the test's scenarios; did you mean 'low_balance'?"),
    ('senarios = ["offers.kairos"]\n',
     "story.test.toml:1: error: unknown key 'senarios'; did you mean 'scenarios'?"),
])
def test_a_malformed_test_file_is_an_error_at_its_file_and_line(tmp_path, capsys, monkeypatch, text, error):
    monkeypatch.chdir(tmp_path)
    _story(tmp_path, text)
    _story(tmp_path, PASSING, name="good")
    status = main(["test", "."])
    out = capsys.readouterr().out
    assert status == 1
    assert out.startswith("ok     good.test.toml\nFAILED story.test.toml\n  " + error)  # the others still run
    assert out.endswith("2 tests: 1 failed\n")


def test_a_bad_line_in_the_recorded_events_fails_the_test_at_its_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _story(tmp_path, PASSING)
    with open(tmp_path / "story.events.jsonl", "a", encoding="utf-8") as f:
        f.write('{"type": "balance", "ts": "soon"}\n')
    assert 1 == main(["test", "story.test.toml"])
    assert "  story.events.jsonl:5: error: " in capsys.readouterr().out


@pytest.mark.parametrize(("args", "error"), [
    (["missing"], "kairos test: missing: no such file or folder\n"),
    (["offers.kairos"], "kairos test: offers.kairos: a test file's name ends in .test.toml\n"),
    (["empty"], "kairos test: empty: no *.test.toml files in this folder\n"),
])
def test_a_path_that_holds_no_test_is_a_usage_error(tmp_path, capsys, monkeypatch, args, error):
    monkeypatch.chdir(tmp_path)
    _story(tmp_path, PASSING)
    (tmp_path / "empty").mkdir()
    assert (2, "", error) == (main(["test", *args]), *capsys.readouterr())


def test_help_teaches_the_file_format_with_an_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["test", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for part in ("NAME.test.toml", "NAME.events.jsonl", "[[send]]", "[[suppressed]]", 'time = "2026-11-23 12:30"',
                 "only = ", "kairos test scenarios/tests"):
        assert part in out


def test_the_example_that_help_teaches_passes_on_the_catalogue(tmp_path, capsys):
    """``--help``'s example is a real test: copied beside a copy of the catalogue, it passes."""
    from kairos._test_format import FORMAT

    root = Path(__file__).resolve().parents[2] / "scenarios"
    shutil.copytree(root, tmp_path / "scenarios", ignore=shutil.ignore_patterns("*.test.toml"))
    example = "\n\n".join(FORMAT.split("\n\n")[1:4])  # the file: its keys, its [[send]], its [[suppressed]]
    text = "\n".join(line.removeprefix("  ") for line in example.splitlines())
    (tmp_path / "scenarios" / "tests" / "low_balance.test.toml").write_text(text + "\n", encoding="utf-8")
    status = main(["test", str(tmp_path / "scenarios" / "tests" / "low_balance.test.toml")])
    assert (status, capsys.readouterr().out.splitlines()[-1]) == (0, "1 test: all passed")


def test_the_catalogue_guides_example_passes_on_the_catalogue(tmp_path, capsys):
    """docs/catalogue.md's example test file (under "Testing a scenario on a recorded story") is a real test."""
    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "catalogue.md").read_text(encoding="utf-8")
    section = guide.split("## Testing a scenario on a recorded story")[1]
    example = section.split("```toml\n")[1].split("```")[0]
    shutil.copytree(root / "scenarios", tmp_path / "scenarios", ignore=shutil.ignore_patterns("*.test.toml"))
    (tmp_path / "scenarios" / "tests" / "low_balance.test.toml").write_text(example, encoding="utf-8")
    status = main(["test", str(tmp_path / "scenarios" / "tests")])
    assert (status, capsys.readouterr().out.splitlines()[-1]) == (0, "1 test: all passed")


def test_times_are_read_in_the_tests_time_zone_and_events_may_be_another_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _story(tmp_path, PASSING)
    (tmp_path / "story.events.jsonl").rename(tmp_path / "recorded.jsonl")
    options = PASSING.replace('scenarios = ["offers.kairos"]',
                              'scenarios = ["offers.kairos"]\ntz = "UTC"\nevents = "recorded.jsonl"')
    utc = re.sub(r'time = "2026-11-23 (?:Mon )?(\d\d):(\d\d)"',  # Shanghai is UTC+8
                 lambda m: f'time = "2026-11-23 {int(m[1]) - 8:02d}:{m[2]}"', options)
    (tmp_path / "story.test.toml").write_text(utc, encoding="utf-8")
    assert (0, "ok     story.test.toml\n1 test: all passed\n") == (main(["test", "story.test.toml"]),
                                                                   capsys.readouterr().out)
    (tmp_path / "story.test.toml").write_text(utc.replace('tz = "UTC"', 'tz = "Asia/Shanghai"'), encoding="utf-8")
    assert 1 == main(["test", "story.test.toml"])
    assert "missing send:    low_balance to 1 at 2026-11-23 Mon 02:00" in capsys.readouterr().out
