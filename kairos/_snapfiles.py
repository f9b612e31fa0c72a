"""Snapshot files: written atomically, in a forked child so the daemon never pauses for the serialisation.

``SnapshotFiles.take`` captures the state at the moment it is called (between
two events) and returns; the bytes are produced and written by a child
process forked at that moment (copy-on-write memory: the child sees the
state as it was), into a temporary file that is fsynced. The file is renamed
into place only once the child succeeded *and* the caller's ``before_publish``
(the outbox making every send decided so far durable) is done — so a snapshot
on disk never runs ahead of the sends it implies.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec
import structlog

log = structlog.get_logger("kairos.snapshot")


class SnapshotInfo(msgspec.Struct, frozen=True):
    """One snapshot taken: how long processing paused, how long it took in all, how big it is."""

    path: str
    pause_ms: float
    duration_ms: float
    bytes: int
    forked: bool


class SnapshotFiles:
    """Writes ``path`` atomically from a bytes-producing function, forking where it can."""

    def __init__(self, path: str | Path, *, fork: bool = True, keep_previous: bool = True) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.prev = self.path.with_name(self.path.name + ".prev")
        self.fork = fork and hasattr(os, "fork")
        self.keep_previous = keep_previous
        self._lock = anyio.Lock()
        self.taken = 0
        self.last: SnapshotInfo | None = None

    def read(self) -> bytes | None:
        """The current snapshot's bytes, or None if there is none yet."""
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    async def take(self, produce: Callable[[], bytes], before_publish: Callable[[], Awaitable[None]],
                   *, fork: bool | None = None) -> SnapshotInfo:
        """Capture now (``produce`` runs on the state as of this call); publish once durable."""
        async with self._lock:
            started = time.perf_counter()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            use_fork = self.fork if fork is None else fork and hasattr(os, "fork")
            if use_fork:
                pid = os.fork()
                if pid == 0:  # the child: serialise the state it inherited, write, leave without cleanup
                    code = 1
                    try:
                        _write_synced(self.tmp, produce())
                        code = 0
                    finally:
                        os._exit(code)
                pause = time.perf_counter() - started
                _, status = await anyio.to_thread.run_sync(os.waitpid, pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    raise OSError(f"the snapshot child process failed (status {status}); {self.tmp} not published")
            else:
                data = produce()
                pause = time.perf_counter() - started
                await anyio.to_thread.run_sync(_write_synced, self.tmp, data)
            await before_publish()
            size = self.tmp.stat().st_size
            await anyio.to_thread.run_sync(self._publish)
            info = SnapshotInfo(str(self.path), pause * 1000, (time.perf_counter() - started) * 1000, size, use_fork)
            self.taken += 1
            self.last = info
            return info

    def _publish(self) -> None:
        if self.keep_previous and self.path.exists():
            os.replace(self.path, self.prev)
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
