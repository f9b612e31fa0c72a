"""A list, area or tag name only the reference data knows is checked against the folder, at its use.

``kairos check --reference DIR`` reports a list or area the folder lacks as an
error with FILE:LINE:COL, the line and a caret under the name (and the close
name meant, when there is one), and exits 1; a tag no subscriber has in
``tags.jsonl`` and no scenario's ``set`` writes is a warning (a ``profile``
event may bring it). ``kairos replay`` refuses a missing list or area the same
way, with exit status 1. The expected outputs are pinned whole, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kairos import main
from kairos.engine import ReferenceError, ReferenceNames


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace (the current directory, so reported names are short) with a reference folder ``ref``:
    lists vip and dnd, areas airport and mall, tags region and plan_type."""
    monkeypatch.chdir(tmp_path)
    ref = tmp_path / "ref"
    (ref / "lists").mkdir(parents=True)
    (ref / "lists" / "vip.txt").write_text("13800000001\n", encoding="utf-8")
    (ref / "lists" / "dnd.txt").write_text("", encoding="utf-8")
    (ref / "cells.csv").write_text("cell,area\nc1,airport\nc2,mall\n", encoding="utf-8")
    rows = [{"msisdn": "13800000001", "tags": {"region": "foshan"}},
            {"msisdn": "13800000002", "tags": {"plan_type": "prepaid", "region": "zhuhai"}}]
    (ref / "tags.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tmp_path


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_check_reports_a_list_the_reference_data_lacks_at_its_use_with_the_close_name(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  audience not msisdn in list("vipp")\n  when topup\n'
                                     '  then sms "x"\nend\n', encoding="utf-8")
    assert (1, "", "s.kairos:2:31: error: unknown list 'vipp': the reference data has no lists/vipp.txt; "
                   "did you mean 'vip'?\n"
                   '  audience not msisdn in list("vipp")\n'
                   "                              ^\n") == _check(capsys, "--reference", "ref", "s.kairos")


def test_check_reports_an_unknown_area_of_in_area_and_of_dwell_at_each_name(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  when location where in_area("mall", "airprot")\n'
                                     '  then sms "x"\nend\n\n'
                                     'scenario d\n  when dwell in area("stadium") for 10m\n  then sms "x"\nend\n',
                                     encoding="utf-8")
    assert (1, "",
            "s.kairos:2:39: error: unknown area 'airprot': no cell in cells.csv is in it; did you mean 'airport'?\n"
            '  when location where in_area("mall", "airprot")\n'
            "                                      ^\n"
            "s.kairos:7:22: error: unknown area 'stadium': no cell in cells.csv is in it (the reference data's "
            "areas: airport, mall)\n"
            '  when dwell in area("stadium") for 10m\n'
            "                     ^\n") == _check(capsys, "--reference", "ref", "s.kairos")


def test_check_reports_a_policy_exclusion_of_a_list_the_reference_data_lacks(folder, capsys):
    (folder / "p.kairos").write_text('policy\n  exclude list("dnd"), list("blacklist")\nend\n', encoding="utf-8")
    assert (1, "", "p.kairos:2:29: error: unknown list 'blacklist': the reference data has no lists/blacklist.txt "
                   "(the reference data's lists: dnd, vip)\n"
                   '  exclude list("dnd"), list("blacklist")\n'
                   "                            ^\n") == _check(capsys, "--reference", "ref", "p.kairos")


def test_a_tag_no_subscriber_has_is_a_warning_at_its_first_use_and_the_check_passes(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  audience tags.regoin == "south" or tags.regoin == null\n'
                                     '  when topup\n  then sms "x"\nend\n', encoding="utf-8")
    assert (0, "ok: 1 scenario in 1 file; names checked against ref (1 warning)\n",
            "s.kairos:2:17: warning: no subscriber in tags.jsonl has a tag 'regoin' and no scenario sets it: it reads "
            "null unless a `profile` event brings it; did you mean 'region'?\n"
            '  audience tags.regoin == "south" or tags.regoin == null\n'
            "                ^\n") == _check(capsys, "--reference", "ref", "s.kairos")


def test_a_tag_a_scenario_sets_is_known_in_every_file(folder, capsys):
    (folder / "a.kairos").write_text('scenario reads\n'
                                     '  audience tags.home_cell != null and tags.plan_type == "prepaid"\n'
                                     '  when topup\n  then sms "x"\nend\n', encoding="utf-8")
    (folder / "b.kairos").write_text('scenario writes\n  when location as l\n  set tags.home_cell = l.cell\nend\n',
                                     encoding="utf-8")
    assert (0, "ok: 2 scenarios in 2 files; names checked against ref\n", "") == _check(
        capsys, "--reference", "ref", "a.kairos", "b.kairos")


def test_errors_and_warnings_come_together_in_file_order(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  audience tags.brand == "x" and msisdn in list("gold")\n'
                                     '  when topup\n  then sms "x"\nend\n', encoding="utf-8")
    assert (1, "",
            "s.kairos:2:17: warning: no subscriber in tags.jsonl has a tag 'brand' and no scenario sets it: it reads "
            "null unless a `profile` event brings it\n"
            '  audience tags.brand == "x" and msisdn in list("gold")\n'
            "                ^\n"
            "s.kairos:2:49: error: unknown list 'gold': the reference data has no lists/gold.txt (the reference "
            "data's lists: dnd, vip)\n"
            '  audience tags.brand == "x" and msisdn in list("gold")\n'
            "                                                ^\n") == _check(capsys, "--reference", "ref", "s.kairos")


def test_check_without_reference_does_not_look_at_names(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  audience msisdn in list("gold") and tags.anything == 1\n'
                                     '  when location where in_area("nowhere")\n  then sms "x"\nend\n',
                                     encoding="utf-8")
    assert (0, "ok: 1 scenario in 1 file\n", "") == _check(capsys, "s.kairos")


def test_check_with_a_missing_reference_folder_is_a_usage_error(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  when topup\n  then sms "x"\nend\n', encoding="utf-8")
    assert (2, "", "kairos check: nope: reference folder does not exist\n") == _check(
        capsys, "--reference", "nope", "s.kairos")


def test_replay_refuses_an_unknown_area_at_its_use_with_exit_status_1(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  when location where in_area("airprot")\n  then sms "x"\nend\n',
                                     encoding="utf-8")
    (folder / "e.jsonl").write_text("", encoding="utf-8")
    status = main(["replay", "--scenarios", "s.kairos", "--events", "e.jsonl", "--reference", "ref"])
    assert (1, "", "s.kairos:2:31: error: unknown area 'airprot': no cell in cells.csv is in it; did you mean "
                   "'airport'?\n"
                   '  when location where in_area("airprot")\n'
                   "                              ^\n") == (status, *capsys.readouterr())


def test_explain_refuses_an_unknown_list_at_its_use_with_exit_status_1(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  audience not msisdn in list("dnb")\n  when topup\n'
                                     '  then sms "x"\nend\n', encoding="utf-8")
    (folder / "e.jsonl").write_text("", encoding="utf-8")
    status = main(["explain", "--msisdn", "13800000001", "--scenarios", "s.kairos", "--events", "e.jsonl",
                   "--reference", "ref"])
    out, err = capsys.readouterr()
    assert (1, "") == (status, out)
    assert err.startswith("s.kairos:2:31: error: unknown list 'dnb'")


def test_replay_runs_a_scenario_reading_a_tag_only_profile_events_bring(folder, capsys):
    (folder / "s.kairos").write_text('scenario s\n  audience tags.segment == "gold"\n  when topup\n'
                                     '  then sms "x"\nend\n', encoding="utf-8")
    events = [{"type": "profile", "ts": 1_795_363_200_000, "msisdn": "13800000001", "tags": {"segment": "gold"}},
              {"type": "topup", "ts": 1_795_363_260_000, "msisdn": "13800000001", "amount": 50}]
    (folder / "e.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    status = main(["replay", "--scenarios", "s.kairos", "--events", "e.jsonl", "--reference", "ref", "--quiet"])
    out, err = capsys.readouterr()
    assert (0, "") == (status, err)
    assert ["13800000001"] == [json.loads(line)["msisdn"] for line in out.splitlines()]


def test_reference_names_are_read_without_loading_the_tags(tmp_path):
    (tmp_path / "tags.jsonl").write_bytes(b'\xef\xbb\xbf{"msisdn": "1", "tags": {"a": 1, "b": {"x": [1]}}}\n\n'
                                          b'{"msisdn": "2", "tags": {"c": null}}\n')
    names = ReferenceNames.scan(tmp_path)
    assert (frozenset(), frozenset(), frozenset({"a", "b", "c"})) == (names.lists, names.areas, names.tags)


def test_a_bad_tags_line_is_reported_with_its_number(tmp_path):
    (tmp_path / "tags.jsonl").write_text('{"msisdn": "1", "tags": {}}\n{"msisdn": "2", "tags": [1]}\n',
                                         encoding="utf-8")
    with pytest.raises(ReferenceError, match=r"tags\.jsonl:2: Expected `object`, got `array`"):
        ReferenceNames.scan(tmp_path)


def _daemon_config(folder: Path, scenario: str) -> Path:
    """A daemon configuration over ``ref`` whose scenario folder holds ``scenario`` as s.kairos."""
    from tests.daemon.support import write_config

    return write_config(folder, scenario, channels=("sms",), reference=str(folder / "ref"))


def test_the_daemon_refuses_to_start_on_a_list_the_reference_data_lacks_at_its_use(folder):
    from kairos._config import StartError, load_config
    from kairos._daemon import Daemon

    config = load_config(_daemon_config(folder, 'scenario s\n  audience msisdn in list("vipp")\n  when topup\n'
                                                '  then sms "x"\nend\n'))
    with pytest.raises(StartError) as refused:
        Daemon(config)
    assert (f"{folder}/scenarios/s.kairos:2:27: error: unknown list 'vipp': the reference data has no "
            "lists/vipp.txt; did you mean 'vip'?\n"
            '  audience msisdn in list("vipp")\n'
            "                          ^") == str(refused.value)


def test_a_reload_naming_an_area_the_reference_data_lacks_is_refused_at_its_use(folder):
    from types import SimpleNamespace

    from kairos._config import load_config
    from kairos._reload import AuditLog, Reloader
    from kairos.engine import Reference

    config = load_config(_daemon_config(folder, 'scenario s\n  when topup\n  then sms "x"\nend\n'))
    (folder / "scenarios" / "s.kairos").write_text('scenario s\n  when location where in_area("airprot")\n'
                                                   '  then sms "x"\nend\n', encoding="utf-8")
    daemon = SimpleNamespace(config=config, reference=Reference.load(folder / "ref"))
    reloader = Reloader(daemon, AuditLog(folder / "audit"), poll_s=1)  # type: ignore[arg-type]
    result = reloader.reload("test")
    assert (False, 1) == (result.ok, reloader.refused)
    assert (f"{folder}/scenarios/s.kairos:2:31: error: unknown area 'airprot': no cell in cells.csv is in it; "
            "did you mean 'airport'?\n"
            '  when location where in_area("airprot")\n'
            "                              ^") == result.error
