"""Feedback in: callbacks over HTTP (a real socket, h11 server) and from a followed file become feedback events."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from kairos.adapters import Feedback, FeedbackFile, FeedbackServer, parse_feedback, sign

pytestmark = pytest.mark.anyio

TRIGGER = "video_heavy_no_pack:13800000001:1795399200000"


def now() -> int:
    return 1795400000000


def test_a_callback_with_only_id_and_outcome_takes_scenario_and_subscriber_from_the_id() -> None:
    event = parse_feedback({"trigger_id": TRIGGER, "outcome": "clicked"}, channel="popup", now=now)
    assert Feedback(ts=now(), msisdn="13800000001", trigger_id=TRIGGER, scenario="video_heavy_no_pack",
                    channel="popup", outcome="clicked") == event


def test_a_feedback_event_encodes_as_the_domain_json_line() -> None:
    import msgspec

    event = parse_feedback({"trigger_id": TRIGGER, "outcome": "accepted", "ts": 5, "channel": "call"})
    assert (
        b'{"type":"feedback","ts":5,"msisdn":"13800000001","trigger_id":"' + TRIGGER.encode()
        + b'","scenario":"video_heavy_no_pack","channel":"call","outcome":"accepted"}'
    ) == msgspec.json.encode(event)


@pytest.mark.parametrize(
    ("callback", "message"),
    [
        ({"trigger_id": TRIGGER, "outcome": "liked"},
         "outcome 'liked' is not one of accepted, clicked, delivered, failed, rejected"),
        ({"trigger_id": "nonsense", "outcome": "clicked"}, "trigger_id 'nonsense' is not SCENARIO:MSISDN:TS[:N]"),
        ({"outcome": "clicked"}, "Object missing required field `trigger_id`"),
    ],
)
def test_a_bad_callback_is_refused_with_a_reason(callback: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_feedback(callback, channel="popup")
    assert message == str(err.value)


async def test_the_http_endpoint_turns_signed_callbacks_into_feedback_events() -> None:
    got: list[Feedback] = []
    server = FeedbackServer(got.append, channel="popup", secret="k", clock=now)
    async with anyio.create_task_group() as tg:
        port = await tg.start(server.run)
        url = f"http://127.0.0.1:{port}/feedback"
        one = f'{{"trigger_id": "{TRIGGER}", "outcome": "clicked"}}'.encode()
        many = (f'[{{"trigger_id": "{TRIGGER}", "outcome": "accepted", "channel": "call", "ts": 7}}, '
                f'{{"trigger_id": "{TRIGGER}:2", "outcome": "rejected"}}]').encode()
        async with httpx.AsyncClient() as client:  # one keep-alive connection for all three
            answers = [
                await client.post(url, content=one, headers={"X-Kairos-Signature": sign("k", one)}),
                await client.post(url, content=many, headers={"X-Kairos-Signature": sign("k", many)}),
                await client.post(url, content=one, headers={"X-Kairos-Signature": "0" * 64}),
            ]
        tg.cancel_scope.cancel()
    assert [(202, {"accepted": 1}), (202, {"accepted": 2}), (401, {"error": "bad or missing X-Kairos-Signature"})] == [
        (a.status_code, a.json()) for a in answers
    ]
    assert [("popup", "clicked", now()), ("call", "accepted", 7), ("popup", "rejected", now())] == [
        (f.channel, f.outcome, f.ts) for f in got
    ]
    assert (3, 1) == (server.statistics().accepted, server.statistics().rejected)


async def test_the_http_endpoint_answers_400_404_and_405_without_feeding_anything() -> None:
    got: list[Feedback] = []
    server = FeedbackServer(got.append, channel="popup")
    async with anyio.create_task_group() as tg:
        port = await tg.start(server.run)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            answers = [
                await client.post(f"{base}/feedback", content=b'{"trigger_id": "x:1:2", "outcome": "maybe"}'),
                await client.post(f"{base}/feedback", content=b"not json"),
                await client.post(f"{base}/other", content=b"{}"),
                await client.get(f"{base}/feedback"),
            ]
        tg.cancel_scope.cancel()
    assert [400, 400, 404, 405] == [a.status_code for a in answers]
    assert [] == got


def test_the_file_source_reads_complete_lines_and_resumes_at_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "app_clicks.jsonl"
    got: list[Feedback] = []
    path.write_text(f'{{"trigger_id": "{TRIGGER}", "outcome": "clicked"}}\n{{"trigger_id": "{TRIGGER}:2", "outc',
                    encoding="utf-8")
    source = FeedbackFile(path, got.append, channel="popup", clock=now)
    assert 1 == source.read_new()  # the half-written second line waits
    with open(path, "a", encoding="utf-8") as f:
        f.write('ome": "accepted"}\nnot json\n')
    assert 1 == source.read_new()
    again = FeedbackFile(path, got.append, channel="popup", clock=now)  # a restart resumes after what was read
    assert 0 == again.read_new()
    assert [(TRIGGER, "clicked"), (f"{TRIGGER}:2", "accepted")] == [(f.trigger_id, f.outcome) for f in got]
    assert (2, 1) == (source.statistics().accepted, source.statistics().rejected)


def test_the_file_source_reads_call_centre_results_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "call_results.csv"
    path.write_text(f"trigger_id,outcome,ts\n{TRIGGER},accepted,1795400000123\n{TRIGGER}:2,rejected,\n",
                    encoding="utf-8")
    got: list[Feedback] = []
    FeedbackFile(path, got.append, channel="call", clock=now).read_new()
    assert [("accepted", 1795400000123, "call"), ("rejected", now(), "call")] == [
        (f.outcome, f.ts, f.channel) for f in got
    ]
