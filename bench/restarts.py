"""Restarts over an old backlog: how many sends go out again after SIGKILLs, and after a clean restart.

    python -m bench.restarts [--kills 20] [--subscribers 3000] [--days-ago 11] [--seed 7] [--keep DIR]

A generated province day (``kairos.traffic``) whose events are ``--days-ago``
days old — older than the outbox's ``retention_ms`` margin, like a backlog
after an outage or a re-read topic — is written whole into a file the daemon
tails, with the bundled catalogue and file channels that write every delivery
they are given, repeats included (``dedupe = false``, still idempotent). The
daemon is killed with SIGKILL ``--kills`` times, each time once it reported a
seeded number of events since its start in a ``snapshot taken`` line; then it
runs to the end and is stopped with SIGTERM, started again, and stopped again
once it has settled. Printed: distinct sends, extra deliveries over the kills
(and the sends in doubt at the kills: ids whose last ledger record on disk was
an attempt), re-sends after the clean restart, and what differs from an
uninterrupted ``kairos replay`` of the same day.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kairos import traffic
from kairos.adapters import read_ledger

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CHANNELS = ("sms", "popup", "call")
DAY_MS = 86_400_000
KAIROS = [sys.executable, "-m", "kairos"]


def _config(folder: Path) -> Path:
    channels = "".join(f'[channels.{c}]\nplugin = "file"\npath = "out/{c}.jsonl"\nfsync = false\ndedupe = false\n'
                       for c in CHANNELS)
    text = (f'scenarios = "{SCENARIOS}"\nstate_dir = "state"\nreference = "ref"\n'
            "[time]\nidle_advance = false\nallowed_lateness_ms = 0\n"
            "[snapshot]\ninterval_s = 0.3\n"
            '[[sources]]\nkind = "file"\npath = "in/events.jsonl"\npoll_ms = 20\n' + channels)
    path = folder / "kairos.toml"
    path.write_text(text)
    return path


def _records(folder: Path, since: int, event: str) -> list[dict[str, Any]]:
    with open(folder / "daemon.log", "rb") as f:
        f.seek(since)
        data = f.read()
    out = []
    for line in data.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == event:
            out.append(rec)
    return out


def _offset(folder: Path) -> int:
    path = folder / "daemon.log"
    return path.stat().st_size if path.exists() else 0


def _start(config: Path) -> subprocess.Popen:
    log = open(config.parent / "daemon.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(KAIROS + ["run", "--config", str(config)], cwd=config.parent, stdout=log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _wait(folder: Path, proc: subprocess.Popen, since: int, done: Any, what: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited ({proc.returncode}) while waiting for {what}; see {folder}/daemon.log")
        if done(_records(folder, since, "snapshot taken")):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _settled(taken: list[dict[str, Any]]) -> bool:
    return len(taken) >= 2 and taken[-2]["events"] == taken[-1]["events"] and taken[-1]["pending_sends"] == 0


def _delivered(folder: Path) -> list[dict[str, Any]]:
    out = []
    for c in CHANNELS:
        path = folder / "out" / f"{c}.jsonl"
        if path.exists():
            out += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return out


def measure(folder: Path, *, kills: int, subscribers: int, days_ago: int, seed: int) -> dict[str, Any]:
    """Run the whole experiment in ``folder``; returns the figures."""
    rnd = random.Random(seed)
    (folder / "in").mkdir(parents=True)
    start_ms = (int(time.time() * 1000) - days_ago * DAY_MS) // DAY_MS * DAY_MS - 8 * 3_600_000  # a local midnight
    events = folder / "in" / "events.jsonl"
    total = traffic.write(events, subscribers=subscribers, seed=seed, start_ms=start_ms)
    traffic.make_reference(folder / "ref", subscribers, seed)
    replay = folder / "replay.jsonl"
    subprocess.run(KAIROS + ["replay", "--scenarios", str(SCENARIOS), "--events", str(events), "--reference",
                             str(folder / "ref"), "--out", str(replay), "--quiet"], check=True)
    expected = {json.loads(x)["id"] for x in replay.read_text().splitlines() if x.strip()}
    config = _config(folder)
    doubtful = 0
    started = time.monotonic()
    for i in range(kills):
        since = _offset(folder)
        proc = _start(config)
        target = rnd.randrange(2 * total // kills)
        _wait(folder, proc, since, lambda t: t and (t[-1]["events"] >= target or _settled(t)), f"kill point {i}")  # noqa: B023 (waited on in this iteration)
        proc.kill()
        proc.wait()
        doubtful += len(read_ledger(folder / "state" / "outbox" / "ledger.log").in_doubt)
    since = _offset(folder)
    proc = _start(config)
    _wait(folder, proc, since, _settled, "the end of the input")
    proc.send_signal(signal.SIGTERM)
    status = proc.wait()
    after_kills = _delivered(folder)
    since = _offset(folder)
    proc = _start(config)
    _wait(folder, proc, since, _settled, "the clean restart to settle")
    proc.send_signal(signal.SIGTERM)
    status = status or proc.wait()
    after_restart = _delivered(folder)
    ids = collections.Counter(s["id"] for s in after_kills)
    return {
        "events": total,
        "kills": kills,
        "distinct_sends": len(ids),
        "extra_deliveries_over_kills": len(after_kills) - len(ids),
        "most_deliveries_of_one_id": max(ids.values(), default=0),
        "in_doubt_at_kills": doubtful,
        "resent_after_clean_restart": len(after_restart) - len(after_kills),
        "lost_vs_replay": len(expected - set(ids)),
        "spurious_vs_replay": len(set(ids) - expected),
        "exit_status": status,
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.restarts", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--subscribers", type=int, default=3000)
    p.add_argument("--days-ago", type=int, default=11)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", metavar="DIR", help="work in DIR (must not exist) and keep it")
    args = p.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kairos-restarts-")) / "run"
    try:
        figures = measure(folder, kills=args.kills, subscribers=args.subscribers, days_ago=args.days_ago,
                          seed=args.seed)
    finally:
        if not args.keep:
            shutil.rmtree(folder.parent, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
