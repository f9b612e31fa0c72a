"""docs/operations.md's "The daemon in five minutes" runs as written: its blocks are read from there by their markers.

Each ``<!-- quickstart:NAME -->`` block is a shell script run with bash in a
folder laid out as a checkout (the catalogue, ``examples/quickstart.toml``,
the virtualenv's commands on the PATH). Only the HTTP port changes (to a free
one). The blocks a user leaves running in a terminal (``run``, ``live``) run
in their own process group, and Ctrl-C is SIGINT to that group, as a terminal
sends it. Between blocks the test waits for what the text says happens next —
by what the daemon writes and counts, never by sleeping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.daemon.support import lines, wait_for

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- quickstart:(\w+) -->\n```sh\n(.*?)```", re.S)
PORT = "8787"
HOUR = 3_600_000


def blocks() -> dict[str, str]:
    """The recipe's shell blocks by name."""
    found: dict[str, str] = {}
    for name, body in BLOCK.findall((ROOT / "docs" / "operations.md").read_text()):
        assert name not in found, f"docs/operations.md has two quickstart blocks named {name!r}"
        found[name] = body
    return found


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


class Checkout:
    """A folder laid out as a checkout, where the blocks run with the port replaced."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        (root / "scenarios").symlink_to(ROOT / "scenarios")  # read, never written, by the recipe
        (root / "examples").mkdir()
        config = (ROOT / "examples" / "quickstart.toml").read_text()
        assert f"127.0.0.1:{PORT}" in config
        (root / "examples" / "quickstart.toml").write_text(config.replace(PORT, self.port))
        self.blocks = blocks()
        bin_dir = str(Path(sys.executable).parent)
        self.env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", VIRTUAL_ENV=str(Path(bin_dir).parent),
                        PYTHONUNBUFFERED="1")
        self.started: list[subprocess.Popen] = []

    def text(self, name: str) -> str:
        return self.blocks[name].replace(PORT, self.port)

    def run(self, name: str) -> str:
        """A block that ends by itself: its output (stdout and stderr)."""
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", self.text(name)], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"block {name!r} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    def start(self, name: str, log: Path) -> subprocess.Popen:
        """A block left running in a terminal, in its own process group; its output goes to ``log``."""
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", self.text(name)], cwd=self.root, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.started.append(proc)
        return proc

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``, summed by metric name; empty while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                sample, value = line.rsplit(" ", 1)
                name = sample.split("{", 1)[0]
                out[name] = out.get(name, 0.0) + float(value)
        return out

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _ctrl_c(proc: subprocess.Popen) -> int:
    """What Ctrl-C at its terminal does: SIGINT to the foreground process group; then its exit status."""
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(60)


def _records(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]


def test_the_readme_quickstart_is_complete():
    assert ["traffic", "run", "watch", "metrics", "live", "reload"] == list(blocks())


@pytest.mark.skipif(shutil.which("curl") is None, reason="the recipe reads /metrics with curl")
def test_the_daemon_in_five_minutes_runs_as_written_sends_arrive_metrics_answer_a_reload_and_a_clean_stop(
        tmp_path):
    c = Checkout(tmp_path)
    qs = tmp_path / "quickstart"
    daemon_log = tmp_path / "daemon.log"
    try:
        generated = int(time.time() * 1000)
        c.run("traffic")
        day = len((qs / "events.jsonl").read_bytes().splitlines())
        assert day > 10_000

        daemon = c.start("run", daemon_log)
        # "reads the day in a second or two and delivers what it decided"
        wait_for(lambda: c.metrics().get("kairos_events_total", 0) >= day, timeout=120,
                 what="the daemon to read the generated day")
        wait_for(lambda: lines(qs / "out" / "sms.jsonl"), timeout=120, what="SMS in quickstart/out/sms.jsonl")

        watched = c.run("watch")
        assert re.search(r"^\s*[1-9]\d* quickstart/out/sms\.jsonl$", watched, re.M), watched
        last = json.loads(watched.strip().splitlines()[-1])
        assert "sms" == last["channel"] and last["text"]
        sent = [send["ts"] for f in (qs / "out").glob("*.jsonl") for send in lines(f)]
        assert generated - 24 * HOUR <= min(sent) and max(sent) <= int(time.time() * 1000)  # sends of the last day

        shown = c.run("metrics")
        samples = [line.rsplit(" ", 1) for line in shown.splitlines()]

        def total(name: str) -> float:
            return sum(float(v) for k, v in samples if k.split("{", 1)[0] == name)

        assert total("kairos_events_total") >= day
        assert total("kairos_sends_total") > 0 and total("kairos_outbox_delivered_total") > 0
        assert ["0.0"] == [v for k, v in samples if k == "kairos_late_events_total"]

        generator = c.start("live", tmp_path / "live.log")
        wait_for(lambda: c.metrics().get("kairos_events_total", 0) > day, timeout=180,
                 what="live events to reach the daemon")
        assert _ctrl_c(generator) in (0, 130)  # Ctrl-C stops the generator
        assert "stopped (Ctrl-C)" in (tmp_path / "live.log").read_text()
        after = c.metrics()
        assert 0 == after["kairos_late_events_total"] and 0 == after["kairos_future_events_total"]  # live: in time

        answer = json.loads(c.run("reload"))
        assert answer["ok"] is True and answer["error"] == ""
        wait_for(lambda: any(r["event"].startswith("scenarios reloaded") and r.get("who") == "admin"
                             for r in _records(daemon_log)), timeout=30, what="the reload in the log")

        assert 0 == _ctrl_c(daemon)
        records = _records(daemon_log)
        said = [r["event"] for r in records]
        assert "signal received: shutting down" in said and "SIGINT" == records[said.index(
            "signal received: shutting down")]["signal"]
        assert "shutdown" == [r for r in records if r["event"] == "snapshot taken"][-1]["reason"]
        stopped = records[-1]
        assert "stopped" == stopped["event"] and 0 == stopped["late"] and stopped["sends"] > 0
        assert (qs / "state" / "snapshot.bin").exists()
    finally:
        c.cleanup()


@pytest.fixture(autouse=True)
def _no_leftover_quickstart_folder():
    """The recipe writes below ``quickstart/`` of where it runs: never of the checkout itself in this test."""
    before = (ROOT / "quickstart").exists()
    yield
    assert before or not (ROOT / "quickstart").exists()
