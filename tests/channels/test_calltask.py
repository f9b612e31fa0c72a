"""Outbound-call tasks: the daily CSV task file, and the call centre's HTTP endpoint (a real server on loopback)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import anyio
import pytest

from kairos.adapters import CallChannel, ChannelConfigError, Outcome, SendContext
from kairos.adapters import Outbox, OutboxConfig

from .conftest import HttpPeer

pytestmark = pytest.mark.anyio

# 2026-11-23 23:30 and 2026-11-24 00:30 in Asia/Shanghai (UTC+8)
LATE_EVENING = 1795447800000
AFTER_MIDNIGHT = 1795451400000


def ctx(n: int, send_at: int, **params: object) -> SendContext:
    return SendContext(
        id=f"care_dropped:1380000{n:04d}:{send_at}", scenario="care_dropped", msisdn=f"1380000{n:04d}",
        ts=send_at, send_at=send_at, channel="call", template="care.dropped_calls", params=dict(params),
        priority=70, text=f"客户一小时内掉话{params.get('count', 3)}次，请致电致歉并确认补偿",
    )


async def send_all(channel: CallChannel, sends: list[SendContext]) -> list[Outcome]:
    async with anyio.create_task_group() as tg:
        await channel.start(tg)
        try:
            return [await channel.send(c) for c in sends]
        finally:
            await channel.close()


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


async def test_tasks_go_to_the_csv_file_of_their_local_day_with_offer_reason_and_priority(tmp_path: Path) -> None:
    channel = CallChannel.from_config({"mode": "csv", "directory": str(tmp_path)})
    outcomes = await send_all(
        channel, [ctx(1, LATE_EVENING, count=3, reason="3 dropped calls in an hour"), ctx(2, AFTER_MIDNIGHT)]
    )
    assert ["delivered", "delivered"] == [o.status for o in outcomes]
    assert ["calltasks-2026-11-23.csv", "calltasks-2026-11-24.csv"] == sorted(p.name for p in tmp_path.iterdir())
    expected = {
        "id": ctx(1, LATE_EVENING).id, "msisdn": "13800000001", "scenario": "care_dropped",
        "template": "care.dropped_calls",
        "offer": "客户一小时内掉话3次，请致电致歉并确认补偿", "reason": "3 dropped calls in an hour", "priority": "70",
        "due": "2026-11-23 23:30:00",
    }
    assert [expected] == rows(tmp_path / "calltasks-2026-11-23.csv")
    assert [("scenario care_dropped", "2026-11-24 00:30:00")] == [
        (r["reason"], r["due"]) for r in rows(tmp_path / "calltasks-2026-11-24.csv")
    ]


async def test_a_task_already_in_the_file_is_not_appended_again_even_by_a_new_process(tmp_path: Path) -> None:
    config = {"mode": "csv", "directory": str(tmp_path)}
    await send_all(CallChannel.from_config(config), [ctx(1, LATE_EVENING)])
    outcomes = await send_all(CallChannel.from_config(config), [ctx(1, LATE_EVENING), ctx(2, LATE_EVENING)])
    assert ["already in the task file", "calltasks-2026-11-23.csv"] == [o.reason for o in outcomes]
    written = rows(tmp_path / "calltasks-2026-11-23.csv")
    assert [ctx(1, LATE_EVENING).id, ctx(2, LATE_EVENING).id] == [r["id"] for r in written]


async def test_tasks_are_posted_signed_to_the_call_centre_endpoint(http_peer: HttpPeer) -> None:
    channel = CallChannel.from_config({"mode": "http", "url": http_peer.url, "secret": "s3cret"})
    outcomes = await send_all(channel, [ctx(3, LATE_EVENING, reason="care")])
    [request] = http_peer.requests
    assert ("delivered", True) == (outcomes[0].status, request.signature_ok)
    assert {
        "id": ctx(3, LATE_EVENING).id, "msisdn": "13800000003", "scenario": "care_dropped",
        "template": "care.dropped_calls",
        "offer": "客户一小时内掉话3次，请致电致歉并确认补偿", "reason": "care", "priority": 70,
        "due": "2026-11-23 23:30:00",
    } == request.json()


def test_http_mode_without_a_url_is_a_configuration_error() -> None:
    with pytest.raises(ChannelConfigError) as err:
        CallChannel.from_config({"mode": "http"}, name="call")
    assert "channel call: mode 'http' needs url" == str(err.value)


async def test_a_call_centre_endpoint_down_for_a_while_loses_no_task_and_gets_none_twice(
    http_peer: HttpPeer, tmp_path: Path
) -> None:
    """Tasks made while the endpoint is down wait in the outbox; when it is back each arrives exactly once."""
    cfg = OutboxConfig(directory=str(tmp_path / "ob"), backoff_base_ms=50, backoff_max_ms=200, max_attempts=1000)
    channel = CallChannel.from_config(
        {"mode": "http", "url": http_peer.url, "secret": "s3cret", "timeout_s": 2.0}, name="call"
    )
    outbox = Outbox(cfg, {"call": channel})
    tasks = [ctx(i, LATE_EVENING + i) for i in range(12)]
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        with anyio.fail_after(20):
            for task in tasks[:3]:
                outbox.submit(task)
            await outbox.wait_idle()
            http_peer.stop()
            for task in tasks[3:]:
                outbox.submit(task)
            await outbox.wait_for(lambda s: s.retried >= 18)  # every task refused at least twice
            http_peer.start()
            stats = await outbox.wait_idle()
        outbox.stop()
    assert (12, 0) == (stats.delivered, stats.dead_lettered)
    assert {t.id: 1 for t in tasks} == dict(Counter(http_peer.delivered_ids()))
