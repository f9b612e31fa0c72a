"""A channel capacity shared by processes: per period, a file of the trigger ids granted a place.

The contact policy's ``capacity call 500 per 1d`` is one count for all
subscribers. When their state is split — partitions of a daemon, in one
instance or several, or the processes of ``kairos replay --workers N`` — each
engine asks a ``GrantFolder`` on a folder they share. Per channel and period a
file holds the trigger ids granted a place, one a line, appended only. A
``take`` answers at once when this process already saw the id granted;
otherwise it takes an exclusive POSIX lock on the file (``fcntl.lockf``:
across processes, and over NFS through its lock manager), reads the lines
appended since it last looked, and grants — appends the id and fsyncs before
answering — only if the id is not there yet and fewer than ``limit`` ids are.

The id makes it exact across crashes: a partition re-decided after a crash or
handed to another instance decides the same triggers with the same ids, finds
its own grants and takes no second place. A period's file is deleted once its
end lies more than ``keep_ms`` of event time before the latest period end this
store was asked about: by then no kept state decides into it (docs/operations.md,
"Several instances: partitions").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

#: a period's file is kept this long (event time) after its end, past the latest period asked about
KEEP_MS = 7 * 86_400_000

_SUFFIX = ".grants"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class _Period:
    """One period's file as this process knows it: its descriptor, the ids read and where reading stopped."""

    __slots__ = ("fd", "ids", "lines", "offset")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ids: set[str] = set()
        self.lines = 0  # places taken: every complete line (a torn line, from a crash, too)
        self.offset = 0  # bytes read so far (up to the last complete line)


class GrantFolder:
    """Capacity places shared through ``folder`` by every process that opens it (the engine's
    ``CapacityGrants``); ``grants``, ``found`` and ``refused`` count this process's answers."""

    def __init__(self, folder: str | Path, keep_ms: int = KEEP_MS) -> None:
        self.folder = Path(folder)
        self.keep_ms = keep_ms
        self.grants = 0  #: places this process granted (not counting ids found again)
        self.found = 0  #: takes answered by an id already granted (a re-decision)
        self.refused = 0
        self._pid = os.getpid()
        self._open: dict[str, _Period] = {}
        self._latest_end: int | None = None

    def take(self, channel: str, per_days: int, period: int, end: int, limit: int, trigger_id: str) -> bool:
        """Grant ``trigger_id`` a place of ``channel``'s period ``period`` (of ``per_days`` days, ending at
        epoch ms ``end``) if it has one already or fewer than ``limit`` are taken. Durable before it answers."""
        p = self._period(f"{_safe(channel)}.{per_days}d.{period}.{end}")
        if trigger_id in p.ids:
            self.found += 1
            return True
        fcntl.lockf(p.fd, fcntl.LOCK_EX)
        try:
            self._read(p)
            if os.fstat(p.fd).st_size != p.offset:  # a line torn by a crash: ended, it keeps its place
                os.write(p.fd, b"\n")
                self._read(p)
            if trigger_id in p.ids:
                self.found += 1
                return True
            if p.lines >= limit:
                self.refused += 1
                return False
            os.write(p.fd, _line(trigger_id))
            os.fsync(p.fd)
            self._read(p)
            self.grants += 1
            return True
        finally:
            fcntl.lockf(p.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's files (a later ``take`` opens them again)."""
        for p in self._open.values():
            with contextlib.suppress(OSError):
                os.close(p.fd)
        self._open.clear()

    def _period(self, name: str) -> _Period:
        if os.getpid() != self._pid:  # forked: the parent's descriptors and locks are not this process's
            self._open.clear()
            self._pid = os.getpid()
        p = self._open.get(name)
        if p is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / (name + _SUFFIX)
            created = not path.exists()
            p = self._open[name] = _Period(os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644))
            if created:
                _fsync_dir(self.folder)
            self._forget(int(name.rpartition(".")[2]))
        return p

    def _read(self, p: _Period) -> None:
        """The lines appended since this process last looked (under the lock)."""
        size = os.fstat(p.fd).st_size
        if size <= p.offset:
            return
        data = os.pread(p.fd, size - p.offset, p.offset)
        complete = data.rfind(b"\n") + 1
        for line in data[:complete].split(b"\n")[:-1]:
            p.ids.add(_id(line))
            p.lines += 1
        p.offset += complete

    def _forget(self, end: int) -> None:
        """Delete the files of periods that ended more than ``keep_ms`` before the latest end asked about."""
        if self._latest_end is not None and end <= self._latest_end:
            return
        self._latest_end = end
        horizon = end - self.keep_ms
        for path in self.folder.glob("*" + _SUFFIX):
            try:
                ended = int(path.name[:-len(_SUFFIX)].rpartition(".")[2])
            except ValueError:
                continue
            if ended < horizon:
                gone = self._open.pop(path.name[:-len(_SUFFIX)], None)
                if gone is not None:
                    os.close(gone.fd)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def read_grants(folder: str | Path) -> dict[str, list[str]]:
    """Every period's granted trigger ids in ``folder``, by file name without ``.grants``
    (``CHANNEL.Dd.PERIOD.END``), in the order granted; a line torn by a crash is left out."""
    found: dict[str, list[str]] = {}
    for path in sorted(Path(folder).glob("*" + _SUFFIX)):
        data = path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        found[path.name[:-len(_SUFFIX)]] = [_id(x) for x in complete.split(b"\n")[:-1]]
    return found


def _line(trigger_id: str) -> bytes:
    """A trigger id as one line: a backslash and a newline (an msisdn may hold anything) escaped."""
    return trigger_id.replace("\\", "\\\\").replace("\n", "\\n").encode("utf-8", "surrogatepass") + b"\n"


def _id(line: bytes) -> str:
    """The trigger id of a line (``_line`` undone)."""
    try:
        text = line.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # a line torn inside a character: it keeps its place, no id matches it
        text = line.decode("utf-8", "replace")
    if "\\" in text:
        text = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)
    return text


def _safe(channel: str) -> str:
    """A channel name as a file name part (channel names are identifiers; anything else is escaped)."""
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02x}", channel)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
