"""Feedback in: channel callbacks (app clicks, call-centre results) become ``feedback`` events.

Two sources hand ``Feedback`` events to a sink: ``FeedbackServer``, a small
HTTP/1.1 endpoint (h11 over anyio: sans-IO, tiny, maintained, already httpx's
own HTTP/1.1 engine, so no new dependency and no web framework), and
``FeedbackFile``, which follows a JSON-lines or CSV file the call centre
appends results to. A callback needs ``trigger_id`` and ``outcome``; the
subscriber and scenario are read from the trigger id when not given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import h11
import msgspec
import structlog

from kairos.adapters._channel import FEEDBACK_OUTCOMES, Feedback, FeedbackSink, wall_ms
from kairos.adapters._h11server import serve_connection
from kairos.adapters._http import SIGNATURE_HEADER, verify

__all__ = ["FeedbackFile", "FeedbackServer", "FeedbackStats", "parse_feedback"]

log = structlog.get_logger("kairos.feedback")


class _Callback(msgspec.Struct):
    """A channel callback as received; only ``trigger_id`` and ``outcome`` are required."""

    trigger_id: str
    outcome: str
    msisdn: str | None = None
    scenario: str | None = None
    channel: str | None = None
    ts: int | None = None


class FeedbackStats(msgspec.Struct):
    """Counts of a feedback source."""

    accepted: int = 0
    rejected: int = 0


def parse_feedback(obj: Any, *, channel: str = "", now: Callable[[], int] = wall_ms) -> Feedback:
    """One callback (a mapping) as a ``feedback`` event; ``ValueError`` says what is wrong with it."""
    try:
        cb = msgspec.convert(obj, _Callback, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    if cb.outcome not in FEEDBACK_OUTCOMES:
        raise ValueError(f"outcome {cb.outcome!r} is not one of {', '.join(sorted(FEEDBACK_OUTCOMES))}")
    parts = cb.trigger_id.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit():
        raise ValueError(f"trigger_id {cb.trigger_id!r} is not SCENARIO:MSISDN:TS[:N]")
    chan = cb.channel or channel
    if not chan:
        raise ValueError("channel is missing")
    return Feedback(
        ts=cb.ts if cb.ts is not None else now(),
        msisdn=cb.msisdn or parts[1],
        trigger_id=cb.trigger_id,
        scenario=cb.scenario or parts[0],
        channel=chan,
        outcome=cb.outcome,
    )


class FeedbackServer:
    """``POST /feedback`` with one JSON callback or a list of them; answers 202 with the count accepted."""

    def __init__(
        self,
        sink: FeedbackSink,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/feedback",
        secret: str = "",
        channel: str = "",
        max_body: int = 1 << 20,
        idle_timeout_s: float = 30.0,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.sink, self.host, self.port, self.path = sink, host, port, path
        self.secret, self.channel, self.max_body = secret, channel, max_body
        self.idle_timeout_s, self.clock = idle_timeout_s, clock
        self._stats = FeedbackStats()

    def statistics(self) -> FeedbackStats:
        """Callbacks accepted and rejected so far."""
        return msgspec.structs.replace(self._stats)

    async def run(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``await tg.start(server.run)`` returns the bound port."""
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener:
            task_status.started(self.port)
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        """Serve one keep-alive connection."""
        await serve_connection(stream, self._answer_json, max_body=self.max_body, idle_timeout_s=self.idle_timeout_s)

    async def _answer_json(self, request: h11.Request, body: bytes) -> tuple[int, str, bytes]:
        status, payload = self._answer(request, body)
        return status, "application/json", msgspec.json.encode(payload)

    def _answer(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        """Status and JSON answer for one request; accepted callbacks go to the sink."""
        target = request.target.decode("latin-1").split("?", 1)[0]
        if target != self.path:
            return 404, {"error": f"not found: {target}"}
        if request.method != b"POST":
            return 405, {"error": "use POST"}
        if self.secret:
            given = dict(request.headers).get(SIGNATURE_HEADER.lower().encode(), b"").decode("latin-1")
            if not verify(self.secret, body, given):
                self._stats.rejected += 1
                return 401, {"error": f"bad or missing {SIGNATURE_HEADER}"}
        try:
            data = msgspec.json.decode(body)
            items = data if isinstance(data, list) else [data]
            events = [parse_feedback(item, channel=self.channel, now=self.clock) for item in items]
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:
            self._stats.rejected += 1
            return 400, {"error": str(exc)}
        for event in events:
            self.sink(event)
        self._stats.accepted += len(events)
        return 202, {"accepted": len(events)}

class FeedbackFile:
    """Follows a callback file, resuming at a saved offset.

    ``.jsonl``: one JSON object a line; ``.csv``: a header row first.
    """

    def __init__(
        self,
        path: str | Path,
        sink: FeedbackSink,
        *,
        channel: str = "",
        poll_s: float = 0.5,
        offset_path: str | Path | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.path = Path(path)
        self.sink, self.channel, self.poll_s, self.clock = sink, channel, poll_s, clock
        self.offset_path = Path(offset_path) if offset_path else self.path.with_name(self.path.name + ".offset")
        self.csv = self.path.suffix.lower() == ".csv"
        self._stats = FeedbackStats()
        try:
            self._offset = int(self.offset_path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            self._offset = 0

    def statistics(self) -> FeedbackStats:
        """Lines accepted and rejected so far."""
        return msgspec.structs.replace(self._stats)

    def read_new(self) -> int:
        """Turn the complete lines added since the last call into feedback; returns how many were accepted."""
        try:
            with open(self.path, "rb") as f:
                header = f.readline() if self.csv else b""
                if self._offset < len(header):
                    self._offset = len(header)
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for its newline
        if end == 0:
            return 0
        accepted = 0
        fields = next(csv.reader([header.decode("utf-8-sig")])) if self.csv else []
        at = self._offset
        for raw in chunk[:end].split(b"\n"):  # only \n ends a line
            line_at, at = at, at + len(raw) + 1
            if not raw.strip():
                continue
            try:
                if self.csv:
                    obj: Any = dict(zip(fields, next(csv.reader(io.StringIO(raw.decode("utf-8")))), strict=False))
                    obj = {k: v for k, v in obj.items() if v != ""}
                else:
                    obj = msgspec.json.decode(raw)
                event = parse_feedback(obj, channel=self.channel, now=self.clock)
            except (ValueError, msgspec.DecodeError, RecursionError) as exc:
                self._stats.rejected += 1
                log.warning("feedback line rejected", file=str(self.path), offset=line_at, error=str(exc))
                continue
            self.sink(event)
            accepted += 1
        self._offset += end
        self._stats.accepted += accepted
        self.offset_path.write_text(str(self._offset))
        return accepted

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll the file until cancelled."""
        task_status.started()
        while True:
            self.read_new()
            await anyio.sleep(self.poll_s)
