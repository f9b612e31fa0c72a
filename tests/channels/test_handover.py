"""A unit's outbox store handed from one outbox to another: what the first sent is not sent again.

A partitioned daemon keeps one store per partition beside the partition's
snapshot; when the partition moves, the next owner's outbox adopts the store.
Here two ``Outbox`` objects stand for two instances: the second adopts the
store after the first released it, or after the first "crashed" (its files
as they were on disk while it ran, never released), or not at all while the
first still holds its lock.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from kairos.adapters import ChannelLimits, Outbox, SendContext, StoreBusy
from kairos.adapters import _outbox
from kairos.adapters._ledger import Ledger
from tests.channels.test_outbox import OLD, Recorder, config, ctx, dead_letters, old, run_until

pytestmark = pytest.mark.anyio

FAR = 2**50  #: a send_at no run here reaches (the adopter runs on a clock past it)


def store(tmp_path: Path) -> Path:
    return tmp_path / "partitions" / "p-0001.outbox"


def instance(tmp_path: Path, name: str, channel: Recorder, **kw: object) -> Outbox:
    """An outbox of its own (its own directory, as an instance's state_dir), on the clock of ``kw``."""
    clock = kw.pop("clock", None)
    cfg = config(tmp_path / name, **kw)
    return Outbox(cfg, {"rec": channel}, **({"clock": clock} if clock else {}))  # type: ignore[arg-type]


async def test_a_released_store_adopted_elsewhere_sends_nothing_delivered_again_and_delivers_what_was_pending(
        tmp_path: Path) -> None:
    first, second = Recorder(), Recorder()
    a = instance(tmp_path, "a", first)
    a.adopt("p-0001", store(tmp_path))
    delivered, waiting = [ctx(i) for i in range(3)], [ctx(i, send_at=FAR) for i in range(3, 5)]

    async def work_then_release(ob: Outbox) -> None:
        for c in delivered + waiting:
            ob.submit(c, store="p-0001")
        await ob.wait_for(lambda s: s.delivered == 3)
        assert 2 == ob.statistics().pending  # summed over the stores
        await ob.release("p-0001")  # the partition is revoked
        assert ([""], 0) == (ob.stores(), ob.statistics().pending)

    await run_until(a, work_then_release)
    b = instance(tmp_path, "b", second, clock=lambda: 2**51)
    b.adopt("p-0001", store(tmp_path))

    async def take_over(ob: Outbox) -> None:
        # the new owner decides the events after the snapshot again: the same sends, the same ids
        assert [False] * 5 == [ob.submit(c, store="p-0001") for c in delivered + waiting]
        await ob.wait_idle()

    await run_until(b, take_over)
    assert [c.id for c in delivered] == first.ids()
    assert sorted(c.id for c in waiting) == sorted(second.ids())
    assert (0, 5) == (b.statistics().submitted, b.statistics().duplicates)


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_store_left_by_a_crashed_owner_is_adopted_and_only_its_send_in_doubt_may_repeat(
        tmp_path: Path, idempotent: bool) -> None:
    """The first owner dies with one send in the channel's hands (its ``A`` record durable, no outcome),
    others delivered or waiting: its files are taken as they are on disk then, lock file and all."""
    hanging = Recorder(idempotent=idempotent)
    a = instance(tmp_path, "a", hanging)
    a.adopt("p-0001", tmp_path / "live")
    delivered, waiting = [ctx(i) for i in range(2)], [ctx(i, send_at=FAR) for i in range(3, 5)]
    in_doubt = ctx(2)

    async def crash_mid_send(ob: Outbox) -> None:
        for c in delivered + waiting:
            ob.submit(c, store="p-0001")
        await ob.wait_for(lambda s: s.delivered == 2)
        hanging.stall()
        ob.submit(in_doubt, store="p-0001")
        await ob.wait_for(lambda s: s.in_flight == 1)
        while hanging.entered < 3:  # the channel has it: the attempt is on disk, its outcome is not
            await anyio.wait_all_tasks_blocked()
        await ob.durable(ob.mark())
        shutil.copytree(tmp_path / "live", store(tmp_path))  # what the disk holds at the crash
        hanging.gate.set()

    await run_until(a, crash_mid_send)
    later = Recorder(idempotent=idempotent)
    b = instance(tmp_path, "b", later, clock=lambda: 2**51)
    b.adopt("p-0001", store(tmp_path))

    async def take_over(ob: Outbox) -> None:
        assert [False] * 5 == [ob.submit(c, store="p-0001") for c in [*delivered, in_doubt, *waiting]]
        await ob.wait_idle()

    await run_until(b, take_over)
    assert [c.id for c in delivered] == hanging.ids()[:2]
    retried = [in_doubt.id] if idempotent else []
    assert sorted([c.id for c in waiting] + retried) == sorted(later.ids())
    letters = dead_letters(tmp_path / "b")
    assert ([] if idempotent else [in_doubt.id]) == [d["id"] for d in letters]


async def test_a_store_whose_lock_is_held_cannot_be_adopted(tmp_path: Path) -> None:
    path = store(tmp_path)
    path.mkdir(parents=True)
    holder = subprocess.Popen(  # another instance that owns the partition (or has not finished releasing it)
        [sys.executable, "-c", "import fcntl, os, sys\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.lockf(fd, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\nsys.stdin.read()\n", str(path / "lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and b"locked\n" == holder.stdout.readline()
        b = instance(tmp_path, "b", Recorder(), adopt_wait_s=0.1)
        with pytest.raises(StoreBusy):
            b.adopt("p-0001", path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    b.adopt("p-0001", path)  # the holder is gone (exited, or killed: the kernel frees its lock)
    # and a second outbox of this very process is refused too: a POSIX lock would not stop it by itself
    with pytest.raises(StoreBusy):
        instance(tmp_path, "c", Recorder(), adopt_wait_s=0.1).adopt("p-0001", path)
    await b.release("p-0001")
    instance(tmp_path, "c", Recorder(), adopt_wait_s=0.1).adopt("p-0001", path)


async def test_each_store_forgets_below_its_own_horizon_and_keeps_its_floor_when_handed_on(tmp_path: Path) -> None:
    """::

        store        trigger ts (+ OLD)     horizon   floor (horizon - 1000)
        p-0000       0 1000 2000 3000       2500      1500: 0 and 1000 forgotten
        p-0001       0 1000 2000 3000       none      0: nothing forgotten
    """
    parts = {name: tmp_path / "partitions" / f"{name}.outbox" for name in ("p-0000", "p-0001")}
    a = instance(tmp_path, "a", Recorder(), compact_bytes=1, retention_ms=1000)
    for name, path in parts.items():
        a.adopt(name, path)
    sends = {name: [old(10 * k + i, OLD + 1000 * i) for i in range(4)] for k, name in enumerate(parts)}

    async def body(ob: Outbox) -> None:
        for name, batch in sends.items():
            for c in batch:
                ob.submit(c, store=name)
        await ob.wait_idle()
        ob.advance_horizon(OLD + 2500, store="p-0000")
        for k, name in enumerate(parts):  # one more flush in each: a compaction after the horizon came
            ob.submit(old(90 + k, OLD + 9000), store=name)
        await ob.wait_idle()
        assert (OLD + 1500, 0) == (ob.floor_of("p-0000"), ob.floor_of("p-0001"))
        for name in parts:
            await ob.release(name)

    await run_until(a, body)
    ids = {name: {line.split("\t")[2] for line in (path / "ledger.log").read_text().splitlines()
                  if line.startswith("D")} for name, path in parts.items()}
    assert {c.id for c in sends["p-0000"][2:]} | {old(90, OLD + 9000).id} == ids["p-0000"]
    assert {c.id for c in sends["p-0001"]} | {old(91, OLD + 9000).id} == ids["p-0001"]
    # the next owner finds the floor with the store: a forgotten id is refused, never sent
    later = Recorder()
    b = instance(tmp_path, "b", later)
    b.adopt("p-0000", parts["p-0000"])

    async def resubmit(ob: Outbox) -> None:
        assert OLD + 1500 == ob.floor_of("p-0000")
        assert [False] * 4 == [ob.submit(c, store="p-0000") for c in sends["p-0000"]]
        await ob.wait_idle()

    await run_until(b, resubmit)
    assert ([], 2) == (later.ids(), b.statistics().expired)


async def test_an_upgraded_instance_never_sends_again_what_its_one_outbox_sent_before_partitions_had_stores(
        tmp_path: Path) -> None:
    """Before stores, a partitioned daemon's sends were all in its one outbox directory: after the upgrade
    that default store still answers for them when a partition's store is asked for the same id."""
    before = Recorder()
    sent, waiting = ctx(1), ctx(2, send_at=FAR)

    async def old_outbox(ob: Outbox) -> None:
        ob.submit(sent)
        ob.submit(waiting)
        await ob.wait_for(lambda s: s.delivered == 1)

    await run_until(instance(tmp_path, "a", before), old_outbox)
    after = Recorder()
    upgraded = instance(tmp_path, "a", after, clock=lambda: 2**51)
    upgraded.adopt("p-0001", store(tmp_path))

    async def redecided(ob: Outbox) -> None:
        assert [False, False] == [ob.submit(c, store="p-0001") for c in (sent, waiting)]
        await ob.wait_idle()

    await run_until(upgraded, redecided)
    assert ([sent.id], [waiting.id]) == (before.ids(), after.ids())


async def test_an_adopter_assigned_while_the_owner_still_releases_waits_and_then_takes_the_store(
        tmp_path: Path) -> None:
    """A rebalance can give the partition to B before A has finished releasing it: B waits for the lock
    (without blocking its event loop: A's release runs meanwhile), then finds what A left."""
    first, second = Recorder(), Recorder()
    a = instance(tmp_path, "a", first)
    b = instance(tmp_path, "b", second, clock=lambda: 2**51)
    waiting = ctx(1, send_at=FAR)

    async def both(ob: Outbox) -> None:
        ob.submit(waiting, store="p-0001")
        await ob.durable(ob.mark())
        async with anyio.create_task_group() as tg:
            await tg.start(b.run)
            trying, adopted = anyio.Event(), anyio.Event()

            async def take() -> None:
                trying.set()  # adopt_when_free tries the lock before its first await
                await b.adopt_when_free("p-0001", store(tmp_path))
                adopted.set()

            tg.start_soon(take)
            await trying.wait()
            await anyio.lowlevel.checkpoint()  # B has tried (and is polling: never "all tasks blocked")
            assert not adopted.is_set()  # A still holds it
            await ob.release("p-0001")
            await adopted.wait()
            await b.wait_idle()
            b.stop()

    a.adopt("p-0001", store(tmp_path))
    await run_until(a, both)
    assert ([], [waiting.id]) == (first.ids(), second.ids())


async def test_a_store_adopted_while_running_is_read_off_the_event_loop_so_other_work_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition assigned while running may bring a long ledger: reading it must not stall the loop (the
    other partitions' events, the consumer's heartbeats). The reader here waits until the loop has shown it
    still runs; read on the loop, it would wait for nothing (and give up after its bound)."""
    waiting = ctx(1, send_at=FAR)
    a = instance(tmp_path, "a", Recorder())
    a.adopt("p-0001", store(tmp_path))
    await run_until(a, lambda ob: _submit_durable(ob, waiting))
    reading, loop_ran = threading.Event(), threading.Event()
    ran_while_reading: list[bool] = []
    read = _outbox.read_ledger

    def slow_read(path: Path) -> Ledger:
        if Path(path).parent != store(tmp_path):  # the instance's own store, read at its start
            return read(path)
        reading.set()
        # set by a task on the loop: only if the loop runs while the store is read (the bound: for the failure)
        ran_while_reading.append(loop_ran.wait(5))
        return read(path)

    monkeypatch.setattr(_outbox, "read_ledger", slow_read)
    second = Recorder()
    b = instance(tmp_path, "b", second, clock=lambda: 2**51)

    async def adopt_while_the_loop_works(ob: Outbox) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ob.adopt_when_free, "p-0001", store(tmp_path))
            await anyio.to_thread.run_sync(reading.wait)
            loop_ran.set()  # this task ran while the store was being read
        assert ["", "p-0001"] == ob.stores()
        await ob.wait_idle()

    await run_until(b, adopt_while_the_loop_works)
    assert ([True], [waiting.id]) == (ran_while_reading, second.ids())


async def _submit_durable(ob: Outbox, send: SendContext) -> None:
    ob.submit(send, store="p-0001")
    await ob.durable(ob.mark())


async def test_a_store_being_adopted_cannot_be_adopted_a_second_time_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While its files are read off the loop the store is already taken: a second adopt is refused at once
    (it would otherwise wait out ``adopt_wait_s`` on a lock this very process holds)."""
    reading, release = threading.Event(), threading.Event()
    read = _outbox.read_ledger

    def gated_read(path: Path) -> Ledger:
        if Path(path).parent != store(tmp_path):  # the instance's own store, read at its start
            return read(path)
        reading.set()
        release.wait(5)  # set once the second adopt was refused (the bound: for a failure)
        return read(path)

    monkeypatch.setattr(_outbox, "read_ledger", gated_read)
    b = instance(tmp_path, "b", Recorder())

    async def adopt_twice(ob: Outbox) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ob.adopt_when_free, "p-0001", store(tmp_path))
            await anyio.to_thread.run_sync(reading.wait)
            with pytest.raises(ValueError, match="already open"):
                await ob.adopt_when_free("p-0001", store(tmp_path))
            with pytest.raises(ValueError, match="already open"):
                ob.adopt("p-0001", store(tmp_path))
            release.set()
        assert ["", "p-0001"] == ob.stores()

    await run_until(b, adopt_twice)


async def test_spilled_sends_of_several_stores_come_back_in_order_and_a_released_store_takes_its_own_along(
        tmp_path: Path) -> None:
    """Memory is shared by the stores: while the channel stalls, each store's sends beyond it wait in its
    journal; the store released meanwhile leaves its spilled sends in its journal for the next owner, and
    the other's all come back, in its order."""
    channel = Recorder()
    ob = instance(tmp_path, "a", channel, memory_limit=10, channels={"rec": ChannelLimits(concurrency=1)})
    other = tmp_path / "partitions" / "p-0002.outbox"
    ob.adopt("p-0001", store(tmp_path))
    ob.adopt("p-0002", other)
    kept, left = [ctx(i) for i in range(30)], [ctx(100 + i) for i in range(30)]

    async def body(ob: Outbox) -> None:
        channel.stall()
        for a, b in zip(kept, left, strict=True):
            ob.submit(a, store="p-0001")
            ob.submit(b, store="p-0002")
        assert (10, 50) == (ob.statistics().in_memory, ob.statistics().spilled)
        released = anyio.Event()

        async def release() -> None:
            await ob.release("p-0002", wait_s=0)
            released.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(release)
            channel.gate.set()
        await released.wait()
        stats = await ob.wait_idle()
        assert (0, 0) == (stats.spilled, stats.in_memory)

    await run_until(ob, body)
    from_kept = [i for i in channel.ids() if i in {c.id for c in kept}]
    assert [c.id for c in kept] == from_kept
    assert len(channel.ids()) < 60  # some of p-0002's waited in its journal when it left
