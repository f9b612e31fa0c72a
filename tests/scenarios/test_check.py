"""``kairos check`` on the catalogue, and actions refused against the template catalogue."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kairos import main
from tests.scenarios.support import ROOT, SCENARIOS, catalogue_files

DOMAIN_ITEMS = 17


def _check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["check", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_catalogue_checks_clean_against_its_templates(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    status, out, err = _check(capsys, "scenarios/")
    n = sum(len(re.findall(r"^scenario ", p.read_text(encoding="utf-8"), re.M)) for p in catalogue_files())
    assert (0, "") == (status, err)
    assert out.startswith(f"ok: {n} scenarios")
    assert out.endswith("; templates checked against scenarios/templates.toml\n")


def test_the_catalogue_covers_every_scenario_item_of_the_domain():
    """Each scenario names the DOMAIN.md item it implements in the comment above it."""
    items = set()
    for path in catalogue_files():
        items.update(int(n) for n in re.findall(r"^# (\d+)\. ", path.read_text(encoding="utf-8"), re.M))
    assert set(range(1, DOMAIN_ITEMS + 1)) - items == set()


def test_every_catalogue_scenario_has_a_test():
    """A scenario is tested when a test module under tests/scenarios/ names it in a string, or a
    ``kairos test`` file beside the catalogue (scenarios/tests/) does."""
    tests = "".join(p.read_text(encoding="utf-8") for p in [*Path(__file__).parent.glob("test_*.py"),
                                                             *(SCENARIOS / "tests").glob("*.test.toml")])
    names = [n for p in catalogue_files()
             for n in re.findall(r"^scenario (\w+)", p.read_text(encoding="utf-8"), re.M)]
    assert [n for n in names if f'"{n}"' not in tests] == []


def _folder(tmp_path: Path, scenario: str, templates: str) -> Path:
    (tmp_path / "offers.kairos").write_text(scenario, encoding="utf-8")
    (tmp_path / "templates.toml").write_text(templates, encoding="utf-8")
    return tmp_path


TEMPLATES = """
[templates."offer.data_addon"]
sms = "流量已用{pct}%，回复KTJY订购{pack_gb:.0f}GB加油包"
"""


def test_an_action_without_a_placeholder_parameter_is_refused_at_the_action(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_folder(tmp_path, """scenario data_90
  when usage as u where crosses_above(pct, 90)
  then sms "offer.data_addon" with {pct: u.pct}
end
""", TEMPLATES))
    status, out, err = _check(capsys, ".")
    assert (1, "") == (status, out)
    assert err == (
        "offers.kairos:3:8: error: template 'offer.data_addon' for sms needs parameter 'pack_gb', "
        "which the action does not give; the templates are read from templates.toml\n"
        '  then sms "offer.data_addon" with {pct: u.pct}\n'
        "       ^\n"
    )


def test_an_unknown_template_is_refused_with_the_close_match(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_folder(tmp_path, """scenario data_90
  when usage as u where crosses_above(pct, 90)
  then popup "offer.data_addon" with {pct: u.pct, pack_gb: 2}
    or sms "offer.data_adon" with {pct: u.pct, pack_gb: 2}
end
""", TEMPLATES))
    status, out, err = _check(capsys, "offers.kairos")
    assert (1, "") == (status, out)
    assert err == (
        "offers.kairos:3:8: error: template 'offer.data_addon' has no text for channel 'popup' "
        "(it has: sms); the templates are read from templates.toml\n"
        '  then popup "offer.data_addon" with {pct: u.pct, pack_gb: 2}\n'
        "       ^\n"
        "offers.kairos:4:8: error: unknown template 'offer.data_adon' (did you mean 'offer.data_addon'?); "
        "the templates are read from templates.toml\n"
        '    or sms "offer.data_adon" with {pct: u.pct, pack_gb: 2}\n'
        "       ^\n"
    )


def test_templates_given_on_the_command_line_replace_the_ones_beside_the_scenarios(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_folder(tmp_path, """scenario data_90
  when usage as u where crosses_above(pct, 90)
  then sms "offer.data_addon" with {pct: u.pct}
end
""", TEMPLATES))
    (tmp_path / "other.toml").write_text('[templates."offer.data_addon"]\nsms = "流量已用{pct}%"\n', encoding="utf-8")
    status, out, err = _check(capsys, "offers.kairos", "--templates", "other.toml")
    assert (0, "ok: 1 scenario in 1 file; templates checked against other.toml\n", "") == (status, out, err)


def test_a_missing_template_file_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_folder(tmp_path, 'scenario s when usage then sms "offer.data_addon" end\n', TEMPLATES))
    status, out, err = _check(capsys, "offers.kairos", "--templates", "nowhere.toml")
    assert (1, "") == (status, out)
    assert err.startswith("kairos check: nowhere.toml: [Errno 2] No such file or directory")


def test_scenarios_without_a_template_catalogue_are_checked_as_before(tmp_path, capsys, monkeypatch):
    (tmp_path / "offers.kairos").write_text('scenario s when usage then sms "anything" end\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert (0, "ok: 1 scenario in 1 file\n", "") == _check(capsys, "offers.kairos")


def test_replay_refuses_a_scenario_its_templates_cannot_render(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_folder(tmp_path, """scenario data_90
  when usage as u where crosses_above(pct, 90)
  then sms "offer.data_addon" with {pct: u.pct}
end
""", TEMPLATES))
    (tmp_path / "events.jsonl").write_text("", encoding="utf-8")
    status = main(["replay", "--scenarios", ".", "--events", "events.jsonl", "--out", "sends.jsonl"])
    out, err = capsys.readouterr()
    assert (1, "") == (status, out)
    assert err.startswith("offers.kairos:3:8: error: template 'offer.data_addon' for sms needs parameter 'pack_gb'")
    assert not (tmp_path / "sends.jsonl").exists()


def test_the_shipped_catalogue_copied_elsewhere_still_finds_its_templates(tmp_path, capsys):
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    status, out, err = _check(capsys, str(tmp_path / "scenarios"))
    assert (0, "") == (status, err)
    assert out.endswith(f"; templates checked against {tmp_path / 'scenarios' / 'templates.toml'}\n")
