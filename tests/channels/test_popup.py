"""The pop-up channel against a real HTTP server on loopback that checks the HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from pathlib import Path

import anyio
import pytest

from kairos.adapters import Outcome, PopupChannel, SendContext, sign
from kairos.adapters import ChannelLimits, Outbox, OutboxConfig

from .conftest import HttpPeer

pytestmark = pytest.mark.anyio


def popup(peer: HttpPeer, **overrides: object) -> PopupChannel:
    config: dict[str, object] = {"url": peer.url, "secret": "s3cret", "timeout_s": 2.0}
    config.update(overrides)
    return PopupChannel.from_config(config, name="popup")


def ctx(n: int) -> SendContext:
    return SendContext(
        id=f"video_heavy_no_pack:1380000{n:04d}:{1795399200000 + n}", scenario="video_heavy_no_pack",
        msisdn=f"1380000{n:04d}", ts=1795399200000 + n, send_at=1795399200000 + n, channel="popup",
        template="offer.video_pack", params={"app": "抖音"}, priority=60, text="抖音专属视频流量包，9元30GB",
    )


async def send_one(channel: PopupChannel, c: SendContext) -> Outcome:
    async with anyio.create_task_group() as tg:
        await channel.start(tg)
        try:
            return await channel.send(c)
        finally:
            await channel.close()


def test_the_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    body = '{"id":"x","text":"您好"}'.encode()
    assert hmac.new(b"k", body, hashlib.sha256).hexdigest() == sign("k", body)


async def test_a_popup_is_posted_as_signed_json_and_answered_delivered(http_peer: HttpPeer) -> None:
    outcome = await send_one(popup(http_peer), ctx(1))
    [request] = http_peer.requests
    expected = {
        "id": ctx(1).id, "msisdn": "13800000001", "scenario": "video_heavy_no_pack", "template": "offer.video_pack",
        "text": "抖音专属视频流量包，9元30GB", "params": {"app": "抖音"}, "priority": 60,
        "ts": 1795399200001, "send_at": 1795399200001,
    }
    assert ("delivered", True, expected, ctx(1).id) == (
        outcome.status, request.signature_ok, request.json(), request.headers["idempotency-key"]
    )
    assert "application/json" == request.headers["content-type"]


async def test_a_wrong_secret_is_refused_by_the_gateway_and_dead_lettered(http_peer: HttpPeer) -> None:
    outcome = await send_one(popup(http_peer, secret="wrong"), ctx(2))
    assert ("failed", False) == (outcome.status, http_peer.requests[0].signature_ok)
    assert outcome.reason.startswith("http 401")


async def test_a_5xx_answer_is_retried_and_its_retry_after_kept(http_peer: HttpPeer) -> None:
    http_peer.script = [503]
    outcome = await send_one(popup(http_peer), ctx(3))
    assert ("retry", None) == (outcome.status, outcome.retry_after_ms)
    assert outcome.reason.startswith("http 503")


async def test_a_4xx_answer_is_a_permanent_failure(http_peer: HttpPeer) -> None:
    http_peer.script = [404]
    outcome = await send_one(popup(http_peer), ctx(4))
    assert "failed" == outcome.status


async def test_a_timeout_is_retried(http_peer: HttpPeer) -> None:
    http_peer.delay_first_s = 1.0
    outcome = await send_one(popup(http_peer, timeout_s=0.2), ctx(5))
    assert ("retry", "timeout: ReadTimeout") == (outcome.status, outcome.reason)


async def test_a_refused_connection_is_retried(http_peer: HttpPeer) -> None:
    http_peer.stop()
    outcome = await send_one(popup(http_peer), ctx(6))
    assert "retry" == outcome.status


async def test_through_the_outbox_5xx_and_timeouts_end_delivered_and_4xx_dead_lettered(
    http_peer: HttpPeer, tmp_path: Path
) -> None:
    http_peer.script = [500, 502, 400]
    cfg = OutboxConfig(directory=str(tmp_path / "ob"), backoff_base_ms=10, backoff_max_ms=20,
                       channels={"popup": ChannelLimits(concurrency=1)})
    outbox = Outbox(cfg, {"popup": popup(http_peer)})
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        with anyio.fail_after(10):
            outbox.submit(ctx(7))  # 500, 502, then 400: dead
            await outbox.wait_idle()
            outbox.submit(ctx(8))  # 200
            stats = await outbox.wait_idle()
        outbox.stop()
    assert (1, 1, 2) == (stats.delivered, stats.dead_lettered, stats.retried)
    assert [ctx(8).id] == http_peer.delivered_ids()


async def test_a_stalled_gateway_does_not_slow_the_engine(http_peer: HttpPeer, tmp_path: Path) -> None:
    """While the gateway holds its first request, the engine's synchronous submits all return.

    None waits for the channel.
    """
    http_peer.stall()
    cfg = OutboxConfig(directory=str(tmp_path / "ob"), memory_limit=500,
                       channels={"popup": ChannelLimits(concurrency=16)})
    outbox = Outbox(cfg, {"popup": popup(http_peer, timeout_s=30.0)})
    n = 2_000
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        with anyio.fail_after(60):
            outbox.submit(ctx(0))
            await outbox.wait_for(lambda s: s.in_flight == 1)  # the gateway has the first request and holds it
            processed = sum(outbox.submit(ctx(i)) for i in range(1, n))
            stalled_stats = outbox.statistics()
            http_peer.release()
            final = await outbox.wait_idle()
        outbox.stop()
    assert (n - 1, n) == (processed, stalled_stats.pending)
    assert (1, 0) == (stalled_stats.in_flight, stalled_stats.delivered)  # the gateway was still holding
    assert stalled_stats.in_memory <= 500
    assert (n, 0) == (final.delivered, final.dead_lettered)
    assert {ctx(i).id: 1 for i in range(n)} == dict(Counter(http_peer.delivered_ids()))


async def test_a_gateway_down_for_a_while_loses_nothing_and_receives_nothing_twice(
    http_peer: HttpPeer, tmp_path: Path
) -> None:
    cfg = OutboxConfig(directory=str(tmp_path / "ob"), backoff_base_ms=50, backoff_max_ms=200, max_attempts=1000)
    outbox = Outbox(cfg, {"popup": popup(http_peer)})
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        with anyio.fail_after(20):
            for i in range(5):
                outbox.submit(ctx(i))
            await outbox.wait_idle()
            http_peer.stop()
            for i in range(5, 25):
                outbox.submit(ctx(i))
            await outbox.wait_for(lambda s: s.retried >= 40)  # every send refused at least twice
            http_peer.start()
            stats = await outbox.wait_idle()
        outbox.stop()
    assert (25, 0) == (stats.delivered, stats.dead_lettered)
    assert {ctx(i).id: 1 for i in range(25)} == dict(Counter(http_peer.delivered_ids()))
