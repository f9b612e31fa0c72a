"""W1 as whole processes, start-up included: the command a user types, timed from spawn to exit.

``kairos replay --scenarios W1.kairos --events FILE --out SENDS`` against
``python -m bench.baseline LOOP --events FILE --out SENDS``. Wall time is the
runner's, spawn to exit; CPU time the delta of ``getrusage(RUSAGE_CHILDREN)``
across the wait; peak RSS the process's own ``VmHWM``, sampled from
``/proc/PID/status`` while it runs (a child's ``ru_maxrss`` would start from the
runner's, which ``fork`` and ``exec`` carry over). The sends file each one writes
is read back for the checksum, so the processes are compared on what they decided.
"""

from __future__ import annotations

import compileall
import functools
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import baseline
from bench._measure import Measurement

#: where ``python -m bench.baseline`` finds the bench
ROOT = Path(__file__).resolve().parents[1]
#: the whole-process W1 contenders and what each runs
W1_PROCESSES = ("w1-json", "w1-msgspec", "w1-kairos")
#: the figure each prints on standard error of its own loop's seconds (start-up and exit left out)
_INNER = re.compile(rb"\((\d+(?:\.\d+)?) s(?:, [\d,]+ events/s)?\)\s*$", re.MULTILINE)


class ProcessError(Exception):
    """A whole-process contender exited with an error."""


def command(name: str, events: Path, sends: Path, scenario: Path) -> list[str]:
    """The command line of W1 contender ``name``: ``kairos replay`` as a user types it, or a hand-written loop."""
    if name == "w1-kairos":
        beside = Path(sys.executable).with_name("kairos")  # the virtualenv's command, as a user runs it
        kairos = str(beside) if beside.exists() else shutil.which("kairos") or "kairos"
        return [kairos, "replay", "--scenarios", str(scenario), "--events", str(events), "--out", str(sends)]
    loop = name.removeprefix("w1-")
    return [sys.executable, "-m", "bench.baseline", loop, "--events", str(events), "--out", str(sends)]


@functools.cache
def compile_bytecode() -> None:
    """Write the product's and the bench's bytecode once, as an install does: every contender then
    starts as an installed program would, not paying to compile its sources at each start (these
    machines set PYTHONDONTWRITEBYTECODE, which stops writing cached bytecode but not reading it)."""
    import kairos

    for folder in (Path(kairos.__file__).parent, ROOT / "bench"):
        compileall.compile_dir(folder, quiet=1)


def run_w1(name: str, events: Path, lines: int) -> Measurement:
    """Run W1 contender ``name`` as a whole process over ``events`` (``lines`` events) and measure it."""
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="kairos-bench-w1-") as tmp:
        scenario = Path(tmp) / "W1.kairos"
        scenario.write_text(baseline.W1_SCENARIO)
        sends_path = Path(tmp) / "sends.jsonl"
        cmd = command(name, events, sends_path, scenario)
        (code, err, peak_kib), wall, cpu = timed_child(cmd, ROOT)
        if code != 0:
            raise ProcessError(f"{' '.join(cmd)} exited {code}:\n{err.decode(errors='replace')}")
        sends = baseline.read_sends(sends_path.read_bytes())
    inner = _INNER.search(err)
    return Measurement(
        contender=name, events=lines, sends=len(sends), checksum=baseline.checksum(sends),
        wall_s=round(wall, 3), cpu_s=round(cpu, 3), events_per_s=round(lines / wall),
        peak_rss_mib=round(peak_kib / 1024, 1), whole_process=True,
        inner_wall_s=None if inner is None else float(inner.group(1)),
    )


def timed_child(cmd: list[str], cwd: Path) -> tuple[tuple[int, bytes, int], float, float]:
    """Run ``cmd``: (exit status, its standard error, its peak RSS in KiB), wall seconds spawn to
    exit, and CPU seconds (user + system, its own and its children's)."""
    before = _children_cpu()
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        peak = _PeakSampler(child.pid)
        code = child.wait()
        wall = time.perf_counter() - t0
        peak.stop()
        err.seek(0)
        text = err.read()
    return (code, text, peak.kib), wall, _children_cpu() - before


def _children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


class _PeakSampler:
    """Reads a running process's ``VmHWM`` (its peak RSS so far) every few milliseconds on a thread;
    a high-water mark only grows, so the last read before the process exits is its peak."""

    def __init__(self, pid: int, every_s: float = 0.01) -> None:
        self._path = f"/proc/{pid}/status"
        self._every = every_s
        self._done = threading.Event()
        self.kib = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._read()
            if self._done.wait(self._every):
                return

    def _read(self) -> None:
        try:
            with open(self._path, "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))
                        return
        except (OSError, ValueError):  # gone, or a zombie without an address space
            pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
