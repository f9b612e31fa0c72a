"""The daemon's HTTP endpoints on anyio + h11: metrics, health, readiness, ingest, admin.

| endpoint | what |
| --- | --- |
| ``GET /metrics`` | Prometheus text format |
| ``GET /health`` | 200 while the process serves |
| ``GET /ready`` | 200 once sources, engine and outbox run; 503 while starting or stopping, or while the last snapshot failed (``{"ready": false, "reason": …}``) |
| ``POST /ingest`` | a body of JSON lines, processed like a source's (202 with counts) |
| ``POST /admin/reload`` | reload the scenarios; ``X-Kairos-User`` says who (the audit log's ``who``) |
| ``POST /admin/snapshot`` | take a snapshot now |

``/admin/*`` needs ``Authorization: Bearer TOKEN`` with the configured
``admin_token`` (no token configured: admin endpoints answer 403).
``/ingest`` needs the ``ingest_token`` if one is configured; without one it is
open only on a loopback address, and off (403) on any other, since anyone who
reaches the port could otherwise inject events. The start log says which.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any, Protocol

import anyio
import anyio.abc
import h11
import msgspec
import structlog

from kairos._metrics import CONTENT_TYPE
from kairos._reload import ReloadResult
from kairos._snapfiles import SnapshotFailed, SnapshotFiles
from kairos.adapters import FilePosition, serve_connection

log = structlog.get_logger("kairos.http")

MAX_BODY = 16 << 20
IDLE_TIMEOUT_S = 30.0


class _Reloader(Protocol):
    def reload(self, who: str) -> ReloadResult: ...


class Served(Protocol):
    """What the endpoints use of the daemon (``kairos._daemon.Daemon`` hands itself)."""

    @property
    def ready(self) -> bool: ...

    @property
    def snapshot_error(self) -> str | None: ...  # why the last snapshot failed; None once one succeeds

    @property
    def partitioned(self) -> bool: ...

    @property
    def decode_errors(self) -> int: ...

    @property
    def not_owned(self) -> int: ...

    @property
    def future(self) -> int: ...

    @property
    def files(self) -> SnapshotFiles: ...

    @property
    def reloader(self) -> _Reloader: ...

    def ingest(self, source: str, data: bytes, position: FilePosition | None, unit: str = ...) -> int: ...

    async def snapshot(self, reason: str) -> None: ...

    def metrics(self) -> bytes: ...  # the Prometheus text format


class HttpServer:
    """Serves the daemon's endpoints until cancelled."""

    def __init__(self, daemon: Served, host: str, port: int, *, admin_token: str = "", ingest_token: str = "") -> None:
        self.d = daemon
        self.host, self.port = host, port
        self.admin_token, self.ingest_token = admin_token, ingest_token

    @property
    def ingest_mode(self) -> str:
        """``token``: the ingest token is needed; ``open``: no token, loopback only; ``off``: neither."""
        if self.ingest_token:
            return "token"
        return "open" if is_loopback(self.host) else "off"

    async def run(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener:
            log.info("http listening", host=self.host, port=self.port, ingest=self.ingest_mode)
            if self.ingest_mode == "off":
                log.warning("POST /ingest is off: http.listen is not a loopback address and no http.ingest_token "
                            "is set; set http.ingest_token (clients send Authorization: Bearer TOKEN) or listen "
                            "on 127.0.0.1 to use it", host=self.host)
            task_status.started(self.port)
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        await serve_connection(stream, self._answer, max_body=MAX_BODY, idle_timeout_s=IDLE_TIMEOUT_S)

    async def _answer(self, request: h11.Request, body: bytes) -> tuple[int, str, bytes]:
        target = request.target.decode("latin-1").split("?", 1)[0]
        method = request.method.decode()
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in request.headers}
        if target == "/metrics" and method == "GET":
            return 200, CONTENT_TYPE, self.d.metrics()
        if target == "/health" and method == "GET":
            return _json(200, {"status": "ok"})
        if target == "/ready" and method == "GET":
            ready = self.d.ready
            failed = self.d.snapshot_error
            if ready and failed is not None:  # processing goes on, but nothing new is being checkpointed
                return _json(503, {"ready": False, "reason": f"the last snapshot failed: {failed}"})
            return _json(200 if ready else 503, {"ready": ready})
        if target == "/ingest" and method == "POST":
            mode = self.ingest_mode
            if mode == "off":
                return _json(403, {"error": "POST /ingest is off: this server listens beyond loopback and no "
                                            "http.ingest_token is configured; set one"})
            if mode == "token" and not _bearer(headers, self.ingest_token):
                return _json(401, {"error": "POST /ingest needs Authorization: Bearer INGEST_TOKEN"})
            before = (self.d.decode_errors, self.d.not_owned, self.d.future)
            taken = self.d.ingest("http", body if body.endswith(b"\n") or not body else body + b"\n", None,
                                  unit="" if self.d.partitioned else "all")
            errors = self.d.decode_errors - before[0]
            refused = self.d.not_owned - before[1]
            ahead = self.d.future - before[2]
            return _json(202, {"accepted": taken - refused, "errors": errors, "not_owned": refused,
                               "too_far_ahead": ahead})
        if target.startswith("/admin/"):
            if not self.admin_token:
                return _json(403, {"error": "admin endpoints are off: set http.admin_token in the configuration"})
            if not _bearer(headers, self.admin_token):
                return _json(401, {"error": "admin endpoints need Authorization: Bearer ADMIN_TOKEN"})
            if method != "POST":
                return _json(405, {"error": "use POST"})
            who = headers.get("x-kairos-user", "").strip() or "admin"
            if target == "/admin/reload":
                result = self.d.reloader.reload(who)
                return _json(200 if result.ok else 422, msgspec.to_builtins(result))
            if target == "/admin/snapshot":
                try:
                    await self.d.snapshot(f"admin:{who}")
                except SnapshotFailed as e:
                    return _json(500, {"error": f"the snapshot failed; the previous one stays: {e}"})
                info = self.d.files.last
                return _json(200, msgspec.to_builtins(info))
        return _json(404, {"error": f"not found: {method} {target}"})


def is_loopback(host: str) -> bool:
    """Only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost); the wildcard and names are not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bearer(headers: dict[str, str], token: str) -> bool:
    given = headers.get("authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode())


def _json(status: int, payload: Any) -> tuple[int, str, bytes]:
    return status, "application/json", msgspec.json.encode(payload)
