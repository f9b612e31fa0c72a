"""docs/operations.md's "Scaling out" recipe runs as written: its blocks are read from there by their markers.

Each ``<!-- recipe:NAME -->`` block is a shell script run with bash from a
folder laid out as a checkout (the catalogue, the virtualenv's commands on
the PATH), and each ``<!-- recipe:config PATH -->`` block is written to PATH.
Only the ports change (to free ones), so the test never meets another
broker. Between blocks the test waits for what the text says happens next —
by progress the daemons log and count, never by sleeping.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.daemon.support import wait_for

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- recipe:(\w+)(?: (\S+))? -->\n```(\w+)\n(.*?)```", re.S)


def recipe() -> dict[str, str]:
    """The recipe's blocks by name (a config block by ``config PATH``)."""
    found = {}
    for name, path, _, body in BLOCK.findall((ROOT / "docs" / "operations.md").read_text()):
        key = f"{name} {path}" if path else name
        assert key not in found, f"docs/operations.md has two recipe blocks named {key!r}"
        found[key] = body
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recipe:
    """Runs the blocks in ``root`` with the ports replaced; remembers the processes they started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {"9092": str(_free_port()), "9101": str(_free_port()), "9102": str(_free_port())}
        self.blocks = recipe()
        bin_dir = str(Path(sys.executable).parent)
        self.env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", VIRTUAL_ENV=str(Path(bin_dir).parent),
                        PYTHONUNBUFFERED="1")

    def text(self, key: str) -> str:
        body = self.blocks[key]
        for old, new in self.ports.items():
            body = body.replace(old, new)
        return body

    def run(self, key: str) -> str:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", self.text(key)], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"recipe block {key!r} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    def write(self, key: str) -> None:
        path = self.root / key.split(" ", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(key))

    def pid(self, name: str) -> int:
        return int((self.root / "scale" / name).read_text())

    def metric(self, port: str, name: str) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[port]}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return -1.0
        return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(name))

    def assigned(self, instance: str) -> set[str] | None:
        path = self.root / "scale" / instance / "daemon.log"
        latest = None
        if path.exists():
            for line in path.read_text().splitlines():
                if '"partitions assigned"' in line:
                    latest = json.loads(line)["units"]
        return None if latest is None else set(latest)

    def cleanup(self) -> None:
        for name in ("a/pid", "b/pid", "broker.pid"):
            try:
                os.kill(self.pid(name), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours (bash started it and exited: it is init's now, but be sure)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _split(r: Recipe, units: dict[str, int]) -> bool:
    """Each instance's latest assignment has the given number of partitions, all 8 covered once."""
    got = {name: r.assigned(name) for name in units}
    if any(g is None or len(g) != n for (name, n), g in zip(units.items(), got.values(), strict=True)):
        return False
    return sorted(u for g in got.values() if g for u in g) == [f"p-{p:04d}" for p in range(8)]


def test_the_readme_recipe_is_complete():
    assert {"broker", "produce", "config scale/a/kairos.toml", "config scale/b/kairos.toml", "start", "watch",
            "kill", "takeover", "restart", "stop"} == set(recipe())


def test_the_scaling_out_recipe_runs_as_written_two_instances_share_the_topic_and_one_takes_over(tmp_path):
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")  # a checkout: the recipe names ../../scenarios
    r = Recipe(tmp_path)
    try:
        r.run("broker")
        wait_for(lambda: _connects(int(r.ports["9092"])), timeout=30, what="the broker to listen")
        out = r.run("produce")
        produced = int(re.search(r"kairos produce: ([\d,]+) records to events \(created with 8 partitions",
                                 out).group(1).replace(",", ""))
        assert produced > 10_000
        r.write("config scale/a/kairos.toml")
        r.write("config scale/b/kairos.toml")
        r.run("start")

        # "within 10–15 s each logs partitions assigned with four partitions ... events add up to the records"
        wait_for(lambda: _split(r, {"a": 4, "b": 4}), timeout=120, what="a and b to share the 8 partitions")
        wait_for(lambda: r.metric("9101", "kairos_events_total") + r.metric("9102", "kairos_events_total")
                 >= produced, timeout=120, what="the two to read every record")
        watched = r.run("watch")
        assert 2 == watched.count("kairos_units 4.0")
        assert watched.count('"partitions assigned"') >= 2
        assert int(watched.strip().splitlines()[-1]) > 0  # sends in out/

        r.run("kill")
        wait_for(lambda: not _alive(r.pid("a/pid")), timeout=10, what="a to die")
        wait_for(lambda: r.assigned("b") == {f"p-{p:04d}" for p in range(8)}, timeout=120,
                 what="b to take every partition over")
        taken = r.run("takeover")
        assert "kairos_units 8.0" in taken and '"partitions assigned"' in taken

        r.run("restart")
        wait_for(lambda: _split(r, {"a": 4, "b": 4}) and r.metric("9101", "kairos_units") == 4, timeout=120,
                 what="the restarted a and b to share the partitions again")

        pids = [r.pid("a/pid"), r.pid("b/pid"), r.pid("broker.pid")]
        r.run("stop")
        wait_for(lambda: not any(map(_alive, pids)), timeout=60, what="the instances and the broker to exit")
        for instance in ("a", "b"):  # a clean stop: the daemon's last word
            records = [json.loads(x) for x in (tmp_path / "scale" / instance / "daemon.log").read_text().splitlines()
                       if x.startswith("{")]
            assert "stopped" == records[-1]["event"]
    finally:
        r.cleanup()


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _no_leftover_scale_folder():
    """The recipe writes below ``scale/`` of where it runs: never of the checkout itself in this test."""
    before = (ROOT / "scale").exists()
    yield
    assert before or not (ROOT / "scale").exists()
