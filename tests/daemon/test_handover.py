"""Exactly once across a handover: partitions move from one instance to another, and no send repeats or is lost.

Instance A owns every partition of an embedded partitioned log (the same
ownership logic as a Kafka consumer group) and delivers through rate-limited
file channels while the log is being written; it is stopped (SIGTERM, while
instance B already waits for the partitions) or killed (SIGKILL) once its
channels wrote a share of the sends. B — its own state_dir, the same
partitions_dir — takes every partition over and runs to the end. Together
their channel files must hold exactly what one ``kairos replay`` of the log
decides, each send once; the only repeat allowed is a send A had in a
channel's hands when it was killed (the file channel is idempotent, so the
outbox retries it). The fault point is A's progress, never a time.
"""

from __future__ import annotations

import collections
import json
import os
import random
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from kairos._config import StartError, load_config
from kairos._daemon import Daemon
from kairos.adapters import read_ledger
from tests.daemon.support import (
    kill,
    log_offset,
    logged,
    sends,
    start,
    stop,
    wait_for,
    wait_until_settled,
    write_config,
)
from tests.daemon.test_crash import SCENARIOS, Feeder, _content, recorded_stream, reference, replayed, splitter
from tests.daemon.test_crash import sentinels as crash_sentinels
from tests.daemon.test_partitions import partitioned_config

COUNT = 4
CHANNELS = ("sms", "popup", "call")


def instance_config(folder: Path, shared: Path) -> Path:
    """An instance owning every partition of ../log, its snapshots and outbox stores in ``shared``."""
    folder.mkdir()
    src = (f'[[sources]]\nkind = "partitioned"\npath = "../log"\npartitions = {COUNT}\n'
           f"owned = {list(range(COUNT))}\npoll_ms = 20\n")
    # B waits for A's locks through A's whole shutdown, however slow the machine: a generous bound
    limits = "[outbox]\nadopt_wait_s = 600\n" + "".join(f"[outbox.channels.{c}]\nrate = 150\n" for c in CHANNELS)
    config = write_config(folder, SCENARIOS, sources=src, interval_s=0.15, reference="../ref",
                          extra="[reload]\nwatch = false\n" + limits)
    text = config.read_text().replace("[snapshot]\n", f'[snapshot]\npartitions_dir = "{shared}"\n')
    # every delivery is written, repeats included: the files count what the outboxes sent
    config.write_text(text.replace("fsync = false\n", "fsync = false\ndedupe = false\n"))
    return config


def expected_sends(tmp_path: Path, stream: list[str]) -> list[tuple]:
    merged = tmp_path / "replay"
    (merged / "in").mkdir(parents=True)
    (merged / "scenarios").mkdir()
    (merged / "scenarios" / "s.kairos").write_text(SCENARIOS)
    (merged / "ref").symlink_to(tmp_path / "ref")
    (merged / "in" / "events.jsonl").write_text("".join(stream))
    return sorted(map(_content, replayed(merged)))


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_partitions_handed_to_another_instance_send_what_one_replay_sends_each_once(tmp_path: Path, how: str) -> None:
    seed = int(os.environ.get("KAIROS_CRASH_SEED", random.randrange(1 << 30)))
    print(f"KAIROS_CRASH_SEED={seed}")
    rnd = random.Random(seed)
    reference(tmp_path)
    stream = recorded_stream(tmp_path / "all.jsonl", seed=seed, events=30_000, subscribers=300)
    stream = stream[:-1] + crash_sentinels(json.loads(stream[-1])["ts"], COUNT)
    expected = expected_sends(tmp_path, stream)
    assert len(expected) > 300, f"the stream must decide enough sends for the handover to land among them (seed {seed})"
    shared = tmp_path / "partitions"
    a_config, b_config = instance_config(tmp_path / "a", shared), instance_config(tmp_path / "b", shared)
    a, b = a_config.parent, b_config.parent
    (tmp_path / "log").mkdir()
    feeder = Feeder(splitter(tmp_path / "log", COUNT), stream, block=500, every_s=0.05)
    feeder.gate.set()

    proc_a = start(a_config)
    feeder.start()
    share = rnd.randrange(len(expected) // 5, len(expected) // 2)
    proc_b = None
    try:
        wait_for(lambda: len(sends(a, CHANNELS)) >= share, timeout=120, what=f"{share} sends by A (seed {seed})")
        if how == "sigterm":
            proc_b = start(b_config)  # B is given the partitions while A still holds them: it waits
            wait_for(lambda: logged(b, "outbox store locked by its previous owner: waiting for it to release"),
                     timeout=60, what=f"B waiting for A's partitions (seed {seed})")
            assert proc_b.poll() is None and not logged(b, "ready")
            assert 0 == stop(proc_a), f"seed {seed}"
            doubtful = 0
        else:
            kill(proc_a)
            doubtful = sum(len(read_ledger(p / "ledger.log").in_doubt) for p in shared.glob("p-*.outbox"))
            proc_b = start(b_config)
        feeder.join(timeout=300)
        assert feeder.done.is_set(), f"the feeder did not finish (seed {seed})"
        wait_until_settled(b, proc_b, log_offset(b), what=f"B to settle (seed {seed})")
    finally:
        if proc_a.poll() is None:
            kill(proc_a)
        if proc_b is not None:
            assert 0 == stop(proc_b), f"seed {seed}"

    by_a, by_b = sends(a, CHANNELS), sends(b, CHANNELS)
    both = by_a + by_b
    per_id = collections.Counter(s["id"] for s in both)
    repeats = len(both) - len(per_id)
    print(f"{len(by_a)} sends by A, {len(by_b)} by B, {repeats} repeats, {doubtful} in doubt at the {how}")
    assert expected == sorted(set(map(_content, both))), f"lost or spurious sends (seed {seed})"
    assert len(per_id) == len(expected), f"one id delivered with different contents (seed {seed})"
    assert repeats <= doubtful, f"{repeats} repeats, only {doubtful} sends were in doubt at the {how} (seed {seed})"
    assert by_a and by_b, f"the handover must land among the sends (seed {seed})"
    assert len(logged(b, "outbox store opened")) >= COUNT  # B adopted every partition's store


def _daemon_owning(tmp_path: Path, owned: list[int]) -> Daemon:
    """An in-process daemon owning ``owned`` of a partitioned log, its snapshots and stores in tmp/shared."""
    reference(tmp_path)
    (tmp_path / "log").mkdir(exist_ok=True)
    return Daemon(load_config(partitioned_config(tmp_path / "inst", tmp_path / "shared", owned)))


def test_a_revoked_partition_is_never_published_again_by_its_old_owner(tmp_path: Path) -> None:
    d = _daemon_owning(tmp_path, [0, 1])
    events: list[str] = []
    publish = d.files._publish

    def traced(paths: list[Path]) -> None:
        events.append("publish " + ",".join(p.name for p in paths))
        publish(paths)

    d.files._publish = traced  # type: ignore[method-assign]

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(d.outbox.run)

            async def revoke() -> None:
                await d.snapshot("revoked", fork=False, units=["p-0000"])
                await d.close_unit("p-0000")
                events.append("released p-0000")

            tg.start_soon(revoke)
            await anyio.lowlevel.checkpoint()  # the revocation snapshot is under way first
            await d.snapshot("periodic", fork=False)  # asked for every unit while p-0000 is being revoked
            while "released p-0000" not in events:
                await anyio.lowlevel.checkpoint()
            await d.snapshot("periodic", fork=False)
            d.outbox.stop()

    anyio.run(main)
    released = events.index("released p-0000")
    assert events[0] == "publish p-0000.bin"
    # once released, the partition's file is the next owner's: later snapshots (there is one) leave it alone
    assert events[released + 1:] and not [e for e in events[released + 1:] if "p-0000.bin" in e], events


def test_a_partition_whose_state_cannot_be_loaded_leaves_its_outbox_store_to_the_next_owner(tmp_path: Path) -> None:
    d = _daemon_owning(tmp_path, [0])
    (tmp_path / "shared").mkdir(exist_ok=True)
    (tmp_path / "shared" / "p-0001.bin").write_bytes(b"not a snapshot")

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(d.outbox.run)
            with pytest.raises(StartError):
                await d.adopt_unit("p-0001")
            assert "p-0001" not in d.units
            assert "p-0001" not in d.outbox.stores()  # released: another instance can adopt it at once
            d.outbox.stop()

    anyio.run(main)
