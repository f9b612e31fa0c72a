"""One keep-alive HTTP/1.1 connection served with h11 over an anyio stream, for Kairos's small endpoints.

The feedback endpoint and the daemon's endpoints (metrics, health, ingest,
admin) need the same few things: read a request and its bounded body, answer
it, keep the connection for the next one, and let go quietly when the client
goes away or idles. Each passes its own ``answer``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import h11
import msgspec
import structlog

log = structlog.get_logger("kairos.http")

#: ``answer(request, body) -> (status, content type, payload)``
Answer = Callable[[h11.Request, bytes], Awaitable[tuple[int, str, bytes]]]


async def serve_connection(stream: anyio.abc.SocketStream, answer: Answer, *, max_body: int,
                           idle_timeout_s: float) -> None:
    """Serve requests on ``stream`` until the client closes; a body over ``max_body`` is answered 413."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
    async with stream:
        try:
            while True:
                request, body, too_large = await _read_request(conn, stream, max_body, idle_timeout_s)
                if request is None:
                    return
                if too_large:
                    status, ctype, payload = 413, "application/json", msgspec.json.encode(
                        {"error": f"body over {max_body} bytes"})
                else:
                    try:
                        status, ctype, payload = await answer(request, body)
                    except Exception as exc:  # a bug answering one request must not end the server
                        log.exception("request failed; answered 500", method=request.method.decode("latin-1"),
                                      target=request.target.decode("latin-1").split("?", 1)[0][:200],
                                      error=type(exc).__name__)
                        status, ctype, payload = 500, "application/json", msgspec.json.encode(
                            {"error": f"internal error ({type(exc).__name__}); the server goes on, see its log"})
                headers = [("Content-Type", ctype), ("Content-Length", str(len(payload)))]
                out = conn.send(h11.Response(status_code=status, headers=headers))
                out += conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage())
                await stream.send(out)
                if too_large or conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, h11.LocalProtocolError, anyio.EndOfStream, anyio.BrokenResourceError,
                TimeoutError):
            return


async def _read_request(conn: h11.Connection, stream: anyio.abc.SocketStream, max_body: int,
                        idle_timeout_s: float) -> tuple[h11.Request | None, bytes, bool]:
    """The next request, its body and whether the body went over ``max_body`` (then cut); ``None`` when closed."""
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            with anyio.fail_after(idle_timeout_s):
                try:
                    data = await stream.receive(65536)
                except anyio.EndOfStream:
                    data = b""
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body:
                return request, b"", True
        elif isinstance(event, h11.EndOfMessage):
            return request, bytes(body), False
        elif isinstance(event, h11.ConnectionClosed):
            return None, b"", False
