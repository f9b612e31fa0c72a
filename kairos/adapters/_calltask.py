"""Outbound-call tasks: to the call centre's HTTP endpoint, or appended to its daily CSV task file."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import anyio
import anyio.abc
import httpx
import msgspec

from kairos.adapters._channel import Channel, Outcome, SendContext
from kairos.adapters._http import post_signed

__all__ = ["CSV_COLUMNS", "CallChannel", "CallConfig", "CallTask"]

#: the task file's header, in this order
CSV_COLUMNS = ("id", "msisdn", "scenario", "template", "offer", "reason", "priority", "due")


class CallConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``mode = "http"`` posts each task to ``url``; ``mode = "csv"`` appends it to ``directory``/calltasks-DAY.csv."""

    mode: Literal["http", "csv"] = "csv"
    url: str = ""
    secret: str = ""  #: HMAC-SHA256 key for ``X-Kairos-Signature`` (http mode; empty: unsigned)
    timeout_s: float = 5.0
    directory: str = ""
    timezone: str = "Asia/Shanghai"  #: which local day a task's due time falls on
    file_prefix: str = "calltasks-"

    def __post_init__(self) -> None:
        if self.mode == "http" and not self.url:
            raise ValueError("mode 'http' needs url")
        if self.mode == "csv" and not self.directory:
            raise ValueError("mode 'csv' needs directory")


class CallTask(msgspec.Struct, frozen=True):
    """One task for an agent: call ``msisdn`` about ``offer`` because of ``reason``, by ``due``."""

    id: str
    msisdn: str
    scenario: str
    template: str
    offer: str  #: the rendered template text
    reason: str  #: the ``reason`` parameter if the action gives one, else the scenario that triggered
    priority: int
    due: str  #: local time, ``YYYY-MM-DD HH:MM:SS``


class CallChannel(Channel):
    """Call-centre tasks; a task id already handed off is not repeated.

    Handed off means sent with its HTTP idempotency key, or present in the day's file.
    """

    Config = CallConfig
    idempotent = True
    config: CallConfig

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Open the HTTP pool or the task-file directory."""
        self._tz = ZoneInfo(self.config.timezone)
        self._lock = anyio.Lock()
        self._seen: dict[Path, set[str]] = {}
        if self.config.mode == "http":
            self._client = httpx.AsyncClient(timeout=self.config.timeout_s)
        else:
            Path(self.config.directory).mkdir(parents=True, exist_ok=True)

    def task(self, ctx: SendContext) -> CallTask:
        """The call task for a send."""
        due = datetime.fromtimestamp(ctx.send_at / 1000, self._tz).strftime("%Y-%m-%d %H:%M:%S")
        reason = str(ctx.params.get("reason") or f"scenario {ctx.scenario}")
        return CallTask(ctx.id, ctx.msisdn, ctx.scenario, ctx.template, ctx.text, reason, ctx.priority, due)

    def path_for(self, ctx: SendContext) -> Path:
        """The task file of the local day the task is due."""
        day = datetime.fromtimestamp(ctx.send_at / 1000, self._tz).strftime("%Y-%m-%d")
        return Path(self.config.directory) / f"{self.config.file_prefix}{day}.csv"

    async def send(self, ctx: SendContext) -> Outcome:
        """Hand the task off."""
        task = self.task(ctx)
        if self.config.mode == "http":
            return await post_signed(self._client, self.config.url, msgspec.json.encode(task), ctx, self.config.secret)
        async with self._lock:  # the id check and the append are one step
            return await anyio.to_thread.run_sync(self._append, self.path_for(ctx), task)

    def _append(self, path: Path, task: CallTask) -> Outcome:
        """Append one row (header first in a new file), fsynced; skip an id the file already has."""
        seen = self._seen.get(path)
        if seen is None:
            seen = self._seen[path] = _ids_in(path)
            if len(self._seen) > 3:  # keep the few most recent days
                del self._seen[next(iter(self._seen))]
        if task.id in seen:
            return Outcome.delivered("already in the task file")
        row = io.StringIO()
        writer = csv.writer(row, lineterminator="\n")
        new = not path.exists() or path.stat().st_size == 0
        if new:
            writer.writerow(CSV_COLUMNS)
        writer.writerow(msgspec.structs.astuple(task))
        try:
            with open(path, "a", encoding="utf-8", newline="") as f:
                f.write(row.getvalue())
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            return Outcome.retry(f"task file: {exc}")
        seen.add(task.id)
        return Outcome.delivered(str(path.name))

    async def close(self) -> None:
        """Close the HTTP pool."""
        if self.config.mode == "http":
            await self._client.aclose()


def _ids_in(path: Path) -> set[str]:
    """The task ids already in a task file."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return {row["id"] for row in csv.DictReader(f) if row.get("id")}
    except FileNotFoundError:
        return set()
