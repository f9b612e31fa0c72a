"""Snapshot files under faults: a refused fork fails cleanly; a killed daemon's child clobbers nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from kairos._snapfiles import SnapshotFailed, SnapshotFiles, _tmp, _write_synced


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


def test_the_snapshot_child_of_a_killed_daemon_never_replaces_the_restarted_daemons_snapshot(tmp_path: Path):
    """SIGKILL leaves the snapshot child it had forked running: it still writes the temporary file once its
    (long) serialisation ends, maybe while the restarted daemon's own snapshot waits there to be published.
    Publishing it would put the dead daemon's state on disk, whose sends were never made durable (it died
    before its outbox flushed them): a later restart from it would lose them. Here that orphan is a process
    that writes the temporary file as a snapshot child does, released just before the new snapshot is
    published (while its sends are made durable)."""
    target = tmp_path / "snapshot.bin"
    target.write_bytes(b"the last published snapshot")
    gate_r, gate_w = os.pipe()
    orphan = os.fork()
    if orphan == 0:  # the killed daemon's child: its serialisation ends when the gate opens
        code = 1
        try:
            os.read(gate_r, 1)
            _write_synced(_tmp(target), b"the killed daemon's state")
            code = 0
        finally:
            os._exit(code)
    os.close(gate_r)

    async def durable() -> None:  # the restarted daemon's child has written its file: the orphan writes now
        os.write(gate_w, b"x")
        await anyio.to_thread.run_sync(os.waitpid, orphan, 0)

    async def take() -> None:
        await SnapshotFiles(fork=True).take([target], lambda: [b"the restarted daemon's state"], durable)

    try:
        anyio.run(take)
    finally:
        os.close(gate_w)
    assert b"the restarted daemon's state" == target.read_bytes()
    assert b"the last published snapshot" == target.with_name("snapshot.bin.prev").read_bytes()


def test_a_temporary_file_a_killed_daemons_child_left_does_not_stop_the_next_snapshot(tmp_path: Path):
    target = tmp_path / "snapshot.bin"
    _write_synced(_tmp(target), b"the killed daemon's state, written after it died")

    async def durable() -> None:
        return None

    async def take() -> None:
        for fork in (True, False):
            state = f"fork={fork}".encode()
            await SnapshotFiles().take([target], lambda state=state: [state], durable, fork=fork)
            assert state == target.read_bytes()
            _write_synced(_tmp(target), b"left again")

    anyio.run(take)


def test_a_snapshot_cancelled_as_its_child_is_forked_waits_for_the_child_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """SIGTERM can cancel a periodic snapshot just after its fork: the child must not go on writing the temporary
    file beside the final snapshot (which would then fail, or publish a mixed file), nor be left unreaped."""
    forked: list[int] = []
    real_fork = os.fork

    def fork() -> int:  # this snapshot's child, not another child of the test process (a broker, a server)
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    target = tmp_path / "snapshot.bin"
    target.write_bytes(b"the previous snapshot")

    async def durable() -> None:
        return None

    async def cancelled() -> None:
        with anyio.CancelScope() as scope:
            def prepare() -> Any:  # called as the state is captured, just before the fork
                scope.cancel()
                return durable()

            await SnapshotFiles(fork=True).take([target], lambda: [b"the periodic state"], prepare)
        assert scope.cancelled_caught

    anyio.run(cancelled)
    (child,) = forked
    with pytest.raises(ChildProcessError):  # the child has exited and was reaped
        os.waitpid(child, os.WNOHANG)
    assert not _tmp(target).exists()
    assert b"the previous snapshot" == target.read_bytes()
