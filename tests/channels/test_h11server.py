"""The small HTTP/1.1 server under the daemon's and the feedback endpoints: one request that makes its
handler raise is answered 500, and the same connection and the server go on serving."""

from __future__ import annotations

import anyio
import anyio.abc
import h11
import httpx
import pytest

from kairos.adapters._h11server import serve_connection


@pytest.mark.anyio
async def test_a_handler_that_raises_answers_500_and_the_server_goes_on():
    async def answer(request: h11.Request, body: bytes) -> tuple[int, str, bytes]:
        if request.target == b"/boom":
            raise ZeroDivisionError("a bug in one handler")
        return 200, "text/plain", b"ok"

    async def serve(stream) -> None:
        await serve_connection(stream, answer, max_body=1024, idle_timeout_s=5)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            boom = await client.get("/boom")
            after = await client.get("/fine")  # the same keep-alive connection
        tg.cancel_scope.cancel()
    assert (500, "ZeroDivisionError") == (boom.status_code, boom.json()["error"].split("(")[1].split(")")[0])
    assert (200, b"ok") == (after.status_code, after.content)
