"""Start the daemon as a real process, configure it, feed it, and wait for what it writes (bounded, polling)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

KAIROS = [sys.executable, "-m", "kairos"]


def write_config(folder: Path, scenarios: str, *, extra: str = "", sources: str | None = None,
                 channels: tuple[str, ...] = ("sms", "popup", "call"), idle_advance: bool = False,
                 interval_s: float = 0.2, lateness_ms: int = 0, fork: bool = True, reference: str = "") -> Path:
    """A scenarios folder and a kairos.toml under ``folder``; every channel is a file channel in out/."""
    (folder / "scenarios").mkdir(parents=True, exist_ok=True)
    (folder / "scenarios" / "s.kairos").write_text(scenarios)
    (folder / "in").mkdir(exist_ok=True)
    chans = "".join(f'[channels.{c}]\nplugin = "file"\npath = "out/{c}.jsonl"\nfsync = false\n' for c in channels)
    src = sources if sources is not None else '[[sources]]\nkind = "file"\npath = "in/events.jsonl"\npoll_ms = 20\n'
    text = (
        'scenarios = "scenarios"\nstate_dir = "state"\n'
        + (f'reference = "{reference}"\n' if reference else "")
        +
        f"[time]\nidle_advance = {str(idle_advance).lower()}\nidle_after_ms = 200\nallowed_lateness_ms = {lateness_ms}\n"
        f"[snapshot]\ninterval_s = {interval_s}\nfork = {str(fork).lower()}\n"
        + src + chans + extra
    )
    path = folder / "kairos.toml"
    path.write_text(text)
    return path


def start(config: Path, **kw: Any) -> subprocess.Popen:
    """``kairos run --config CONFIG`` as a child process; its log goes to CONFIG's folder/daemon.log."""
    log = open(config.parent / "daemon.log", "ab")  # noqa: SIM115 - the child owns it
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(KAIROS + ["run", "--config", str(config)], cwd=config.parent, stdout=log,
                            stderr=subprocess.STDOUT, env=env, **kw)


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM and wait for the exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def kill(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a file (none if it does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def log_records(folder: Path) -> list[dict[str, Any]]:
    """The daemon's JSON log records so far (non-JSON lines are ignored)."""
    out = []
    path = folder / "daemon.log"
    if path.exists():
        for x in path.read_text().splitlines():
            try:
                out.append(json.loads(x))
            except ValueError:
                continue
    return out


def logged(folder: Path, event: str) -> list[dict[str, Any]]:
    return [r for r in log_records(folder) if r.get("event") == event]


def sends(folder: Path, channels: tuple[str, ...] = ("sms", "popup", "call")) -> list[dict[str, Any]]:
    """Every send the file channels wrote."""
    out = []
    for c in channels:
        out += lines(folder / "out" / f"{c}.jsonl")
    return out
