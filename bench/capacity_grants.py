"""What a shared capacity place costs: µs per ``GrantFolder.take`` (lock, read, append, fsync).

    python -m bench.capacity_grants [--folder DIR] [--grants N]

Measures on DIR's file system (default: a temporary folder under the working
directory, which is where ``partitions_dir`` usually lives, not a tmpfs):
(1) a grant — a new id, fsynced before the answer; (2) an id found again (a
re-decided trigger, seen by this process: no lock); (3) an id found again by a
new store on the folder (after a crash: lock and read); (4) a refusal (the
period is full); (5) grants by two processes at once on one period. One-file
replay and the unpartitioned daemon never take this path; a plan without
capacity never reaches the store at all.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from kairos.adapters import GrantFolder

DAY = 86_400_000
END = 20_000 * DAY


def _per_call_us(call, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        call(i)
    return (time.perf_counter() - started) / n * 1e6


def _grant_many(folder: str, w: int, n: int, start: multiprocessing.Barrier, out: multiprocessing.Queue) -> None:
    store = GrantFolder(folder)
    start.wait()
    out.put(_per_call_us(lambda i: store.take("call", 1, 3, END, 10 * n, f"w{w}:{i}"), n))


def measure(folder: Path, n: int) -> dict[str, float]:
    store = GrantFolder(folder)
    granted = _per_call_us(lambda i: store.take("call", 1, 1, END, n, f"t:{i}"), n)
    found = _per_call_us(lambda i: store.take("call", 1, 1, END, n, f"t:{i}"), n)
    crashed = GrantFolder(folder)
    found_after_crash = _per_call_us(lambda i: crashed.take("call", 1, 1, END, n, f"t:{i}"), n)
    refused = _per_call_us(lambda i: store.take("call", 1, 1, END, n, f"late:{i}"), n)
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_grant_many, args=(str(folder), w, n, start, out)) for w in range(2)]
    for p in procs:
        p.start()
    two = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return {"grant_us": granted, "found_us": found, "found_after_crash_us": found_after_crash,
            "refused_us": refused, "grant_two_processes_us": statistics.mean(two)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.capacity_grants", description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=None, help="where the grant files go (default: under .)")
    ap.add_argument("--grants", type=int, default=2_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="capacity-bench-", dir=args.folder or Path.cwd()) as tmp:
        figures = measure(Path(tmp), args.grants)
    for name, us in figures.items():
        print(f"{name:24} {us:10.1f} µs")


if __name__ == "__main__":
    main()
