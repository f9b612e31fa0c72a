"""A simulated operator week for the policy and the report: the catalogue's stories, many subscribers, feedback.

Each story of ``scenarios/tests`` (``*.events.jsonl``) is replayed by many made-up
subscribers (each a copy of the story's subscriber: same tags, same lists),
shifted over a week; then the channels' answers are simulated as ``feedback``
events — deterministic for a seed — for every send and, as an order system
would report, for some control triggers. Used by the report tests and by
``python -m tests.policy.simulate OUT_DIR`` to render the screenshots in docs/policy.md.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STORIES = ROOT / "scenarios" / "tests"
REFERENCE = ROOT / "scenarios" / "reference"
HOUR = 3_600_000
ANSWERS = {  # channel → P(delivered), P(clicked | delivered), P(accepted | clicked), P(rejected | clicked)
    "sms": (0.95, 0.22, 0.35, 0.2),
    "popup": (0.99, 0.45, 0.3, 0.25),
    "call": (0.8, 0.9, 0.3, 0.4),
}
CONTROL_ACCEPTS = 0.025  # subscribers who bought the product without being contacted


def week(folder: Path, copies: int = 40, seed: int = 7) -> tuple[Path, Path]:
    """Write ``events.jsonl`` and ``reference/`` into ``folder``; returns both paths."""
    rnd = random.Random(seed)
    ref = folder / "reference"
    shutil.copytree(REFERENCE, ref, dirs_exist_ok=True)
    tags = {json.loads(line)["msisdn"]: json.loads(line)["tags"]
            for line in (REFERENCE / "tags.jsonl").read_text().splitlines() if line.strip()}
    lists = {p.stem: set(p.read_text().split()) for p in (REFERENCE / "lists").glob("*.txt")}
    events: list[dict[str, Any]] = []
    new_tags: list[str] = []
    number = 13_900_000_000
    for story in sorted(STORIES.glob("*.events.jsonl")):
        lines = [json.loads(line) for line in story.read_text().splitlines() if line.strip()]
        for _ in range(copies):
            shift = rnd.randrange(0, 6 * 24) * HOUR + rnd.randrange(0, HOUR)
            renamed: dict[str, str] = {}
            for ev in lines:
                old = ev["msisdn"]
                if old not in renamed:
                    number += 1
                    renamed[old] = str(number)
                    if old in tags:
                        new_tags.append(json.dumps({"msisdn": renamed[old], "tags": tags[old]}))
                    for members in lists.values():
                        if old in members:
                            members.add(renamed[old])
                copy = dict(ev, msisdn=renamed[old], ts=ev["ts"] + shift)
                if "trigger_id" in copy:  # a story's own feedback names its own trigger
                    tid = copy["trigger_id"]
                    sc, m, ts = tid.rsplit(":", 2)[0:3] if tid.count(":") >= 2 else ("", "", "0")
                    copy["trigger_id"] = f"{sc}:{renamed.get(m, m)}:{int(ts) + shift}"
                events.append(copy)
    with open(ref / "tags.jsonl", "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in new_tags))
    for name, members in lists.items():
        (ref / "lists" / f"{name}.txt").write_text("".join(m + "\n" for m in sorted(members)))
    events.sort(key=lambda e: e["ts"])
    path = folder / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path, ref


def feedback(sends: Path, controls: Path, seed: int = 11) -> list[dict[str, Any]]:
    """The channels' answers to ``sends`` and the order system's to ``controls`` (JSON lines)."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for line in sends.read_text().splitlines():
        s = json.loads(line)
        p_del, p_click, p_acc, p_rej = ANSWERS.get(s["channel"], ANSWERS["sms"])
        # answers come after the decision (which an arbitration window may delay)
        t = max(s["send_at"], s["ts"] + 300_000) + rnd.randrange(5_000, 120_000)

        def answer(outcome: str, t: int, s: dict[str, Any] = s) -> None:  # s: this send
            out.append({"type": "feedback", "ts": t, "msisdn": s["msisdn"], "trigger_id": s["id"],
                        "scenario": s["scenario"], "channel": s["channel"], "outcome": outcome})

        if rnd.random() >= p_del:
            answer("failed", t)
            continue
        answer("delivered", t)
        if rnd.random() < p_click:
            answer("clicked", t + 60_000)
            r = rnd.random()
            if r < p_acc:
                answer("accepted", t + 120_000)
            elif r < p_acc + p_rej:
                answer("rejected", t + 120_000)
    for line in controls.read_text().splitlines():
        c = json.loads(line)
        if rnd.random() < CONTROL_ACCEPTS:
            out.append({"type": "feedback", "ts": c["ts"] + 6 * HOUR, "msisdn": c["msisdn"],
                        "trigger_id": c["id"], "scenario": c["scenario"], "outcome": "accepted"})
    return out


def merged(events: Path, answers: list[dict[str, Any]], into: Path) -> Path:
    """``events`` with ``answers`` merged in ts order (stable: events first at equal ts)."""
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    rows = sorted(rows + answers, key=lambda e: e["ts"])
    into.write_text("".join(json.dumps(e) + "\n" for e in rows), encoding="utf-8")
    return into


def main(folder: str) -> None:
    """Simulate a week and write ``report.html`` with the catalogue and its policy."""
    from kairos import main as kairos

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    events, ref = week(root, copies=150)
    scenarios = [str(p) for p in sorted((ROOT / "scenarios").glob("*.kairos"))]
    common = ["replay", "--scenarios", *scenarios, "--reference", str(ref), "--quiet"]
    kairos(common + ["--events", str(events), "--out", str(root / "first.jsonl"),
                     "--control-out", str(root / "control.jsonl")])
    answers = feedback(root / "first.jsonl", root / "control.jsonl")
    full = merged(events, answers, root / "with_feedback.jsonl")
    kairos(common + ["--events", str(full), "--out", str(root / "sends.jsonl"), "--stats",
                     "--report", str(root / "report.html")])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/kairos-week")
