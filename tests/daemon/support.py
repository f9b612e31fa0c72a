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
        f"[time]\nidle_advance = {str(idle_advance).lower()}\nidle_after_ms = 200\n"
        f"allowed_lateness_ms = {lateness_ms}\n"
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
    """The complete JSON lines of a file (none if it does not exist yet). A line a running daemon is
    writing may be read half-written: only what ends in ``\n`` counts, as every reader of a live file does."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(x) for x in text[: text.rfind("\n") + 1].split("\n") if x.strip()]


def log_offset(folder: Path) -> int:
    """Where the daemon log ends now: ``since=`` this reads only what a process started next writes."""
    path = folder / "daemon.log"
    return path.stat().st_size if path.exists() else 0


def log_records(folder: Path, since: int = 0) -> list[dict[str, Any]]:
    """The daemon's JSON log records so far, from byte ``since`` on (non-JSON lines are ignored)."""
    out = []
    path = folder / "daemon.log"
    if path.exists():
        with open(path, "rb") as f:
            f.seek(since)
            data = f.read()
        for x in data.decode("utf-8", "replace").splitlines():
            try:
                out.append(json.loads(x))
            except ValueError:
                continue
    return out


def logged(folder: Path, event: str, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in log_records(folder, since) if r.get("event") == event]


def sends(folder: Path, channels: tuple[str, ...] = ("sms", "popup", "call")) -> list[dict[str, Any]]:
    """Every send the file channels wrote."""
    out = []
    for c in channels:
        out += lines(folder / "out" / f"{c}.jsonl")
    return out


def wait_for_progress(folder: Path, proc: subprocess.Popen, since: int, *, snapshots: int, events: int,
                      input_done: Callable[[], bool], timeout: float = 180, what: str = "progress") -> dict[str, Any]:
    """Wait until the process whose log starts at byte ``since`` reported, in a ``snapshot taken`` line, at
    least ``snapshots`` snapshots and ``events`` events since its start — or, once ``input_done()``, two
    snapshots in a row with the same count (it has read everything there is). Returns that line.

    Fault points chosen this way depend on what the daemon did, never on how fast the machine is."""

    def reached() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode} while waiting for {what}")
        taken = logged(folder, "snapshot taken", since)
        if not taken or taken[-1]["snapshots"] < snapshots:
            return None
        last = taken[-1]
        if last["events"] >= events or (input_done() and len(taken) >= 2 and taken[-2]["events"] == last["events"]):
            return last
        return None

    return wait_for(reached, timeout, what)


def wait_until_settled(folder: Path, proc: subprocess.Popen, since: int, *, timeout: float = 180,
                       what: str = "the daemon to settle") -> dict[str, Any]:
    """Wait until the daemon has read all its input and delivered every send it accepted: two ``snapshot taken``
    lines after byte ``since`` (an offset taken once all input was written) with the same event count, the
    second with no send pending. Returns that line."""

    def settled() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode} while waiting for {what}")
        taken = logged(folder, "snapshot taken", since)
        if len(taken) >= 2 and taken[-2]["events"] == taken[-1]["events"] and taken[-1]["pending_sends"] == 0:
            return taken[-1]
        return None

    return wait_for(settled, timeout, what)



def wait_until_done(folder: Path, proc: subprocess.Popen, since: int, *, events: int,
                    idle: Callable[[], bool] = lambda: True, timeout: float = 180,
                    what: str = "the daemon to finish its input") -> dict[str, Any]:
    """Wait until the process whose log starts at byte ``since`` has taken all ``events`` input events (a
    ``snapshot taken`` line says so), then ``idle()`` holds once a later snapshot is published (its state was
    captured after those events: say no sweep under way in it), then a snapshot after that reports no send
    pending. Returns that last line.

    Every send the input and its instants imply was decided before that last snapshot and delivered by it: a
    wrong extra send is in the channel files when the test compares them, however loaded the machine."""

    def alive() -> None:
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode} while waiting for {what}")

    def taken() -> bool:
        alive()
        return any(x["events"] >= events for x in logged(folder, "snapshot taken", since))

    wait_for(taken, timeout, f"{what}: every event taken")
    after_events = log_offset(folder)

    def settled() -> bool:
        alive()  # the files idle() reads hold state captured after the line past ``after_events``, or later
        return bool(logged(folder, "snapshot taken", after_events)) and idle()

    wait_for(settled, timeout, f"{what}: nothing left to do")
    after_idle = log_offset(folder)

    def delivered() -> dict[str, Any] | None:
        alive()
        return next((x for x in logged(folder, "snapshot taken", after_idle) if x["pending_sends"] == 0), None)

    return wait_for(delivered, timeout, f"{what}: every send delivered")
