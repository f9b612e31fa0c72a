"""Snapshot files: written atomically, in a forked child so the daemon never pauses for the serialisation.

``SnapshotFiles.take`` captures the state at the moment it is called (between
two events) and returns; the bytes are produced and written by a child
process forked at that moment (copy-on-write memory: the child sees the
state as it was), into a temporary file that is fsynced. The file is renamed
into place only once the child succeeded *and* the caller's ``before_publish``
(the outbox making every send decided so far durable) is done — so a snapshot
on disk never runs ahead of the sends it implies.

Whatever fails on the way (serialising the state, writing, the child process)
raises ``SnapshotFailed`` naming the cause, and leaves the published files —
the last good snapshot — as they were.

A daemon killed (SIGKILL) while its child serialises leaves that child
running: it still writes the temporary file when it is done, perhaps while
the restarted daemon's snapshot waits there to be published. So a take
first removes any temporary file left (an orphan writing to it writes to an
unlinked file), and a child creates its file exclusively (``O_EXCL``): an
orphan that comes later finds the file there and writes nothing, and the
file renamed into place is always the one this take wrote.
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


class SnapshotFailed(Exception):
    """No snapshot was published; the message says why. The previous files are untouched."""


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
            try:
                _clear_tmp(paths)
                if use_fork:
                    pause = await self._forked(paths, produce, prepare, started)
                else:
                    pause = await self._inline(paths, produce, prepare, started)
                size = sum(_tmp(p).stat().st_size for p in paths)
                await anyio.to_thread.run_sync(self._publish, paths)
            except SnapshotFailed:
                _discard_tmp(paths)
                raise
            except Exception as e:  # an encoder's OverflowError, a full disk: the previous files stay
                _discard_tmp(paths)
                raise SnapshotFailed(f"{type(e).__name__}: {e}") from e
            except BaseException:  # cancelled (the daemon stopping): nothing published, nothing left behind
                _discard_tmp(paths)
                raise
            where = "" if not paths else str(paths[0]) if len(paths) == 1 else str(paths[0].parent)
            info = SnapshotInfo(where, pause * 1000, (time.perf_counter() - started) * 1000, size, use_fork)
            self.taken += 1
            self.last = info
            return info

    async def _forked(self, paths: list[Path], produce: Callable[[], list[bytes]],
                      prepare: Callable[[], Awaitable[None]], started: float) -> float:
        """Serialise and write in a child forked now; returns the pause. The child reports
        why it failed through a pipe, so the error names the cause, not just a status."""
        before_publish = prepare()
        reason_r, reason_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # ENOMEM / EAGAIN under memory pressure: nothing forked, nothing to leak
            os.close(reason_r)
            os.close(reason_w)
            if hasattr(before_publish, "close"):
                before_publish.close()  # the durability wait that was never awaited
            raise
        if pid == 0:  # the child: serialise the state it inherited, write, leave without cleanup
            code = 1
            try:
                os.close(reason_r)
                for path, data in zip(paths, produce()):
                    _write_synced(_tmp(path), data)
                code = 0
            except BaseException as e:
                os.write(reason_w, f"{type(e).__name__}: {e}".encode("utf-8", "replace")[:4000])
            finally:
                os._exit(code)
        os.close(reason_w)
        pause = time.perf_counter() - started
        try:
            # shielded: a take cancelled now (the daemon stopping) still waits for its child, which would else
            # go on writing the temporary file the final snapshot writes next, and be left unreaped
            with anyio.CancelScope(shield=True):
                _, status = await anyio.to_thread.run_sync(os.waitpid, pid, 0)
                reason = await anyio.to_thread.run_sync(_read_all, reason_r)
        finally:
            os.close(reason_r)
        if os.waitstatus_to_exitcode(status) != 0:
            before_publish.close()  # type: ignore[attr-defined]
            raise SnapshotFailed(reason or f"the snapshot child process failed (status {status})")
        await before_publish
        return pause

    async def _inline(self, paths: list[Path], produce: Callable[[], list[bytes]],
                      prepare: Callable[[], Awaitable[None]], started: float) -> float:
        contents = produce()
        before_publish = prepare()
        pause = time.perf_counter() - started
        try:
            for path, data in zip(paths, contents):
                await anyio.to_thread.run_sync(_write_synced, _tmp(path), data)
        except BaseException:
            before_publish.close()  # type: ignore[attr-defined]
            raise
        await before_publish
        return pause

    def _publish(self, paths: list[Path]) -> None:
        for path in paths:
            if self.keep_previous and path.exists():
                os.replace(path, path.with_name(path.name + ".prev"))
            os.replace(_tmp(path), path)
        for folder in {p.parent for p in paths}:
            _fsync_dir(folder)


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _clear_tmp(paths: list[Path]) -> None:
    """Remove the temporary files a killed daemon's snapshot child may have left (or be writing) before this
    take creates its own; an ``OSError`` (the name taken by a directory) fails the take."""
    for path in paths:
        _tmp(path).unlink(missing_ok=True)


def _discard_tmp(paths: list[Path]) -> None:
    """A failed snapshot's partial temporary files go; the published ones are not touched."""
    for path in paths:
        try:
            _tmp(path).unlink()
        except OSError:
            pass


def _write_synced(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist: another writer's file is never taken over), write, fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
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
