"""Partitions: instances own disjoint partitions of a log keyed by msisdn, and a partition's state moves with it.

The embedded partitioned log (a folder of ``p-NNNN.jsonl`` files, split by
Kafka's partitioner over the msisdn) runs the same ownership and offset logic
as the Kafka source, so it is tested here with real processes and no broker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import msgspec

from kairos._config import load_config
from kairos._daemon import Daemon
from kairos._units import UnitState, unit_name
from kairos.adapters import FilePosition
from kairos.adapters._partitions import partition_file, partition_of, split
from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_crash import SCENARIOS, _content, recorded_stream, reference, replayed
from tests.daemon.test_crash import sentinels as crash_sentinels
from kairos.engine import decode_snapshot

COUNT = 4


def partitioned_config(folder: Path, shared: Path, owned: list[int]) -> Path:
    src = (f'[[sources]]\nkind = "partitioned"\npath = "../log"\npartitions = {COUNT}\nowned = {owned}\n'
           "poll_ms = 20\n")
    config = write_config(folder, SCENARIOS, sources=src, interval_s=0.2, reference="../ref",
                          extra='[reload]\nwatch = false\n')
    text = config.read_text().replace("[snapshot]\n", f'[snapshot]\npartitions_dir = "{shared}"\n')
    config.write_text(text)
    return config


def sentinels(t: int) -> list[bytes]:
    return [x.encode() for x in crash_sentinels(t, COUNT)]


def test_the_partition_of_a_subscriber_is_kafkas_default_partitioner_over_the_msisdn():
    # murmur2 reference values from Kafka's own tests, made positive, modulo the partition count
    assert [(-973932308 & 0x7FFFFFFF) % 7, (479470107 & 0x7FFFFFFF) % 7] == [
        partition_of("21", 7), partition_of("abc", 7)
    ]


def test_the_partitioners_murmur2_agrees_with_the_kafka_clients_on_keys_of_every_length_and_byte():
    import random

    from aiokafka.partitioner import murmur2 as kafka_clients

    from kairos.adapters._partitions import murmur2

    rng = random.Random(17)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(80) for _ in range(20)]
    keys += [str(n).encode() for n in range(13_600_000_000, 13_600_002_000)]
    assert [murmur2(k) for k in keys] == [kafka_clients(k) for k in keys]


def test_two_instances_owning_half_the_partitions_each_together_send_what_one_replay_sends(tmp_path):
    reference(tmp_path)
    stream = recorded_stream(tmp_path / "all.jsonl", seed=11, events=6_000, subscribers=200)
    last = json.loads(stream[-1])["ts"]
    split([x.encode() for x in stream] + sentinels(last + 1), tmp_path / "log", COUNT)
    merged = tmp_path / "replay"
    (merged / "in").mkdir(parents=True)
    (merged / "scenarios").mkdir()
    (merged / "scenarios" / "s.kairos").write_text(SCENARIOS)
    (merged / "ref").symlink_to(tmp_path / "ref")
    (merged / "in" / "events.jsonl").write_bytes(b"".join(x.encode() for x in stream) + b"".join(sentinels(last + 1)))
    expected = sorted(map(_content, replayed(merged)))

    shared = tmp_path / "partitions"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    procs = [start(partitioned_config(a, shared, [0, 1])), start(partitioned_config(b, shared, [2, 3]))]
    try:
        wait_for(lambda: len(sends(a)) + len(sends(b)) >= len(expected), timeout=60, what="every send")
    finally:
        assert [0, 0] == [stop(p) for p in procs]
    got_a, got_b = sorted(map(_content, sends(a))), sorted(map(_content, sends(b)))
    assert {partition_of(s[2], COUNT) for s in got_a} <= {0, 1}
    assert {partition_of(s[2], COUNT) for s in got_b} <= {2, 3}
    assert expected == sorted(got_a + got_b)
    assert sorted(p.name for p in shared.glob("p-*.bin")) == [f"p-{p:04d}.bin" for p in range(COUNT)]


def test_a_partition_handed_over_continues_its_state_in_the_new_owner(tmp_path):
    reference(tmp_path)
    shared = tmp_path / "partitions"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    now = time.time_ns() // 1_000_000
    m = next(f"1390000{i:04d}" for i in range(10_000) if partition_of(f"1390000{i:04d}", COUNT) == 3)
    review = {"type": "dpi", "ts": now, "msisdn": m, "host": "handed.cn", "category": "review"}
    split([json.dumps(review).encode()], tmp_path / "log", COUNT)
    proc = start(partitioned_config(b, shared, [2, 3]))
    wait_for(lambda: logged(b, "ready"), what="instance b")
    wait_for(lambda: partition_file(tmp_path / "log", 3).exists() and logged(b, "snapshot taken"), what="b's snapshot")
    assert 0 == stop(proc)  # b hands partitions 2 and 3 back: its final snapshot holds the partial match

    shop = {"type": "dpi", "ts": now + 1, "msisdn": m, "host": "x.cn", "category": "shop"}
    split([json.dumps(shop).encode()], tmp_path / "log", COUNT)
    proc = start(partitioned_config(a, shared, [0, 1, 2, 3]))  # a takes every partition
    try:
        wait_for(lambda: sends(a), what="the send completing b's match")
    finally:
        assert 0 == stop(proc)
    assert [(m, "review", {"site": "handed.cn"})] == [(s["msisdn"], s["scenario"], s["params"]) for s in sends(a)]
    assert [] == sends(b)


def test_ingest_into_a_partitioned_instance_takes_its_partitions_and_a_reload_reaches_every_unit(tmp_path):
    import httpx

    reference(tmp_path)
    shared = tmp_path / "partitions"
    a = tmp_path / "a"
    a.mkdir()
    (tmp_path / "log").mkdir()
    config = partitioned_config(a, shared, [0, 1])
    config.write_text(config.read_text() + '[http]\nlisten = "127.0.0.1:0"\nadmin_token = "t"\n')
    now = time.time_ns() // 1_000_000
    first = {partition_of(m, COUNT): m for m in reversed([f"1370000{i:04d}" for i in range(200)])}
    mine, theirs = [first[0], first[1]], first[2]
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(a, "http listening"), what="the HTTP server")
        url = f"http://127.0.0.1:{listening['port']}"
        news = 'scenario news when dpi where category == "news" then sms "n" end\n'
        (a / "scenarios" / "news.kairos").write_text(news)
        r = httpx.post(url + "/admin/reload", headers={"Authorization": "Bearer t"})
        assert (200, ["news"]) == (r.status_code, r.json()["published"])
        body = "\n".join(json.dumps({"type": "dpi", "ts": now, "msisdn": m, "host": "h", "category": "news"})
                         for m in [*mine, theirs])
        r = httpx.post(url + "/ingest", content=body)
        assert (202, {"accepted": 2, "errors": 0, "not_owned": 1, "too_far_ahead": 0}) == (r.status_code, r.json())
        wait_for(lambda: len(sends(a)) == 2, what="a send in each owned partition")
    finally:
        assert 0 == stop(proc)
    assert sorted(mine) == sorted(s["msisdn"] for s in sends(a))


def test_the_positions_handed_on_after_a_snapshot_are_those_it_captured_not_those_read_while_it_was_written(tmp_path):
    """A Kafka commit follows each published snapshot; events read while the snapshot is being written
    must not move the committed offset past the state saved (the offset would skip them after a crash)."""
    reference(tmp_path)
    config = load_config(partitioned_config(tmp_path / "inst", tmp_path / "shared", [0]))
    name = unit_name(0)
    block = b'{"type": "topup", "ts": 1000, "msisdn": "1", "amount": 20}\n'

    async def main() -> tuple[list[dict], FilePosition]:
        daemon = Daemon(config)
        handed: list[dict] = []

        async def hook(positions: dict) -> None:
            handed.append(positions)

        daemon.after_snapshot.append(hook)
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.outbox.run)
            # the snapshot waits, after its capture, for the outbox to make its sends durable: held there
            captured, go_on, durable = anyio.Event(), anyio.Event(), daemon.outbox.durable

            async def held(mark: int) -> None:
                captured.set()
                await go_on.wait()
                await durable(mark)

            daemon.outbox.durable = held  # type: ignore[method-assign]
            daemon.ingest("log", block, FilePosition("p", 0, 0, 100), name)
            tg.start_soon(lambda: daemon.snapshot("test", fork=False))
            await captured.wait()
            daemon.ingest("log", block, FilePosition("p", 0, 0, 200), name)  # read while it is being published
            go_on.set()
            with anyio.fail_after(30):
                while not handed:
                    await anyio.sleep(0.01)
            daemon.outbox.stop()
        saved = decode_snapshot((tmp_path / "shared" / f"{name}.bin").read_bytes())
        return handed, msgspec.msgpack.decode(saved.extra, type=UnitState).positions["log"]

    handed, saved = anyio.run(main)
    assert 100 == saved.offset
    assert [{name: {"log": saved}}] == handed
