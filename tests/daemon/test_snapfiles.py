"""Snapshot files under faults: a fork the system refuses is a counted failure that leaks nothing."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from kairos._snapfiles import SnapshotFailed, SnapshotFiles


def test_a_fork_the_system_refuses_is_a_snapshot_failure_that_leaks_no_descriptor(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch):
    """Under memory pressure fork() raises ENOMEM at every periodic attempt: each must fail cleanly."""
    def no_fork() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_fork)
    files = SnapshotFiles(fork=True)
    target = tmp_path / "snapshot.bin"
    target.write_bytes(b"the previous snapshot")

    async def durable() -> None:
        return None

    async def attempts() -> None:
        for _ in range(20):
            with pytest.raises(SnapshotFailed, match="Cannot allocate memory"):
                await files.take([target], lambda: [b"new state"], durable)

    before = len(os.listdir("/proc/self/fd"))
    anyio.run(attempts)
    assert before == len(os.listdir("/proc/self/fd"))
    assert b"the previous snapshot" == target.read_bytes()
