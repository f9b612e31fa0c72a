"""Replaying the operator catalogue the way an author does: ``kairos replay`` over a small event file.

Every test replays the whole catalogue (all its files together, so a wave's
trigger re-entry and a scenario stealing another's audience are real) with
the shipped reference data, and compares the sends exactly. The catalogue's
``policy.kairos`` (the contact policy, another part of the product) is left
out: these tests pin what each scenario decides, before any policy.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from kairos import main

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
REFERENCE = SCENARIOS / "reference"
#: the recorded stories, kept beside the catalogue with their ``kairos test`` files (``NAME.events.jsonl``)
EVENTS = SCENARIOS / "tests"
POLICY_FILE = "policy.kairos"

#: Monday 2026-11-23 00:00 Asia/Shanghai, the day every story starts on
DAY0 = 1_795_363_200_000
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def at(hhmm: str, day: int = 0, seconds: int = 0) -> int:
    """Epoch ms of local time ``HH:MM`` (plus seconds) on day ``day`` after Monday 2026-11-23."""
    h, m = hhmm.split(":")
    return DAY0 + day * DAY + int(h) * HOUR + int(m) * MINUTE + seconds * 1000


def on(date: str, hhmm: str) -> int:
    """Epoch ms of local time ``HH:MM`` on ``YYYY-MM-DD`` (Asia/Shanghai, UTC+8 all year)."""
    y, m, d = map(int, date.split("-"))
    h, mi = map(int, hhmm.split(":"))
    return int(dt.datetime(y, m, d, h, mi, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)


def catalogue_files() -> list[Path]:
    """Every scenario file of the catalogue, without the contact policy."""
    return sorted(p for p in SCENARIOS.glob("*.kairos") if p.name != POLICY_FILE)


def story(name: str) -> list[dict[str, Any]]:
    """The events of ``scenarios/tests/NAME.events.jsonl``, as dicts a test may vary."""
    lines = (EVENTS / f"{name}.events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def replay(events: list[dict[str, Any]], tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    """The sends ``kairos replay`` writes for ``events`` with the whole catalogue and its reference data
    (``options``: more of the command's options, e.g. ``--tags-out FILE``)."""
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    out = tmp_path / "sends.jsonl"
    status = main([
        "replay", "--scenarios", *map(str, catalogue_files()), "--reference", str(REFERENCE),
        "--templates", str(SCENARIOS / "templates.toml"),
        "--events", str(events_file), "--out", str(out), "--quiet", *options,
    ])
    assert status == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def replay_story(name: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The sends for the unchanged story ``scenarios/tests/NAME.events.jsonl``."""
    return replay(story(name), tmp_path)


def send(scenario: str, msisdn: str, ts: int, channel: str, template: str,
         params: dict[str, Any] | None = None, send_at: int | None = None) -> dict[str, Any]:
    """The line ``kairos replay`` writes for a first trigger at ``ts``."""
    return {
        "id": f"{scenario}:{msisdn}:{ts}", "scenario": scenario, "msisdn": msisdn, "ts": ts,
        "send_at": ts if send_at is None else send_at, "channel": channel, "template": template,
        "params": params or {},
    }


def of(scenario: str, sends: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sends of one scenario."""
    return [s for s in sends if s["scenario"] == scenario]


def changed(events: list[dict[str, Any]], index: int, **fields: Any) -> list[dict[str, Any]]:
    """A copy of ``events`` whose event ``index`` has ``fields`` replaced (a near miss)."""
    out = [dict(e) for e in events]
    out[index].update(fields)
    return out


def without(events: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """A copy of ``events`` without event ``index`` (one event short)."""
    return [dict(e) for i, e in enumerate(events) if i != index]


def as_subscriber(events: list[dict[str, Any]], msisdn: str) -> list[dict[str, Any]]:
    """The same story lived by another subscriber (other tags, other lists)."""
    return [{**e, "msisdn": msisdn} for e in events]


def inserted(events: list[dict[str, Any]], event: dict[str, Any]) -> list[dict[str, Any]]:
    """A copy of ``events`` with ``event`` added in ts order (after events of the same ts)."""
    out = [dict(e) for e in events]
    i = next((n for n, e in enumerate(out) if e["ts"] > event["ts"]), len(out))
    out.insert(i, event)
    return out
