"""Decisions out and feedback in over Kafka, and the Kafka source's metrics, with the daemon as a real process
against the suite's broker (Tansu, ``tests/conftest.py``).

Every wait is for progress the daemon reports (its log, its ``/metrics``), never a chosen time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import unique_topic
from tests.daemon.support import (
    kill,
    log_offset,
    logged,
    sends,
    start,
    stop,
    wait_for,
    wait_for_progress,
    wait_until_settled,
    write_config,
)
from tests.daemon.test_feedback import WAVES
from tests.daemon.test_crash import SCENARIOS, _content, recorded_stream, reference, replayed, sentinels
from tests.daemon.test_run import append, dpi
from tests.kafka_records import create_topic, produce, read_all


def _metrics(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _http(folder: Path, since: int = 0) -> str:
    (listening,) = wait_for(lambda: logged(folder, "http listening", since), what="the HTTP server")
    return f"http://127.0.0.1:{listening['port']}"


def _kafka_channels(bootstrap: str, topic: str) -> str:
    # Tansu 0.6.0's memory store grants no producer id to aiokafka: the idempotent producer is off here
    return "".join(f'[channels.{c}]\nplugin = "kafka"\nbootstrap_servers = "{bootstrap}"\ntopic = "{topic}"\n'
                   "idempotence = false\n" for c in ("sms", "popup", "call"))


def test_the_kafka_channel_gets_every_send_of_a_run_once_keyed_by_msisdn_with_the_send_json(tmp_path, kafka):
    topic = unique_topic()
    anyio.run(create_topic, kafka, topic, 4)
    reference(tmp_path)
    config = write_config(tmp_path, SCENARIOS, channels=(), reference="ref", extra=_kafka_channels(kafka, topic))
    recorded_stream(tmp_path / "in" / "events.jsonl", seed=11, events=2_000, subscribers=80)
    expected = sorted(map(_content, replayed(tmp_path)))
    assert len(expected) > 30
    proc = start(config)
    try:
        wait_until_settled(tmp_path, proc, 0, what="every send delivered")
    finally:
        assert 0 == stop(proc)
    records = anyio.run(read_all, kafka, topic)
    values = [json.loads(r.value) for r in records]
    assert expected == sorted(map(_content, values))  # each once: the same list, repeats included, as a replay
    assert all(r.key == v["msisdn"].encode() for r, v in zip(records, values, strict=True))


# --- feedback from a topic ----------------------------------------------------------------------------



def _feedback_config(folder: Path, scenarios: str, bootstrap: str, topic: str, *, idle_advance: bool = True,
                     **kw) -> Path:
    extra = ('[http]\nlisten = "127.0.0.1:0"\n[feedback]\nchannel = "sms"\n'
             f'[feedback.kafka]\nbootstrap_servers = "{bootstrap}"\ntopic = "{topic}"\n')
    return write_config(folder, scenarios, idle_advance=idle_advance, extra=extra, **kw)


def test_a_click_on_the_feedback_topic_stops_the_second_wave_and_a_malformed_record_is_counted_and_skipped(
        tmp_path, kafka):
    topic = unique_topic()
    anyio.run(create_topic, kafka, topic, 2)
    # event time only (no idle advance): the click is dated inside the window and the window closes when a
    # later event arrives after the click was applied, however long the machine takes to get there
    config = _feedback_config(tmp_path, WAVES, kafka, topic, channels=("sms", "call"), idle_advance=False)
    now = time.time_ns() // 1_000_000
    append(tmp_path / "in" / "events.jsonl", dpi(now, "1", "video"), dpi(now, "2", "video"))
    proc = start(config)
    try:
        base = _http(tmp_path)
        wait_for(lambda: logged(tmp_path, "feedback consumer reading"), what="the feedback consumer")
        first = wait_for(lambda: s if len(s := sends(tmp_path, ("sms",))) == 2 else None, what="the first wave")
        clicked = next(x["id"] for x in first if x["msisdn"] == "1")
        # one partition, in this order: the two bad records come before the click
        click = {"trigger_id": clicked, "outcome": "clicked", "ts": now + 1_000}
        anyio.run(produce, kafka, topic, [(None, b"not json"), (None, b'{"trigger_id": "x", "outcome": "clicked"}'),
                                          (b"1", json.dumps(click).encode())], 0)
        accepted = ("kairos_feedback_kafka_records_total", (("result", "accepted"),))
        wait_for(lambda: _metrics(base).get(accepted) == 1, timeout=60, what="the click applied")
        append(tmp_path / "in" / "events.jsonl", dpi(now + 10_000, "3", "news"))  # past every wave's window
        wait_for(lambda: sends(tmp_path, ("call",)), timeout=60, what="the second wave")
        wait_until_settled(tmp_path, proc, log_offset(tmp_path), what="the second wave's deadlines")
        m = _metrics(base)
    finally:
        assert 0 == stop(proc)
    assert ["2"] == [s["msisdn"] for s in sends(tmp_path, ("call",))]
    counts = {r: m[("kairos_feedback_kafka_records_total", (("result", r),))] for r in ("accepted", "malformed")}
    assert {"accepted": 1, "malformed": 2} == counts
    skipped = logged(tmp_path, "feedback record skipped: not a callback")
    assert [(topic, 0, 0), (topic, 0, 1)] == [(r["topic"], r["partition"], r["offset"]) for r in skipped]


THANKS = """
scenario thanks
  when count(feedback where outcome == "clicked") >= 2 within 1h
  then popup "offer.thanks"
end
"""


def _click(msisdn: str, n: int) -> tuple[bytes, bytes]:
    return msisdn.encode(), json.dumps({"trigger_id": f"wave1:{msisdn}:{1_000 + n}", "outcome": "clicked"}).encode()


@pytest.mark.parametrize("stopped_by", ["sigterm", "sigkill"])
def test_a_restart_neither_loses_nor_applies_again_the_feedback_read_before_it(tmp_path, kafka, stopped_by):
    """A's and B's first clicks are read by the first run; A's second one is produced while no daemon runs.
    Re-applied, B's click would make two and thank B; lost, A's first would leave A unthanked."""
    topic = unique_topic()
    anyio.run(create_topic, kafka, topic, 2)
    config = _feedback_config(tmp_path, THANKS, kafka, topic, channels=("popup",))
    anyio.run(produce, kafka, topic, [_click("13800000001", 1), _click("13800000002", 1)])
    proc = start(config)
    try:
        base = _http(tmp_path)
        wait_for(lambda: _metrics(base).get(("kairos_feedback_kafka_records_total", (("result", "accepted"),))) == 2,
                 timeout=60, what="both clicks read")
        if stopped_by == "sigkill":  # after a snapshot that holds both clicks (its event count says so)
            wait_for_progress(tmp_path, proc, 0, snapshots=1, events=2, input_done=lambda: False)
    finally:
        if stopped_by == "sigkill":
            kill(proc)
        else:
            assert 0 == stop(proc)
    assert [] == sends(tmp_path, ("popup",))
    anyio.run(produce, kafka, topic, [_click("13800000001", 2)])
    since = log_offset(tmp_path)
    proc = start(config)
    try:
        base = _http(tmp_path, since)
        wait_for(lambda: sends(tmp_path, ("popup",)), timeout=60, what="A's thanks")
        wait_until_settled(tmp_path, proc, log_offset(tmp_path), what="every click applied")
        m = _metrics(base)
    finally:
        assert 0 == stop(proc)
    assert ["13800000001"] == [s["msisdn"] for s in sends(tmp_path, ("popup",))]
    assert 1 == m[("kairos_feedback_kafka_records_total", (("result", "accepted"),))]  # only the new click
    assert {0.0} == {v for (name, _), v in m.items() if name == "kairos_feedback_kafka_lag_records"}


def test_a_partitioned_instance_applies_the_feedback_of_its_own_subscribers_and_passes_over_the_others(
        tmp_path, kafka):
    """The instance owns partition 0 of 2: A (13800000001) is in it, C (13800000003) is not."""
    topic = unique_topic()
    anyio.run(create_topic, kafka, topic, 2)
    src = '[[sources]]\nkind = "partitioned"\npath = "log"\npartitions = 2\nowned = [0]\npoll_ms = 20\n'
    config = _feedback_config(tmp_path, THANKS, kafka, topic, channels=("popup",), sources=src)
    (tmp_path / "log").mkdir()
    anyio.run(produce, kafka, topic, [_click("13800000001", 1), _click("13800000003", 1), _click("13800000003", 2),
                                      _click("13800000001", 2)])
    proc = start(config)
    try:
        base = _http(tmp_path)
        wait_for(lambda: sends(tmp_path, ("popup",)), timeout=60, what="A's thanks")
        key = "kairos_feedback_kafka_records_total"
        m = wait_for(lambda: m if (m := _metrics(base)).get((key, (("result", "not_owned"),))) == 2 else None,
                     what="C's clicks passed over")
    finally:
        assert 0 == stop(proc)
    assert ["13800000001"] == [s["msisdn"] for s in sends(tmp_path, ("popup",))]
    assert (2, 0) == (m[(key, (("result", "accepted"),))], m[(key, (("result", "malformed"),))])


def test_in_a_consumer_group_the_feedback_waits_for_the_assigned_partitions_and_then_reaches_them(tmp_path, kafka):
    """The feedback consumer starts before the group assigns any partition: the clicks on the topic are applied
    once the units arrive, read from the topic's start (the units have no position yet)."""
    events, feedback = unique_topic(), unique_topic()
    anyio.run(create_topic, kafka, events, 2)
    anyio.run(create_topic, kafka, feedback, 2)
    src = (f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{kafka}"\ntopic = "{events}"\n'
           f'group_id = "{events}"\npartitions = 2\n')
    config = _feedback_config(tmp_path, THANKS, kafka, feedback, channels=("popup",), sources=src)
    anyio.run(produce, kafka, feedback, [_click("13800000001", 1), _click("13800000003", 1),
                                         _click("13800000001", 2)])
    proc = start(config)
    try:
        base = _http(tmp_path)
        wait_for(lambda: logged(tmp_path, "partitions assigned"), timeout=60, what="the assignment")
        wait_for(lambda: sends(tmp_path, ("popup",)), timeout=60, what="A's thanks")
        wait_until_settled(tmp_path, proc, log_offset(tmp_path), what="every click applied")
        m = _metrics(base)
    finally:
        assert 0 == stop(proc)
    assert ["13800000001"] == [s["msisdn"] for s in sends(tmp_path, ("popup",))]
    key = "kairos_feedback_kafka_records_total"
    assert (3, 0) == (m[(key, (("result", "accepted"),))], m[(key, (("result", "not_owned"),))])


# --- the Kafka source's metrics -------------------------------------------------------------------------

def test_metrics_show_each_partitions_lag_going_to_zero_once_caught_up_and_the_rebalances(tmp_path, kafka):
    topic = unique_topic()
    count = 2
    anyio.run(create_topic, kafka, topic, count)
    reference(tmp_path)
    stream = recorded_stream(tmp_path / "events.jsonl", seed=3, events=600, subscribers=40)
    stream = stream[:-1] + sentinels(json.loads(stream[-1])["ts"], count)
    anyio.run(produce, kafka, topic, [(json.loads(x)["msisdn"].encode(), x.strip().encode()) for x in stream])
    src = (f'[[sources]]\nkind = "kafka"\nbootstrap_servers = "{kafka}"\ntopic = "{topic}"\n'
           f'group_id = "{topic}"\npartitions = {count}\n')
    config = write_config(tmp_path, SCENARIOS, sources=src, reference="ref", extra='[http]\nlisten = "127.0.0.1:0"\n')
    proc = start(config)

    def caught_up() -> dict | None:
        m = _metrics(base)
        lag = {dict(labels)["partition"]: v for (name, labels), v in m.items() if name == "kairos_kafka_lag_records"}
        events = sum(v for (name, _), v in m.items() if name == "kairos_events_total")
        return m if lag == {"0": 0, "1": 0} and events == len(stream) else None

    try:
        base = _http(tmp_path)
        m = wait_for(caught_up, timeout=90, what="every partition read to its end")
    finally:
        assert 0 == stop(proc)
    assert 2 == m[("kairos_kafka_partitions_owned", ())]
    changes = logged(tmp_path, "partition assignment changed")
    # a rejoin (Tansu rebalances when a member is slow) adds changes; each is counted, the first gains both
    assert len(changes) >= m[("kairos_kafka_rebalances_total", (("change", "assigned"),))] >= 1  # read before stop
    assert (["p-0000", "p-0001"], [], 2) == (changes[0]["gained"], changes[0]["lost"], changes[0]["owned"])
