"""The outbox's records on disk: ``ledger.log`` lines written and read back, whole lines, atomic rewrites.

A ledger line is ``KIND<TAB>TS<TAB>TRIGGER_ID``: ``A`` an attempt is starting,
``R`` it did not deliver, ``D`` delivered, ``F`` dead-lettered (both with the
trigger time), ``H`` the floor (in ``TS``, no id); what each means for a
restart is in ``_outbox``. Reading needs no outbox, so the bench and the tests
count the sends a kill left in doubt with ``read_ledger`` alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

__all__ = ["Ledger", "atomic_write", "complete_lines", "read_ledger", "record"]


class Ledger(msgspec.Struct):
    """What ``ledger.log`` says: settled ids (delivered or dead-lettered) with their trigger time, ids whose
    last record is an attempt with no outcome (in doubt: the channel may or may not have taken them),
    and the floor below which ids are forgotten."""

    done: dict[str, int]
    in_doubt: set[str]
    floor: int


def record(kind: bytes, trigger_id: str, ts: int = 0) -> bytes:
    """One ledger line (``read_ledger`` reads it back)."""
    return b"%s\t%d\t%s\n" % (kind, ts, trigger_id.encode())


def read_ledger(path: str | Path) -> Ledger:
    """Read a ledger file; a torn last line (a crash mid-write) is ignored. Also for tests and the bench,
    which count the sends a kill left in doubt."""
    done: dict[str, int] = {}
    attempted: set[str] = set()
    floor = 0
    for line in complete_lines(Path(path)):
        kind, ts, trigger_id = line.decode().split("\t", 2)
        if kind == "A":
            attempted.add(trigger_id)
        elif kind == "R":
            attempted.discard(trigger_id)
        elif kind == "H":
            floor = max(floor, int(ts))
        else:
            done[trigger_id] = int(ts)
            attempted.discard(trigger_id)
    return Ledger(done, attempted, floor)


def complete_lines(path: Path) -> list[bytes]:
    """The file's newline-terminated lines; a torn last line (a crash mid-write) is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    return [line for line in data[:end].split(b"\n") if line]


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file so that a crash leaves either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
