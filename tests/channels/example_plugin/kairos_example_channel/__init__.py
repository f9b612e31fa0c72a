"""An example channel plugin: every send becomes one JSON line in a file (a stand-in for a partner's inbox)."""

from __future__ import annotations

import os

import anyio
import msgspec

from kairos.adapters import Channel, Outcome, SendContext


class JsonlConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the lines go."""

    path: str
    fail_msisdns: list[str] = []  #: subscribers this partner refuses (to show a permanent failure)


class JsonlChannel(Channel):
    """Appends ``{"id", "msisdn", "text", ...}`` per send; an id already in the file is not written again."""

    Config = JsonlConfig
    idempotent = True  # it drops a repeated id itself, so the outbox may retry an unknown outcome
    config: JsonlConfig

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Read the ids already written, so a restart does not repeat them."""
        self._lock = anyio.Lock()
        self._seen: set[str] = set()
        if os.path.exists(self.config.path):
            with open(self.config.path, "rb") as f:
                self._seen = {msgspec.json.decode(line)["id"] for line in f if line.strip()}

    async def send(self, ctx: SendContext) -> Outcome:
        """Write one line; a refused subscriber is a permanent failure."""
        if ctx.msisdn in self.config.fail_msisdns:
            return Outcome.failed(f"partner refuses {ctx.msisdn}")
        async with self._lock:
            if ctx.id in self._seen:
                return Outcome.delivered("already written")
            line = msgspec.json.encode(
                {"id": ctx.id, "msisdn": ctx.msisdn, "scenario": ctx.scenario, "text": ctx.text, "params": ctx.params}
            )
            await anyio.to_thread.run_sync(_append, self.config.path, line + b"\n")
            self._seen.add(ctx.id)
        return Outcome.delivered()


def _append(path: str, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
