"""``kairos produce``: a file of events on a topic, each subscriber's events in the partition the daemon expects."""

from __future__ import annotations

import json

import anyio
from aiokafka import AIOKafkaConsumer, TopicPartition

from kairos._cli import main
from kairos.adapters import partition_of
from tests.conftest import unique_topic


async def _read(bootstrap: str, topic: str, partitions: int, count: int) -> list[tuple[int, bytes, bytes]]:
    """The first ``count`` records of the topic as (partition, key, value), read by partition (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        out: list[tuple[int, bytes, bytes]] = []
        with anyio.fail_after(30):
            while len(out) < count:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    out += [(tp.partition, r.key, r.value) for r in records]
        return out
    finally:
        await consumer.stop()


def test_produce_creates_the_topic_and_keys_each_line_by_msisdn_into_the_daemons_partition(tmp_path, kafka, capsys):
    topic = unique_topic()
    good = [json.dumps({"type": "topup", "ts": 1_700_000_000_000 + i, "msisdn": f"13800{i % 37:05d}", "amount": 5})
            for i in range(300)]
    lines = good[:10] + ['{"type": "topup", "msisdn": 13800000001}', "not json", "", "[1, 2]"] + good[10:]
    (tmp_path / "day.jsonl").write_text("\n".join(lines) + "\n")

    status = main(["produce", str(tmp_path / "day.jsonl"), "--bootstrap", kafka, "--topic", topic,
                   "--partitions", "8"])

    err = capsys.readouterr().err
    assert 3 == status  # produced, but lines were skipped
    assert ["line 11:", "line 12:", "line 14:"] == [x.split(" ", 2)[0] + " " + x.split(" ", 2)[1]
                                                    for x in err.splitlines() if x.startswith("line ")]
    assert "13800000001" not in err  # a refused line's number is never echoed
    assert "300 records to" in err and "created with 8 partitions" in err and "3 malformed lines skipped" in err
    records = anyio.run(_read, kafka, topic, 8, 300)
    assert sorted(good) == sorted(v.decode() for _, _, v in records)
    for partition, key, value in records:
        msisdn = json.loads(value)["msisdn"]
        assert (key.decode(), partition) == (msisdn, partition_of(msisdn, 8))
    # per subscriber, the file's order is kept
    by_partition = [v.decode() for _, _, v in sorted(records, key=lambda r: r[0])]
    for msisdn in {json.loads(x)["msisdn"] for x in good}:
        assert [x for x in good if json.loads(x)["msisdn"] == msisdn] == [
            x for x in by_partition if json.loads(x)["msisdn"] == msisdn]


def test_produce_refuses_a_missing_topic_without_a_count_and_an_existing_topic_with_another(tmp_path, kafka, capsys):
    topic = unique_topic()
    (tmp_path / "e.jsonl").write_text('{"type": "topup", "ts": 1, "msisdn": "1", "amount": 5}\n')
    args = ["produce", str(tmp_path / "e.jsonl"), "--bootstrap", kafka, "--topic", topic]

    assert 2 == main(args)
    assert f"topic '{topic}' does not exist: give --partitions N" in capsys.readouterr().err
    assert 0 == main([*args, "--partitions", "2"])
    assert 0 == main(args)  # an existing topic: its own count
    assert "has 2 partitions" in capsys.readouterr().err
    assert 2 == main([*args, "--partitions", "3"])
    assert "has 2 partitions, not 3" in capsys.readouterr().err
