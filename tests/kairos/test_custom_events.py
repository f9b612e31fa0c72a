"""Custom event types without code: a scenario folder's ``events.toml`` declares them.

``kairos check`` validates scenarios against the built-in types and the
catalogue (an unknown field of a custom type gets the did-you-mean error at
FILE:LINE:COL); a catalogue that cannot be used is refused at its own line;
``replay`` (one process, ``--workers``) and ``explain`` decode the custom
types, and a value outside a declared bound is a malformed line, reported with
its line number and counted, not a crash.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kairos import main

CATALOGUE = """\
# vouchers from the loyalty platform
[voucher_redeemed]
about = "loyalty: a voucher redeemed"
amount = {type = "number", min = 0, max = 100000}
code = "string"
shop = {type = "string", required = false}
tier = {values = ["gold", "silver"], default = "silver"}
"""

SCENARIO = """\
scenario big_voucher
  when voucher_redeemed where amount >= 100 and tier == "gold"
  then sms "offer.thanks" with {code: last.code, shop: last.shop}
end
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace (the current directory, so reported names are short) with ``sc/events.toml`` and
    ``sc/v.kairos``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sc").mkdir()
    (tmp_path / "sc" / "events.toml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "sc" / "v.kairos").write_text(SCENARIO, encoding="utf-8")
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _event(ts: int, msisdn: str, **fields: object) -> str:
    return json.dumps({"type": "voucher_redeemed", "ts": ts, "msisdn": msisdn, **fields}) + "\n"


def test_check_accepts_a_scenario_reading_a_type_its_folders_catalogue_declares(folder, capsys):
    assert (0, "ok: 1 scenario in 1 file; event types of sc/events.toml\n", "") == _run(capsys, "check", "sc")


def test_check_accepts_a_scenario_file_named_alone_with_the_catalogue_beside_it(folder, capsys):
    assert 0 == _run(capsys, "check", "sc/v.kairos")[0]


def test_without_the_catalogue_the_type_is_unknown(folder, capsys):
    (folder / "sc" / "events.toml").unlink()
    status, _, err = _run(capsys, "check", "sc")
    assert 1 == status
    assert err.startswith("sc/v.kairos:2:8: error: unknown event type 'voucher_redeemed'")


def test_check_refuses_an_unknown_field_of_a_custom_type_with_did_you_mean(folder, capsys):
    (folder / "sc" / "v.kairos").write_text(SCENARIO.replace("tier ==", "tir =="), encoding="utf-8")
    assert (1, "", "sc/v.kairos:2:49: error: unknown field 'tir' of voucher_redeemed events; did you mean 'tier'?\n"
                   '  when voucher_redeemed where amount >= 100 and tir == "gold"\n'
                   "                                                ^\n") == _run(capsys, "check", "sc")


def test_check_refuses_a_value_outside_a_custom_enumeration(folder, capsys):
    (folder / "sc" / "v.kairos").write_text(SCENARIO.replace('"gold"', '"platinum"'), encoding="utf-8")
    status, _, err = _run(capsys, "check", "sc")
    assert 1 == status and err.startswith("sc/v.kairos:2:")
    assert "platinum" in err


@pytest.mark.parametrize(("text", "expected"), [
    ('[voucher_redeemed]\namount = "numbr"\n',
     "sc/events.toml:2:10: error: field 'amount': unknown type 'numbr' (known: \"string\", \"number\", \"bool\", "
     "\"object\", or values = [...]); did you mean 'number'?\n"
     'amount = "numbr"\n'
     "         ^\n"),
    ('# a comment\n[dpi]\nvideo = "bool"\n',
     "sc/events.toml:2:1: error: event type 'dpi' is a built-in type: it cannot be redefined "
     "(give the new type another name)\n[dpi]\n^\n"),
    ('[voucher_redeemed]\ncode = "string"\nts = "string"\n',
     "sc/events.toml:3:1: error: 'ts' is a field every event has (event time in epoch ms): do not declare it\n"
     'ts = "string"\n^\n'),
    ('[voucher_redeemed]\n  msisdn = {type = "number"}\n',
     "sc/events.toml:2:3: error: 'msisdn' is a field every event has (the subscriber's number): do not "
     "declare it\n"
     '  msisdn = {type = "number"}\n  ^\n'),
    ('[voucher_redeemed\ncode = "string"\n',
     "sc/events.toml:1:18: error: not valid TOML: Expected ']' at the end of a table declaration\n"
     "[voucher_redeemed\n                 ^\n"),
    ('[voucher_redeemed]\ntier = {values = ["gold"], default = "bronze"}\n',
     "sc/events.toml:2:28: error: field 'tier': the default is not a value of the field (Invalid enum "
     "value 'bronze')\n"
     'tier = {values = ["gold"], default = "bronze"}\n'
     "                           ^\n"),
    ('[not]\nx = "string"\n',
     "sc/events.toml:1:1: error: event type 'not' is a word of the scenario language: give the type another "
     "name\n[not]\n^\n"),
])
def test_a_catalogue_that_cannot_be_used_is_refused_at_its_line(folder, capsys, text, expected):
    (folder / "sc" / "events.toml").write_text(text, encoding="utf-8")
    assert (1, "", expected) == _run(capsys, "check", "sc")


def test_replay_refuses_a_bad_catalogue_as_check_does_and_replays_nothing(folder, capsys):
    (folder / "sc" / "events.toml").write_text('[voucher_redeemed]\namount = "numbr"\n', encoding="utf-8")
    (folder / "ev.jsonl").write_text(_event(1000, "861", amount=150, code="A1", tier="gold"), encoding="utf-8")
    status, out, err = _run(capsys, "replay", "--scenarios", "sc", "--events", "ev.jsonl")
    assert (1, "") == (status, out)
    assert err.startswith("sc/events.toml:2:10: error: field 'amount': unknown type 'numbr'")


def _recording(folder: Path) -> None:
    (folder / "ev.jsonl").write_text(
        _event(1000, "8613800000001", amount=150, code="A1", tier="gold", shop="mall")
        + _event(2000, "8613800000002", amount=1e40, code="A2", tier="gold")
        + _event(3000, "8613800000003", amount=50, code="A3", tier="gold")
        + _event(4000, "8613800000004", amount=500, code="A4")  # tier omitted: silver
        + _event(5000, "8613800000005", amount=900, code="A5", tier="gold"),
        encoding="utf-8")


SENT = [{"id": "big_voucher:8613800000001:1000", "scenario": "big_voucher", "msisdn": "8613800000001", "ts": 1000,
         "send_at": 1000, "channel": "sms", "template": "offer.thanks", "params": {"code": "A1", "shop": "mall"}},
        {"id": "big_voucher:8613800000005:5000", "scenario": "big_voucher", "msisdn": "8613800000005", "ts": 5000,
         "send_at": 5000, "channel": "sms", "template": "offer.thanks", "params": {"code": "A5", "shop": None}}]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_replay_sends_what_the_scenario_says_on_custom_events_and_a_wild_number_is_a_malformed_line(
        folder, capsys, workers):
    _recording(folder)
    status, out, err = _run(capsys, "replay", "--scenarios", "sc", "--events", "ev.jsonl", "--workers", workers)
    assert 3 == status
    assert SENT == [json.loads(line) for line in out.splitlines()]
    assert "ev.jsonl:2: error: Expected `float` <= 100000.0 - at `$.amount` (line skipped)\n" in err
    assert err.endswith("kairos replay: finished, but 1 line was skipped (1 malformed); exit status 3\n")


def test_explain_shows_a_custom_event_and_the_send_it_led_to(folder, capsys):
    _recording(folder)
    status, out, _ = _run(capsys, "explain", "--msisdn", "8613800000001", "--scenarios", "sc", "--events", "ev.jsonl")
    assert "voucher_redeemed amount=150 code=A1 shop=mall tier=gold" in out
    assert 'trigger big_voucher:8613800000001:1000: sent sms "offer.thanks"' in out


def test_a_scenario_folder_without_a_catalogue_does_not_see_the_types_another_command_registered(folder, capsys):
    assert 0 == _run(capsys, "check", "sc")[0]
    (folder / "other").mkdir()
    (folder / "other" / "o.kairos").write_text(SCENARIO, encoding="utf-8")
    status, _, err = _run(capsys, "check", "other")
    assert 1 == status and "unknown event type 'voucher_redeemed'" in err


def test_two_folders_declaring_one_type_differently_are_refused_at_the_second(folder, capsys):
    (folder / "more").mkdir()
    (folder / "more" / "events.toml").write_text('# more\n[voucher_redeemed]\ncode = "string"\n', encoding="utf-8")
    (folder / "more" / "m.kairos").write_text(SCENARIO.replace("big_voucher", "more_voucher"), encoding="utf-8")
    assert (1, "", "more/events.toml:2:1: error: event type 'voucher_redeemed' is also declared, differently, in "
                   "sc/events.toml:2: declare it once, or alike\n[voucher_redeemed]\n^\n") == \
        _run(capsys, "check", "sc", "more")


def test_two_folders_declaring_one_type_alike_share_it(folder, capsys):
    (folder / "more").mkdir()
    (folder / "more" / "events.toml").write_text(CATALOGUE, encoding="utf-8")
    (folder / "more" / "m.kairos").write_text(SCENARIO.replace("big_voucher", "more_voucher"), encoding="utf-8")
    assert 0 == _run(capsys, "check", "sc", "more")[0]
