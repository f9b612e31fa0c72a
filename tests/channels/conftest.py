"""Fixtures for the channel tests: the async backends, and real peers on loopback started and stopped per test."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every ``@pytest.mark.anyio`` test here runs on plain asyncio and on uvloop."""
    return request.param


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- HTTP peer


@dataclass
class Received:
    """One request the HTTP peer got."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    def json(self) -> object:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that can cut its open keep-alive connections, as a crashed peer would."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.connections: set[socket.socket] = set()

    def get_request(self) -> tuple[socket.socket, object]:
        conn, addr = super().get_request()
        self.connections.add(conn)
        return conn, addr

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connections.clear()


@dataclass
class HttpPeer:
    """A real HTTP/1.1 server (stdlib ``http.server`` in a thread) playing the push gateway or call centre.

    It checks ``X-Kairos-Signature`` against ``secret``, records every request,
    answers from ``script`` (a list of status codes, then 200), can ``stall``
    (hold every answer until released), and counts distinct ``Idempotency-Key``
    values the way a de-duplicating gateway would.
    """

    secret: bytes
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    delay_first_s: float = 0.0  # hold the first request this long (a slow answer, for timeouts)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.released.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    def delivered_ids(self) -> list[str]:
        """Idempotency keys of requests answered 2xx, in order (repeats included)."""
        with self.lock:
            return [r.headers["idempotency-key"] for r in self.requests
                    if r.headers.get("x-answer", "").startswith("2")]

    def stall(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def start(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = hmac.new(peer.secret, body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(expected, self.headers.get("X-Kairos-Signature", ""))
                with peer.lock:
                    first = not peer.requests
                    status = peer.script.pop(0) if peer.script else 200
                    if not ok:
                        status = 401
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    headers["x-answer"] = str(status)
                    peer.requests.append(Received(self.path, headers, body, ok))
                if first and peer.delay_first_s:
                    threading.Event().wait(peer.delay_first_s)
                peer.released.wait(30)
                payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a timeout test)
                    pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (the port is refused until ``start`` again)."""
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()  # a dead peer keeps no keep-alive connection open either
            self._server = None


@pytest.fixture
def http_peer() -> Iterator[HttpPeer]:
    peer = HttpPeer(secret=b"s3cret")
    peer.start()
    yield peer
    peer.stop()


# --------------------------------------------------------------------------- SMPP peer


@dataclass
class Smsc:
    """The smpp34 SMSC (``smsc_server.py``) as a child process; ``records()`` reads what it received."""

    log: Path
    port: int
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        cmd = [sys.executable, str(HERE / "smsc_server.py"), "--port", str(self.port), "--log", str(self.log),
               *self.args, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "RUST_BACKTRACE": "0"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until READY (or the process died)
        if line.strip() != b"READY":
            self.stop()
            raise RuntimeError(f"SMSC did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def records(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def submits(self, answer: str = "accepted") -> list[dict[str, object]]:
        return [r for r in self.records() if r.get("answer") == answer]


@pytest.fixture
def smsc(tmp_path: Path) -> Iterator[Smsc]:
    """A running SMSC on a free port; its log is per test."""
    server = Smsc(log=tmp_path / "smsc.jsonl", port=free_port())
    yield server
    server.stop()
