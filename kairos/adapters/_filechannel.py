"""A channel that appends each send as one JSON line to a file — for tests, audits and dry runs.

Each send is one ``write`` of a whole line on an append-only descriptor, so a
crash never leaves half a line; the ids already in the file are read at start
and a repeated id is answered "delivered" without writing, which makes the
channel idempotent: the outbox may retry a send whose outcome a crash left
unknown, and the file still holds it once. ``dedupe = false`` (for fault
tests) writes every send it is given, repeats included, so the file counts the
outbox's deliveries by id; the channel still declares itself idempotent, so
the outbox retries a send a crash left in doubt — and such a retry shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import msgspec
import structlog

from kairos.adapters._channel import Channel, Outcome, SendContext

__all__ = ["FileChannel", "FileChannelConfig", "send_json"]

log = structlog.get_logger("kairos.channels.file")


class FileChannelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the lines go."""

    path: str
    fsync: bool = True  #: fsync after every line (survives a power loss, not only a crash)
    dedupe: bool = True  #: answer a repeated id from the file; false (fault tests): write every delivery


_encode = msgspec.json.Encoder().encode


def send_json(ctx: SendContext) -> bytes:
    """A send as the JSON object the file channel writes as a line (and the kafka channel as a record's value)."""
    return _encode(
        {
            "id": ctx.id, "scenario": ctx.scenario, "msisdn": ctx.msisdn, "ts": ctx.ts,
            "send_at": ctx.send_at, "channel": ctx.channel, "template": ctx.template,
            "params": ctx.params, "text": ctx.text,
        }
    )


class _Line(msgspec.Struct, frozen=True):
    id: str


class FileChannel(Channel):
    """Appends ``{"id", "scenario", "msisdn", "ts", "send_at", "channel", "template", "params", "text"}`` lines."""

    Config = FileChannelConfig
    idempotent = True

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        path = Path(self.config.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seen: set[str] = set()
        self.repeats = 0  #: sends answered from the file: only those a crash left in doubt should come back
        if path.exists() and self.config.dedupe:
            decode = msgspec.json.Decoder(_Line).decode
            data = path.read_bytes()
            for line in data[: data.rfind(b"\n") + 1].split(b"\n"):
                if line.strip():
                    self._seen.add(decode(line).id)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def send(self, ctx: SendContext) -> Outcome:
        if self.config.dedupe and ctx.id in self._seen:
            self.repeats += 1
            log.info("repeated send absorbed: the id is already in the file", channel=self.name, id=ctx.id)
            return Outcome.delivered("already in the file")
        line = send_json(ctx) + b"\n"
        os.write(self._fd, line)
        if self.config.fsync:
            await anyio.to_thread.run_sync(os.fsync, self._fd)
        self._seen.add(ctx.id)
        return Outcome.delivered()

    async def close(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None
