"""The command-line contract of LANGUAGE.md §8, as an author and an operator use it.

`kairos check` prints errors as FILE:LINE:COL with the line and a caret and
exits 1, or one summary line and 0; `kairos replay` reads a file or standard
input, writes sends to standard output or ``--out``, reports bad lines on
standard error and stops the clock at the last event.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from kairos import main

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
MINUTE = 60_000

SCENARIOS = """\
scenario low_balance
  when balance as b where amount < 10
  then sms "offer.topup" with {amount: b.amount} after 1m
end

scenario no_topup
  when balance as b where amount < 10 -> not topup within 10m
  then call "care.topup"
end
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _lines(events: list[dict]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def _balance(ts: int, msisdn: str = "1", amount: float = 5) -> dict:
    return {"type": "balance", "ts": ts, "msisdn": msisdn, "amount": amount}


def test_check_prints_the_error_with_its_line_and_caret_and_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "s.kairos", 'scenario s\n  when balanse\n  then sms "x"\nend\n')
    status = main(["check", "s.kairos"])
    expected = (
        "s.kairos:2:8: error: unknown event type 'balanse'; did you mean 'balance'?\n"
        "  when balanse\n"
        "       ^\n"
    )
    assert (1, "", expected) == (status, *capsys.readouterr())


def test_check_of_a_valid_file_prints_one_summary_line_and_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "s.kairos", SCENARIOS)
    status = main(["check", "s.kairos"])
    assert (0, "ok: 2 scenarios in 1 file\n", "") == (status, *capsys.readouterr())


def test_check_of_a_folder_without_scenario_files_is_an_error_not_ok(tmp_path, capsys):
    """A mistyped folder must not look like a clean check of nothing."""
    (tmp_path / "empty").mkdir()
    status = main(["check", str(tmp_path / "empty")])
    out, err = capsys.readouterr()
    assert (2, "", f"kairos check: {tmp_path / 'empty'}: no *.kairos files in this folder\n") == (status, out, err)


def _replay(tmp_path: Path, events: str, *extra: str, stdin: bool = False) -> tuple[int, str, str]:
    scenarios = _write(tmp_path / "s.kairos", SCENARIOS)
    out = tmp_path / "sends.jsonl"
    if stdin:
        argv = ["replay", "--scenarios", str(scenarios), "--events", "-", "--out", str(out), *extra]
    else:
        argv = ["replay", "--scenarios", str(scenarios), "--events", str(_write(tmp_path / "e.jsonl", events)),
                "--out", str(out), *extra]
    status = main(argv)
    return status, out.read_text(encoding="utf-8") if out.exists() else "", ""


def test_replay_writes_compact_json_lines_in_the_contract_field_order(tmp_path):
    status, sends, _ = _replay(tmp_path, _lines([_balance(T0), _balance(T0 + 10 * MINUTE, "2", 50)]), "--quiet")
    expected = (
        f'{{"id":"low_balance:1:{T0}","scenario":"low_balance","msisdn":"1","ts":{T0},'
        f'"send_at":{T0 + MINUTE},"channel":"sms","template":"offer.topup","params":{{"amount":5}}}}\n'
        f'{{"id":"no_topup:1:{T0 + 10 * MINUTE}","scenario":"no_topup","msisdn":"1","ts":{T0 + 10 * MINUTE},'
        f'"send_at":{T0 + 10 * MINUTE},"channel":"call","template":"care.topup","params":{{}}}}\n'
    )
    assert (0, expected) == (status, sends)


def test_replay_stops_the_clock_at_the_last_event(tmp_path):
    """The absence deadline at T0+10m fires only when an event of the file reaches it.

    balance(1) at T0 ── wait 10m ──▶ deadline T0+10m
    last event at T0+10m−1ms: not fired; last event at T0+10m: fired.
    """
    def absence_sends(last: int) -> list[str]:
        _, sends, _ = _replay(tmp_path, _lines([_balance(T0), _balance(last, "2", 50)]), "--quiet")
        return [json.loads(line)["id"] for line in sends.splitlines() if '"no_topup"' in line]

    assert ([], [f"no_topup:1:{T0 + 10 * MINUTE}"]) == (
        absence_sends(T0 + 10 * MINUTE - 1), absence_sends(T0 + 10 * MINUTE)
    )


def test_replay_reads_standard_input_for_a_dash(tmp_path, monkeypatch):
    data = _lines([_balance(T0)]).encode()
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(data)))
    status, from_stdin, _ = _replay(tmp_path, "", "--quiet", stdin=True)
    _, from_file, _ = _replay(tmp_path, data.decode(), "--quiet")
    assert (0, from_file) == (status, from_stdin)
    assert from_stdin.count("\n") == 1


def test_replay_output_is_byte_identical_across_runs(tmp_path):
    events = _lines([_balance(T0 + i * 7_000, str(i % 5), i % 20) for i in range(200)])
    first = _replay(tmp_path, events, "--quiet")
    second = _replay(tmp_path, events, "--quiet")
    assert first == second and first[1]


def test_replay_reports_bad_lines_with_their_numbers_and_processes_the_rest(tmp_path, capsys):
    events = "\n".join([
        json.dumps(_balance(T0)),
        "not json",
        '{"type": "balance", "ts": 1795363200001, "msisdn": "1"}',
        '[1, 2]',
        json.dumps(_balance(T0 + 1, "3")),
    ]) + "\n"
    status, sends, _ = _replay(tmp_path, events)
    err = capsys.readouterr().err
    name = tmp_path / "e.jsonl"
    assert 3 == status  # EXIT_SKIPPED: finished, but lines were skipped
    assert [
        f"{name}:2: error: JSON is malformed: invalid character (byte 4) (line skipped)",
        f"{name}:3: error: Object missing required field `amount` (line skipped)",
        f"{name}:4: error: Expected `object`, got `array` (line skipped)",
    ] == err.splitlines()[:3]
    assert "2 events, 3 malformed and 0 out-of-order lines skipped, 2 sends" in err
    assert "kairos replay: finished, but 3 lines were skipped (3 malformed); exit status 3" == err.splitlines()[-1]
    assert ["1", "3"] == [json.loads(line)["msisdn"] for line in sends.splitlines()]


def test_replay_of_a_missing_events_file_names_it(tmp_path, capsys):
    scenarios = _write(tmp_path / "s.kairos", SCENARIOS)
    status = main(["replay", "--scenarios", str(scenarios), "--events", str(tmp_path / "nope.jsonl")])
    out, err = capsys.readouterr()
    assert (2, "") == (status, out)
    assert f"kairos replay: [Errno 2] No such file or directory: '{tmp_path / 'nope.jsonl'}'\n" == err


def test_replay_refuses_a_list_the_reference_data_lacks_before_reading_events(tmp_path, capsys):
    scenarios = _write(tmp_path / "s.kairos", 'scenario s\n  audience msisdn in list("vip")\n'
                                               '  when balance\n  then sms "x"\nend\n')
    (tmp_path / "ref").mkdir()
    status = main(["replay", "--scenarios", str(scenarios), "--events", "-", "--reference", str(tmp_path / "ref")])
    out, err = capsys.readouterr()
    assert (1, "") == (status, out)  # an error of the scenario against this data, shown at the use
    assert (f"{scenarios}:2:27: error: unknown list 'vip': the reference data has no lists/vip.txt (nor any "
            "other list)\n"
            '  audience msisdn in list("vip")\n'
            "                          ^\n") == err


@pytest.mark.parametrize("text", ["", "# only a comment\n# and another\n"])
def test_a_file_with_no_scenario_checks_clean(tmp_path, capsys, text):
    _write(tmp_path / "s.kairos", text)
    assert (0, "ok: 0 scenarios in 1 file\n") == (main(["check", str(tmp_path / "s.kairos")]),
                                                  capsys.readouterr().out)


def test_replay_with_an_unknown_time_zone_says_so_and_exits_2(tmp_path, capsys):
    scenarios = _write(tmp_path / "s.kairos", SCENARIOS)
    with pytest.raises(SystemExit) as info:
        main(["replay", "--scenarios", str(scenarios), "--events", "-", "--tz", "Asia/Shanghia"])
    err = capsys.readouterr().err
    assert 2 == info.value.code
    assert err.endswith("kairos replay: error: argument --tz: unknown time zone 'Asia/Shanghia': "
                        "use an IANA name such as Asia/Shanghai\n")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_replay_says_when_a_scenario_reacts_to_its_own_triggers(tmp_path, capsys, workers):
    """Each trigger re-enters as an event; a scenario matching its own triggers would loop for
    ever. The chain is cut (the sends so far are written) and the summary says so, also when
    the subscribers are spread over workers."""
    scenarios = _write(tmp_path / "s.kairos", 'scenario remind\n  when trigger where channel == "sms"\n'
                                               '  then sms "reminder"\nend\n'
                                               'scenario first\n  when balance\n  then sms "offer"\nend\n')
    events = _write(tmp_path / "e.jsonl", _lines([_balance(T0)]))
    status = main(["replay", "--scenarios", str(scenarios), "--events", str(events), "--out",
                   str(tmp_path / "sends.jsonl"), "--workers", workers])
    summary = capsys.readouterr().err.splitlines()[-1]
    assert 0 == status
    assert summary.startswith("kairos replay: 1 event, 0 malformed and 0 out-of-order lines skipped, 9 sends; "
                              "1 trigger chain cut after 8 re-entries (does a scenario match its own "
                              "triggers?) (")


def test_a_send_delayed_past_the_last_event_is_written_with_its_send_at(tmp_path):
    """The trigger happened (and re-entered) at its time; `after` only moves delivery.
    So a send whose send_at lies after the file's last event is still in the output."""
    _, sends, _ = _replay(tmp_path, _lines([_balance(T0)]), "--quiet")
    assert [(f"low_balance:1:{T0}", T0 + MINUTE)] == [
        (s["id"], s["send_at"]) for s in map(json.loads, sends.splitlines())
    ]
