"""The outbox: each send delivered once (also across restarts), retries with backoff, limits, dead letters, spill."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest

from kairos.adapters import Channel, Outcome, SendContext, TemplateCatalog, wall_ms
from kairos.adapters import ChannelLimits, Outbox, OutboxConfig
from kairos.adapters._outbox import _Store

pytestmark = pytest.mark.anyio

EXAMPLE_TEMPLATES = Path(__file__).resolve().parents[2] / "kairos" / "adapters" / "templates.example.toml"


class Recorder(Channel):
    """A channel that records what it is sent and answers from a script (a test double for the outbox's tests)."""

    def __init__(self, script: Callable[[SendContext], Outcome] | None = None, *, idempotent: bool = False) -> None:
        super().__init__(None, name="rec")
        self.sent: list[SendContext] = []
        self.script = script or (lambda ctx: Outcome.delivered())
        self.gate = anyio.Event()
        self.gate.set()
        self.active = 0
        self.max_active = 0
        self.entered = 0
        self.idempotent = idempotent  # type: ignore[misc]

    async def send(self, ctx: SendContext) -> Outcome:
        self.entered += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self.gate.wait()
            self.sent.append(ctx)
            return self.script(ctx)
        finally:
            self.active -= 1

    def stall(self) -> None:
        self.gate = anyio.Event()

    def ids(self) -> list[str]:
        return [c.id for c in self.sent]


#: the sends' trigger time: an hour ago (the outbox's memory does not depend on it: see the tests
#: of old trigger times below)
T0 = wall_ms() - 3_600_000
#: eleven days ago: older than the default ``retention_ms`` (7 d), as a backlog or a re-read topic is
OLD = wall_ms() - 11 * 86_400_000


def ctx(n: int, *, channel: str = "rec", send_at: int = 0, template: str = "t", **params: object) -> SendContext:
    return SendContext(
        id=f"s:1380000{n:04d}:{T0 + n}",
        scenario="s",
        msisdn=f"1380000{n:04d}",
        ts=T0 + n,
        send_at=send_at,
        channel=channel,
        template=template,
        params=dict(params),
        text="hello" if template == "t" else "",
    )


def config(tmp_path: Path, **kw: object) -> OutboxConfig:
    kw.setdefault("backoff_base_ms", 10)
    kw.setdefault("backoff_max_ms", 40)
    return OutboxConfig(directory=str(tmp_path / "outbox"), **kw)  # type: ignore[arg-type]


async def run_until(outbox: Outbox, body: Callable[[Outbox], object]) -> None:
    """Run the outbox, await ``body``, stop it (graceful)."""
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        with anyio.fail_after(20):
            await body(outbox)  # type: ignore[misc]
        outbox.stop()


def dead_letters(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "outbox" / "dead_letter.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_each_submitted_send_is_delivered_once_and_a_repeated_id_is_ignored(tmp_path: Path) -> None:
    channel = Recorder()
    outbox = Outbox(config(tmp_path), {"rec": channel})

    async def body(ob: Outbox) -> None:
        accepted = [ob.submit(ctx(i)) for i in range(5)] + [ob.submit(ctx(2))]
        assert [True] * 5 + [False] == accepted
        await ob.wait_idle()
        assert False is ob.submit(ctx(3))  # delivered ids are refused too

    await run_until(outbox, body)
    assert sorted(ctx(i).id for i in range(5)) == sorted(channel.ids())
    stats = outbox.statistics()
    assert (5, 2, 5, 0) == (stats.submitted, stats.duplicates, stats.delivered, stats.pending)


async def test_a_delivered_id_is_never_sent_again_after_a_restart(tmp_path: Path) -> None:
    first = Recorder()
    await run_until(Outbox(config(tmp_path), {"rec": first}), lambda ob: _submit_and_idle(ob, range(3)))
    second = Recorder()
    outbox = Outbox(config(tmp_path), {"rec": second})
    await run_until(outbox, lambda ob: _submit_and_idle(ob, range(5)))
    assert [ctx(i).id for i in range(3)] == first.ids()
    assert [ctx(3).id, ctx(4).id] == second.ids()
    assert 3 == outbox.statistics().duplicates


async def _submit_and_idle(ob: Outbox, numbers: range) -> None:
    for i in numbers:
        ob.submit(ctx(i))
    await ob.wait_idle()


async def test_pending_sends_survive_a_restart_and_are_delivered_by_the_next_run(tmp_path: Path) -> None:
    stalled = Recorder()
    stalled.stall()

    async def submit_then_stop(ob: Outbox) -> None:
        for i in range(4):
            ob.submit(ctx(i, send_at=2**50))  # far future: nothing is attempted in this run
        assert 4 == ob.statistics().pending

    await run_until(Outbox(config(tmp_path), {"rec": stalled}), submit_then_stop)
    later = Recorder()
    reloaded = [ctx(i) for i in range(4)]
    outbox = Outbox(config(tmp_path), {"rec": later}, clock=lambda: 2**51)
    await run_until(outbox, lambda ob: ob.wait_idle())
    assert [c.id for c in reloaded] == later.ids()
    assert 0 == stalled.entered


async def test_temporary_failures_are_retried_with_backoff_until_delivered(tmp_path: Path) -> None:
    answers = iter([Outcome.retry("busy"), Outcome.retry("busy"), Outcome.delivered()])
    channel = Recorder(lambda c: next(answers))
    outbox = Outbox(config(tmp_path), {"rec": channel}, rng=random.Random(7))

    async def body(ob: Outbox) -> None:
        ob.submit(ctx(1))
        await ob.wait_idle()

    started = time.monotonic()
    await run_until(outbox, body)
    assert [1, 2, 3] == [c.attempt for c in channel.sent]
    assert (1, 2, 0) == (outbox.statistics().delivered, outbox.statistics().retried, outbox.statistics().dead_lettered)
    assert time.monotonic() - started >= (5 + 10) / 1000  # at least half of 10 ms, then half of 20 ms


async def test_backoff_doubles_up_to_the_maximum_with_jitter_in_the_upper_half(tmp_path: Path) -> None:
    outbox = Outbox(config(tmp_path, backoff_base_ms=100, backoff_max_ms=1000), {}, rng=random.Random(1))
    delays = [outbox._backoff_ms(n) for n in range(1, 7)]
    ceilings = [100, 200, 400, 800, 1000, 1000]
    assert [True] * 6 == [c // 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)]


async def test_a_peer_retry_after_hint_is_waited_at_least(tmp_path: Path) -> None:
    answers = iter([Outcome.retry("throttled", retry_after_ms=300), Outcome.delivered()])
    channel = Recorder(lambda c: next(answers))
    times: list[float] = []
    original = channel.send

    async def timed(c: SendContext) -> Outcome:
        times.append(time.monotonic())
        return await original(c)

    channel.send = timed  # type: ignore[method-assign]
    await run_until(Outbox(config(tmp_path), {"rec": channel}), lambda ob: _submit_and_idle(ob, range(1)))
    assert times[1] - times[0] >= 0.29


async def test_a_permanent_failure_goes_to_the_dead_letter_file_with_its_reason(tmp_path: Path) -> None:
    channel = Recorder(lambda c: Outcome.failed("http 400: unknown subscriber"))
    outbox = Outbox(config(tmp_path), {"rec": channel})
    await run_until(outbox, lambda ob: _submit_and_idle(ob, range(1)))
    letters = dead_letters(tmp_path)
    assert [(ctx(0).id, "http 400: unknown subscriber", 1)] == [(d["id"], d["reason"], d["attempts"]) for d in letters]
    assert ctx(0).msisdn == letters[0]["send"]["msisdn"]  # type: ignore[index]


async def test_a_send_still_failing_after_max_attempts_is_dead_lettered(tmp_path: Path) -> None:
    channel = Recorder(lambda c: Outcome.retry("SMSC answered ESME_RMSGQFUL"))
    outbox = Outbox(config(tmp_path, max_attempts=3), {"rec": channel})
    await run_until(outbox, lambda ob: _submit_and_idle(ob, range(1)))
    assert 3 == len(channel.sent)
    assert ["gave up after 3 attempts; last: SMSC answered ESME_RMSGQFUL"] == [d["reason"] for d in dead_letters(tmp_path)]


async def test_a_send_for_an_unconfigured_channel_is_dead_lettered_at_once(tmp_path: Path) -> None:
    outbox = Outbox(config(tmp_path), {"rec": Recorder()})
    await run_until(outbox, lambda ob: _submit_and_idle(ob, range(0)) if ob.submit(ctx(1, channel="fax")) else None)
    assert ["no channel named 'fax' is configured"] == [d["reason"] for d in dead_letters(tmp_path)]


async def test_the_template_is_rendered_at_send_time_and_a_missing_parameter_is_dead_lettered(tmp_path: Path) -> None:
    channel = Recorder()
    templates = TemplateCatalog.load(EXAMPLE_TEMPLATES)
    outbox = Outbox(config(tmp_path), {"rec": channel, "sms": channel}, templates=templates)

    async def body(ob: Outbox) -> None:
        ob.submit(ctx(1, channel="sms", template="offer.topup_bonus", amount=8.5))
        ob.submit(ctx(2, channel="sms", template="offer.topup_bonus"))
        await ob.wait_idle()

    await run_until(outbox, body)
    assert ["【Kairos移动】您的话费余额为8.5元，今日充值50元赠送10元，充值请点击 https://m.example.cn/topup"] == [
        c.text for c in channel.sent
    ]
    assert ["template: template 'offer.topup_bonus' for sms: no value for amount"] == [
        d["reason"] for d in dead_letters(tmp_path)
    ]


async def test_a_send_is_not_attempted_before_its_send_at(tmp_path: Path) -> None:
    called_at: list[int] = []
    channel = Recorder(lambda c: called_at.append(time.time_ns() // 1_000_000) or Outcome.delivered())  # type: ignore[func-returns-value]
    due = time.time_ns() // 1_000_000 + 300

    async def body(ob: Outbox) -> None:
        ob.submit(ctx(1, send_at=due))
        await ob.wait_idle()

    await run_until(Outbox(config(tmp_path), {"rec": channel}), body)
    assert 1 == len(called_at)
    assert called_at[0] >= due


async def test_concurrency_per_channel_is_never_exceeded(tmp_path: Path) -> None:
    channel = Recorder()
    cfg = config(tmp_path, channels={"rec": ChannelLimits(concurrency=3)})
    outbox = Outbox(cfg, {"rec": channel})

    async def body(ob: Outbox) -> None:
        channel.stall()
        for i in range(10):
            ob.submit(ctx(i))
        await ob.wait_for(lambda s: s.in_flight == 3)
        await anyio.wait_all_tasks_blocked()
        channel.gate.set()
        await ob.wait_idle()

    await run_until(outbox, body)
    assert (3, 10) == (channel.max_active, len(channel.sent))


async def test_the_rate_limit_spaces_sends_at_messages_per_second(tmp_path: Path) -> None:
    channel = Recorder()
    outbox = Outbox(config(tmp_path, channels={"rec": ChannelLimits(rate=50.0)}), {"rec": channel})
    started = time.monotonic()
    await run_until(outbox, lambda ob: _submit_and_idle(ob, range(11)))
    assert 11 == len(channel.sent)
    assert time.monotonic() - started >= 10 / 50 - 0.01  # 11 sends at 50/s: 10 gaps of 20 ms


async def test_beyond_the_memory_limit_sends_spill_to_disk_and_all_are_delivered_in_order(tmp_path: Path) -> None:
    channel = Recorder()
    outbox = Outbox(config(tmp_path, memory_limit=10, channels={"rec": ChannelLimits(concurrency=1)}), {"rec": channel})

    async def body(ob: Outbox) -> None:
        channel.stall()
        for i in range(100):
            ob.submit(ctx(i))
        stats = ob.statistics()
        assert (10, 90) == (stats.in_memory, stats.spilled)
        channel.gate.set()
        await ob.wait_idle()

    await run_until(outbox, body)
    assert [ctx(i).id for i in range(100)] == channel.ids()


async def test_spilled_sends_are_reloaded_after_a_restart(tmp_path: Path) -> None:
    async def submit_many(ob: Outbox) -> None:
        for i in range(50):
            ob.submit(ctx(i, send_at=2**50))
        assert 40 == ob.statistics().spilled

    await run_until(Outbox(config(tmp_path, memory_limit=10), {"rec": Recorder()}), submit_many)
    later = Recorder()
    outbox = Outbox(config(tmp_path, memory_limit=10), {"rec": later}, clock=lambda: 2**51)
    await run_until(outbox, lambda ob: ob.wait_idle())
    assert sorted(ctx(i).id for i in range(50)) == sorted(later.ids())


async def test_submit_never_waits_for_a_stalled_channel(tmp_path: Path) -> None:
    """A synchronous loop of 20 000 submits while the only channel hangs: all are taken, promptly, memory bounded."""
    channel = Recorder()
    channel.stall()
    outbox = Outbox(config(tmp_path, memory_limit=1000), {"rec": channel})
    n = 20_000

    async def body(ob: Outbox) -> None:
        started = time.perf_counter()
        taken = sum(ob.submit(ctx(i)) for i in range(n))
        elapsed = time.perf_counter() - started
        stats = ob.statistics()
        assert (n, n, 1000, n - 1000) == (taken, stats.pending, stats.in_memory, stats.spilled)
        assert elapsed < 2.0, f"{n} submits took {elapsed:.2f}s while the channel stalled"

    await run_until(outbox, body)


async def test_a_send_interrupted_by_a_crash_is_dead_lettered_not_repeated_on_a_non_idempotent_channel(tmp_path: Path) -> None:
    hanging = Recorder()
    hanging.stall()
    await _crash_during_send(tmp_path, hanging)
    later = Recorder()
    outbox = Outbox(config(tmp_path), {"rec": later})
    await run_until(outbox, lambda ob: ob.wait_idle())
    assert [] == later.ids()
    assert [ctx(1).id] == [d["id"] for d in dead_letters(tmp_path)]
    assert "outcome unknown" in dead_letters(tmp_path)[0]["reason"]  # type: ignore[operator]


async def test_a_send_interrupted_by_a_crash_is_retried_on_an_idempotent_channel(tmp_path: Path) -> None:
    hanging = Recorder(idempotent=True)
    hanging.stall()
    await _crash_during_send(tmp_path, hanging)
    later = Recorder(idempotent=True)
    await run_until(Outbox(config(tmp_path), {"rec": later}), lambda ob: ob.wait_idle())
    assert [ctx(1).id] == later.ids()


async def _crash_during_send(tmp_path: Path, channel: Recorder) -> None:
    """Cancel a running outbox while a send is in the channel's hands (as a crash would stop it)."""
    outbox = Outbox(config(tmp_path), {"rec": channel})
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        outbox.submit(ctx(1))
        with anyio.fail_after(5):
            await outbox.wait_for(lambda s: s.in_flight == 1)
            while channel.entered == 0:
                await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()


async def test_a_torn_last_journal_line_from_a_crash_is_ignored(tmp_path: Path) -> None:
    await run_until(Outbox(config(tmp_path), {"rec": Recorder()}), lambda ob: _submit_far(ob, 2))
    journal = tmp_path / "outbox" / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"id":"torn')
    later = Recorder()
    await run_until(Outbox(config(tmp_path), {"rec": later}, clock=lambda: 2**51), lambda ob: ob.wait_idle())
    assert [ctx(0).id, ctx(1).id] == later.ids()


async def _submit_far(ob: Outbox, n: int) -> None:
    for i in range(n):
        ob.submit(ctx(i, send_at=2**50))


async def test_the_engine_send_struct_is_accepted_with_a_priority(tmp_path: Path) -> None:
    from kairos.engine import Send

    channel = Recorder()
    send = Send("s", "s:1:1", "13800000001", 1, 0, "rec", "t", {"x": 1})
    send = msgspec.structs.replace(send, id="s:13800000001:1", scenario="s")

    async def body(ob: Outbox) -> None:
        ob.submit(send, priority=80)
        await ob.wait_idle()

    await run_until(Outbox(config(tmp_path), {"rec": channel}), body)
    assert [("s:13800000001:1", 80, {"x": 1})] == [(c.id, c.priority, c.params) for c in channel.sent]


# --- memory in event time: the horizon, the floor --------------------------------------------------


def old(n: int, ts: int, *, send_at: int = 0) -> SendContext:
    """A send with trigger time ``ts`` (an old one, typically)."""
    return SendContext(id=f"s:1380000{n:04d}:{ts}", scenario="s", msisdn=f"1380000{n:04d}", ts=ts, send_at=send_at,
                       channel="rec", template="t", params={}, text="hello")


def ledger(tmp_path: Path) -> list[list[str]]:
    return [line.split("\t") for line in (tmp_path / "outbox" / "ledger.log").read_text().splitlines()]


async def _deliver(ob: Outbox, sends: list[SendContext]) -> None:
    for c in sends:
        ob.submit(c)
    await ob.wait_idle()


async def test_ids_delivered_with_trigger_times_older_than_retention_are_never_sent_again_after_a_restart(
        tmp_path: Path) -> None:
    """Trigger times 11 days old (a backlog): the restart neither re-queues them from the journal nor takes them
    again from a re-decision, even compacting at every flush, because nothing told the outbox it may forget."""
    sends = [old(i, OLD + i) for i in range(20)]
    first = Recorder()
    await run_until(Outbox(config(tmp_path, compact_bytes=1), {"rec": first}), lambda ob: _deliver(ob, sends))
    assert 20 == len(first.ids())
    restarted = Recorder()
    outbox = Outbox(config(tmp_path, compact_bytes=1), {"rec": restarted})

    async def restart(ob: Outbox) -> None:
        await ob.wait_idle()
        assert [False] * 20 == [ob.submit(c) for c in sends]  # decided again after a restart
        await ob.wait_idle()

    await run_until(outbox, restart)
    assert [] == restarted.ids()
    assert (0, 20, 0) == (outbox.statistics().submitted, outbox.statistics().duplicates, outbox.statistics().expired)


async def test_a_clean_restart_sends_nothing_again(tmp_path: Path) -> None:
    sends = [old(i, OLD + i) for i in range(50)]
    await run_until(Outbox(config(tmp_path), {"rec": Recorder()}), lambda ob: _deliver(ob, sends))
    for _ in range(2):
        again = Recorder()
        await run_until(Outbox(config(tmp_path), {"rec": again}), lambda ob: ob.wait_idle())
        assert [] == again.ids()


async def test_delivered_ids_are_forgotten_only_below_the_horizon_minus_retention(tmp_path: Path) -> None:
    """::

        trigger ts   0    1000   2000   3000         (+ OLD)
                     D     D      D      D
        horizon                      2500
        floor (horizon - 1000)  1500
        forgotten    x     x
    """
    sends = [old(i, OLD + 1000 * i) for i in range(4)]
    outbox = Outbox(config(tmp_path, compact_bytes=1, retention_ms=1000), {"rec": Recorder()})

    async def body(ob: Outbox) -> None:
        await _deliver(ob, sends)
        ob.advance_horizon(OLD + 2500)
        await _deliver(ob, [old(9, OLD + 9000)])  # one more flush: a compaction after the horizon came

    await run_until(outbox, body)
    assert OLD + 1500 == outbox.floor
    records = ledger(tmp_path)
    assert ["H", str(OLD + 1500), ""] == records[0]
    assert sorted([sends[2].id, sends[3].id, old(9, OLD + 9000).id]) == sorted(r[2] for r in records if r[0] == "D")


async def test_the_floor_is_persisted_and_a_submit_below_it_is_refused_and_counted_as_expired(tmp_path: Path) -> None:
    sends = [old(i, OLD + 1000 * i) for i in range(4)]

    async def forget(ob: Outbox) -> None:
        await _deliver(ob, sends)
        ob.advance_horizon(OLD + 2500)
        await _deliver(ob, [old(9, OLD + 9000)])

    await run_until(Outbox(config(tmp_path, compact_bytes=1, retention_ms=1000), {"rec": Recorder()}), forget)
    later = Recorder()
    outbox = Outbox(config(tmp_path, retention_ms=1000), {"rec": later})
    accepted: list[bool] = []

    async def resubmit(ob: Outbox) -> None:
        assert OLD + 1500 == ob.floor
        accepted.extend(ob.submit(c) for c in [*sends, old(5, OLD + 1499), old(6, OLD + 1500)])
        await ob.wait_idle()

    await run_until(outbox, resubmit)
    # forgotten: refused as expired; remembered: duplicates; new below the floor: expired; new at it: sent
    assert [False, False, False, False, False, True] == accepted
    stats = outbox.statistics()
    assert (3, 2, 1) == (stats.expired, stats.duplicates, stats.submitted)
    assert [old(6, OLD + 1500).id] == later.ids()


async def test_a_pending_send_below_the_floor_is_kept_and_delivered(tmp_path: Path) -> None:
    """Forgetting drops only outcomes: a send still waiting (``send_at`` later) stays in the journal."""
    waiting = old(7, OLD, send_at=2**50)

    async def body(ob: Outbox) -> None:
        for c in [waiting, *(old(i, OLD + 1000 * i) for i in range(1, 4))]:
            ob.submit(c)
        await ob.wait_for(lambda s: s.delivered == 3)
        ob.advance_horizon(OLD + 5000)
        ob.submit(old(9, OLD + 9000))  # delivered after a flush, hence after a compaction under the horizon
        await ob.wait_for(lambda s: s.delivered == 4)

    first = Outbox(config(tmp_path, compact_bytes=1, retention_ms=1000), {"rec": Recorder()})
    await run_until(first, body)
    assert OLD + 4000 == first.floor
    later = Recorder()
    await run_until(Outbox(config(tmp_path), {"rec": later}, clock=lambda: 2**51), lambda ob: ob.wait_idle())
    assert [waiting.id] == later.ids()


async def test_while_sends_are_spilled_the_ledger_is_compacted_once_per_growth_not_at_every_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quiet-hours night or a channel outage spills sends; the journal cannot be compacted then, and the
    ledger was rewritten (and fsynced) at every group commit once the journal had grown by compact_bytes."""
    rewrites = 0
    rewrite = _Store._rewrite_ledger

    def counted(self: _Store) -> None:
        nonlocal rewrites
        rewrites += 1
        rewrite(self)

    monkeypatch.setattr(_Store, "_rewrite_ledger", counted)
    outbox = Outbox(config(tmp_path, memory_limit=10, compact_bytes=4_000), {"rec": Recorder()})

    async def body(ob: Outbox) -> None:
        for i in range(200):  # deferred far: they stay pending, 190 of them spilled
            ob.submit(ctx(i, send_at=2**50))
            await ob.durable(ob.mark())  # one group commit per submit
        assert 190 == ob.statistics().spilled

    await run_until(outbox, body)
    journal = (tmp_path / "outbox" / "journal.jsonl").stat().st_size
    assert rewrites <= 2 + journal // 4_000, f"{rewrites} ledger rewrites for a {journal}-byte journal"


@pytest.mark.parametrize("in_doubt", [True, False])
async def test_a_retry_in_doubt_is_never_sent_again_after_a_crash_while_a_plain_retry_is(
        tmp_path: Path, in_doubt: bool) -> None:
    """A channel that handed the message over without an answer (a Kafka record not yet acknowledged) says
    ``retry(in_doubt=True)``: a crash before the answer leaves it in doubt, dead-lettered on a channel that
    keeps repeats; a plain retry (nothing handed over) is sent by the next run."""
    waiting = Recorder(lambda _c: Outcome.retry("no answer yet", in_doubt=in_doubt))
    outbox = Outbox(config(tmp_path), {"rec": waiting})
    async with anyio.create_task_group() as tg:
        await tg.start(outbox.run)
        outbox.submit(ctx(1))
        with anyio.fail_after(10):
            await outbox.wait_for(lambda s: s.retried >= 1)
        tg.cancel_scope.cancel()  # a crash between the retry and its next attempt
    later = Recorder()
    await run_until(Outbox(config(tmp_path), {"rec": later}), lambda ob: ob.wait_idle())
    if in_doubt:
        assert ([], [ctx(1).id]) == (later.ids(), [d["id"] for d in dead_letters(tmp_path)])
    else:
        assert ([ctx(1).id], []) == (later.ids(), dead_letters(tmp_path))


async def test_a_send_dead_lettered_after_its_only_attempt_says_1_attempt(tmp_path: Path) -> None:
    channel = Recorder(lambda c: Outcome.retry("SMSC answered ESME_RMSGQFUL"))
    outbox = Outbox(config(tmp_path, max_attempts=1), {"rec": channel})
    await run_until(outbox, lambda ob: _submit_and_idle(ob, range(1)))
    assert ["gave up after 1 attempt; last: SMSC answered ESME_RMSGQFUL"] == [d["reason"] for d in dead_letters(tmp_path)]
