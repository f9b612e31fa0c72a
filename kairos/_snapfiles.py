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


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class SnapshotFiles:
    """Writes snapshot files atomically from a function producing them, forking where it can."""

    def __init__(self, *, fork: bool = True, keep_previous: bool = True) -> None:
        self.fork = fork and hasattr(os, "fork")
        self.keep_previous = keep_previous
        self._lock = anyio.Lock()
        self.taken = 0
        self.last: SnapshotInfo | None = None

    async def take(self, paths: list[Path], produce: Callable[[], list[bytes]],
                   prepare: Callable[[], Awaitable[None]], *, fork: bool | None = None) -> SnapshotInfo:
        """Capture now: ``produce`` (the contents of ``paths``) runs on the state as of this call — in the
        child when forking — and ``prepare()`` is called at the same instant; its awaitable must finish
        before anything is published."""
        async with self._lock:
            started = time.perf_counter()
            use_fork = self.fork if fork is None else fork and hasattr(os, "fork")
            if use_fork:
                before_publish = prepare()
                pid = os.fork()
                if pid == 0:  # the child: serialise the state it inherited, write, leave without cleanup
                    code = 1
                    try:
                        for path, data in zip(paths, produce()):
                            _write_synced(_tmp(path), data)
                        code = 0
                    finally:
                        os._exit(code)
                pause = time.perf_counter() - started
                _, status = await anyio.to_thread.run_sync(os.waitpid, pid, 0)
                if os.waitstatus_to_exitcode(status) != 0:
                    before_publish.close()  # type: ignore[attr-defined]
                    raise OSError(f"the snapshot child process failed (status {status}); nothing published")
            else:
                contents = produce()
                before_publish = prepare()
                pause = time.perf_counter() - started
                for path, data in zip(paths, contents):
                    await anyio.to_thread.run_sync(_write_synced, _tmp(path), data)
            await before_publish
            size = sum(_tmp(p).stat().st_size for p in paths)
            await anyio.to_thread.run_sync(self._publish, paths)
            where = "" if not paths else str(paths[0]) if len(paths) == 1 else str(paths[0].parent)
            info = SnapshotInfo(where, pause * 1000, (time.perf_counter() - started) * 1000, size, use_fork)
            self.taken += 1
            self.last = info
            return info

    def _publish(self, paths: list[Path]) -> None:
        for path in paths:
            if self.keep_previous and path.exists():
                os.replace(path, path.with_name(path.name + ".prev"))
            os.replace(_tmp(path), path)
        for folder in {p.parent for p in paths}:
            _fsync_dir(folder)


def _write_synced(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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
