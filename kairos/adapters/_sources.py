"""Event sources for the daemon: a file or directory tail, and standard input.

A source yields blocks of whole JSON lines (bytes) with the position just
after them; the daemon decodes them. A file position is the file's identity
(device, inode) plus a byte offset, so a restart resumes exactly where the
last snapshot stood, even if the file was rotated (renamed away and
recreated) in between: the rotated file is found by its inode and read to
its end before the new one. A truncated file is read again from its start.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import msgspec
import structlog

__all__ = ["FilePosition", "FileTail", "StdinSource"]

log = structlog.get_logger("kairos.sources")

BLOCK_BYTES = 1 << 20


class FilePosition(msgspec.Struct, frozen=True):
    """Where a file source stands: the file's name and identity, and the offset after the last whole line read."""

    name: str
    dev: int
    ino: int
    offset: int


class _Open:
    """One open file being read."""

    __slots__ = ("name", "fd", "dev", "ino", "offset", "rest")

    def __init__(self, name: str, fd: int, offset: int) -> None:
        st = os.fstat(fd)
        self.name, self.fd, self.dev, self.ino = name, fd, st.st_dev, st.st_ino
        self.offset = offset  # after the last whole line handed out
        self.rest = b""  # a line read only in part
        os.lseek(fd, offset, os.SEEK_SET)

    def position(self) -> FilePosition:
        return FilePosition(self.name, self.dev, self.ino, self.offset)

    def read(self) -> bytes:
        """Whole lines read since the last call (b"" at the end for now)."""
        chunk = os.read(self.fd, BLOCK_BYTES)
        if not chunk:
            return b""
        data = self.rest + chunk
        cut = data.rfind(b"\n") + 1
        self.rest = data[cut:]
        self.offset += cut
        return data[:cut]

    def close(self) -> None:
        os.close(self.fd)


class FileTail:
    """Follows a JSON-lines file (or every ``*.jsonl`` file of a directory, in name order).

    ``blocks()`` never ends by itself: at the end of the input it polls every
    ``poll_s`` for more lines, a rotation or (for a directory) a next file.
    """

    def __init__(self, path: str | Path, *, poll_s: float = 0.2, start: FilePosition | None = None,
                 pattern: str = "*.jsonl") -> None:
        self.path = Path(path)
        self.poll_s = poll_s
        self.start = start
        self.pattern = pattern
        self.directory = self.path.is_dir()
        self._file: _Open | None = None

    def position(self) -> FilePosition | None:
        """Where a restart should resume (None before the first file was opened)."""
        f = self._file
        return None if f is None else f.position()

    async def blocks(self) -> AsyncIterator[tuple[bytes, FilePosition]]:
        """(whole lines, position after them), forever."""
        try:
            self._file = self._resume()
            while True:
                f = self._file
                if f is not None:
                    data = f.read()
                    if data:
                        yield data, f.position()
                        continue
                    nxt = self._next(f)
                    if nxt is not None:
                        f.close()
                        self._file = nxt
                        continue
                else:
                    self._file = self._first()
                    if self._file is not None:
                        continue
                await anyio.sleep(self.poll_s)
        finally:
            if self._file is not None:
                self._file.close()

    # --- which file ---------------------------------------------------------

    def _files(self) -> list[Path]:
        return sorted(p for p in self.path.glob(self.pattern) if p.is_file())

    def _first(self) -> _Open | None:
        if self.directory:
            files = self._files()
            return _open(files[0], 0) if files else None
        return _open(self.path, 0) if self.path.exists() else None

    def _resume(self) -> _Open | None:
        start = self.start
        if start is None:
            return self._first()
        folder = self.path if self.directory else self.path.parent
        candidates = [folder / start.name] + sorted(p for p in folder.iterdir() if p.is_file())
        for p in candidates:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == (start.dev, start.ino) and st.st_size >= start.offset:
                log.info("source resumes", file=str(p), offset=start.offset)
                return _open(p, start.offset, name=start.name if p.name == start.name else p.name)
        log.warning("the file of the saved position is gone; starting from the first file",
                    saved=start.name, ino=start.ino, offset=start.offset)
        return self._first()

    def _next(self, f: _Open) -> _Open | None:
        """At the end of ``f``: the file to read next, if any (rotation, truncation, next in the directory)."""
        if self.directory:
            later = [p for p in self._files() if p.name > f.name]
            if later and _stable_end(f):
                return _open(later[0], 0)
            return None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None  # renamed away, not yet recreated: keep reading the old one
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):
            if _stable_end(f):
                log.info("source file rotated", file=str(self.path))
                return _open(self.path, 0)
            return None
        if st.st_size < f.offset:
            log.warning("source file truncated; reading it from the start", file=str(self.path))
            return _open(self.path, 0)
        return None


def _stable_end(f: _Open) -> bool:
    """``f`` is read to its end, nothing pending: safe to move on."""
    return not os.pread(f.fd, 1, f.offset + len(f.rest))


def _open(p: Path, offset: int, *, name: str | None = None) -> _Open:
    return _Open(name or p.name, os.open(p, os.O_RDONLY), offset)


class StdinSource:
    """Standard input as JSON lines; it has no position (it cannot be re-read after a restart)."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd

    async def blocks(self) -> AsyncIterator[tuple[bytes, None]]:
        """Blocks of whole lines as they arrive, until the end of input."""
        rest = b""
        regular = stat.S_ISREG(os.fstat(self._fd).st_mode)  # a file redirected in: never blocks, cannot be polled
        blocking = os.get_blocking(self._fd)
        os.set_blocking(self._fd, False)
        try:
            while True:
                if regular:
                    await anyio.lowlevel.checkpoint()
                else:
                    await anyio.wait_readable(self._fd)
                try:
                    chunk = os.read(self._fd, BLOCK_BYTES)
                except BlockingIOError:
                    continue
                if not chunk:
                    if rest.strip():
                        yield rest + b"\n", None
                    return
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    yield data[:cut], None
        finally:
            os.set_blocking(self._fd, blocking)
