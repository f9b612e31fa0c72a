"""Never twice, for a backlog older than the outbox's retention: SIGKILLs, then a clean restart, then another.

The daemon reads events eleven days old (a backlog after an outage, a re-read
topic) through file channels that write every delivery they are given, repeats
included (``dedupe = false``), while still declaring themselves idempotent so
the outbox retries a send a kill left in doubt. Against an uninterrupted
``kairos replay`` of the same stream: nothing lost, nothing spurious, a repeat
only for a send that was in a channel's hands at a kill (an ``A`` ledger record
with no outcome on disk when the process died), and nothing at all after a
clean restart. The old outbox forgot delivered ids older than a week of wall
clock at every start and sent them again; this test fails on it.
"""

from __future__ import annotations

import collections
import json
import os
import random
import time

import pytest

from kairos.adapters import read_ledger
from tests.daemon.support import log_offset, sends, start, stop, wait_until_settled, write_config
from tests.daemon.test_crash import (
    SCENARIOS,
    Feeder,
    _content,
    appender,
    kill_at_progress,
    recorded_stream,
    reference,
    replayed,
    run_to_the_end,
)

DAY_MS = 86_400_000
CHANNELS = ("sms", "popup", "call")


@pytest.mark.parametrize("retention", ["default", "zero"])
def test_old_events_through_kills_and_a_clean_restart_lose_nothing_and_repeat_only_sends_in_doubt(tmp_path, retention):
    """``default``: 7 days of margin, nothing is ever forgotten here; ``zero``: no margin and a compaction at every
    group commit, so ids are forgotten right at the horizon the snapshots give — which must still be enough."""
    seed = int(os.environ.get("KAIROS_CRASH_SEED", random.randrange(1 << 30)))
    print(f"KAIROS_CRASH_SEED={seed}")  # shown with every failure: the same seed draws the same kill points
    rnd = random.Random(seed)
    reference(tmp_path)
    outbox = "[outbox]\nretention_ms = 0\ncompact_bytes = 1\n" if retention == "zero" else ""
    limits = "".join(f"[outbox.channels.{c}]\nrate = 400\n" for c in CHANNELS)
    config = write_config(tmp_path, SCENARIOS, interval_s=0.15, reference="ref", extra=outbox + limits)
    config.write_text(config.read_text().replace("fsync = false\n", "fsync = false\ndedupe = false\n"))
    events = tmp_path / "in" / "events.jsonl"
    eleven_days_ago = time.time_ns() // 1_000_000 - 11 * DAY_MS
    stream = recorded_stream(events, seed=seed, events=40_000, subscribers=300, start_ms=eleven_days_ago)
    expected = sorted(map(_content, replayed(tmp_path)))
    assert len(expected) > 300, f"the stream must decide enough sends for kills to land among them (seed {seed})"
    events.write_text("")
    feeder = Feeder(appender(events), stream, block=250, every_s=0.05)  # about 8 s of input while a daemon runs
    feeder.start()

    kills, doubtful = 5, 0
    for i in range(kills):
        kill_at_progress(tmp_path, config, feeder, rnd, seed, i, events_below=5000)
        doubtful += len(read_ledger(tmp_path / "state" / "outbox" / "ledger.log").in_doubt)

    run_to_the_end(tmp_path, config, feeder, seed)
    delivered = sends(tmp_path, CHANNELS)
    per_id = collections.Counter(s["id"] for s in delivered)
    repeats = len(delivered) - len(per_id)
    print(f"{len(per_id)} sends, {repeats} repeats, {doubtful} in doubt at {kills} kills")
    assert expected == sorted(set(map(_content, delivered))), f"lost or spurious sends (seed {seed})"
    assert len(per_id) == len(expected), f"one id delivered with different contents (seed {seed})"
    assert repeats <= doubtful, f"{repeats} repeats, only {doubtful} sends were in doubt at a kill (seed {seed})"

    since = log_offset(tmp_path)
    proc = start(config)
    try:
        wait_until_settled(tmp_path, proc, since, what=f"the clean restart to settle (seed {seed})")
    finally:
        assert 0 == stop(proc), f"seed {seed}"
    again = sends(tmp_path, CHANNELS)
    assert len(delivered) == len(again), (
        f"{len(again) - len(delivered)} sends again after a clean restart (seed {seed})"
    )
    assert [] == [json.dumps(s) for s in again[len(delivered):]]


class _Outbox:
    def __init__(self) -> None:
        self.horizons: dict[str, int] = {}

    @property
    def horizon(self) -> int | None:
        return self.horizons.get("")

    def advance_horizon(self, horizon: int, *, store: str = "") -> None:
        self.horizons[store] = horizon


def test_the_horizon_is_the_oldest_send_watermark_of_every_kept_snapshot() -> None:
    """A restart may load the current snapshot or the ``.prev`` one: the outbox is told the older. The
    ``.prev`` a run found at start has an unknown watermark, so nothing is told until the run replaced it."""
    from types import SimpleNamespace

    from kairos._daemon import UNKNOWN_WATERMARK, Daemon

    daemon = SimpleNamespace(kept_watermarks={"all": (100, UNKNOWN_WATERMARK)}, outbox=_Outbox(), partitioned=False)
    Daemon._advance_horizon(daemon, {"all": 200})  # type: ignore[arg-type]
    assert (100, {"all": (200, 100)}) == (daemon.outbox.horizon, daemon.kept_watermarks)
    Daemon._advance_horizon(daemon, {"all": 300})  # type: ignore[arg-type]
    assert 200 == daemon.outbox.horizon
    daemon = SimpleNamespace(kept_watermarks={"all": (100, UNKNOWN_WATERMARK)}, outbox=_Outbox(), partitioned=False)
    Daemon._advance_horizon(daemon, {})  # type: ignore[arg-type]
    assert daemon.outbox.horizon is None  # the found .prev still counts: nothing may be forgotten yet


def test_a_partitioned_daemon_tells_each_partitions_outbox_store_its_own_horizon() -> None:
    """Each partition's store moves with its snapshot files, so each is told the oldest watermark of its own
    kept snapshots: partitions with older state never hold the others' memory back, nor lose their own."""
    from types import SimpleNamespace

    from kairos._daemon import UNKNOWN_WATERMARK, Daemon

    daemon = SimpleNamespace(kept_watermarks={"p-0000": (100, 90), "p-0001": (150, UNKNOWN_WATERMARK)},
                             outbox=_Outbox(), partitioned=True)
    Daemon._advance_horizon(daemon, {"p-0000": 200, "p-0001": 250})  # type: ignore[arg-type]
    assert ({"p-0000": 100, "p-0001": 150}, {"p-0000": (200, 100), "p-0001": (250, 150)}) == (
        daemon.outbox.horizons, daemon.kept_watermarks)
