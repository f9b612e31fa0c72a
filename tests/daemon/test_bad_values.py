"""Bad values the daemon meets: numbers out of range, events dated far ahead, and a snapshot that cannot be written."""

from __future__ import annotations

import json
import os
import signal
import time

import anyio
import httpx
from kairos.adapters import wall_ms
from kairos.engine import decode_snapshot
from kairos._config import load_config
from kairos._daemon import EXIT_SNAPSHOT_FAILED, Daemon
from kairos._http import HttpServer
from tests.daemon.support import log_records, logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import SEQ, append, dpi

NOW = time.time_ns() // 1_000_000
DAY_MS = 86_400_000


def test_numbers_out_of_range_are_counted_bad_lines_and_snapshots_keep_working(tmp_path):
    """The issue's ``"bytes": 1e40`` (and an int past 64 bits, in a DPI record and in a profile
    tag) made every snapshot fail; now each is a bad line and the state stays snapshottable."""
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0.1)
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review"), {**dpi(NOW, "1", "review"), "bytes": 1e40},
           {**dpi(NOW, "2", "review"), "bytes": 10**40},
           {"type": "profile", "ts": NOW, "msisdn": "1", "tags": {"score": 10**40}},
           dpi(NOW + 1, "1", "shop"))
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send")
        wait_for(lambda: len(logged(tmp_path, "bad input line skipped")) == 3, what="the three bad lines")
        seen = len(log_records(tmp_path))
        wait_for(lambda: any(r.get("event") == "snapshot taken" for r in log_records(tmp_path)[seen:]),
                 what="a snapshot taken after the bad lines")
    finally:
        assert 0 == stop(proc)
    errors = [r["error"] for r in logged(tmp_path, "bad input line skipped")]
    assert ["Expected `float` <= 1000000000000000.0 - at `$.bytes`",
            "Expected `int` <= 1000000000000000 - at `$.bytes`"] == errors[:2]
    assert errors[2].startswith("Expected a tag number within ±2**53")
    assert [] == logged(tmp_path, "snapshot failed; the previous one stays")
    assert 1 == len(sends(tmp_path, ("sms",)))


def test_an_event_a_day_ahead_of_the_wall_clock_is_refused_and_later_events_are_processed(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0,
                          extra='[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n')
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to be ready")
        url = f"http://127.0.0.1:{listening['port']}"
        r = httpx.post(url + "/ingest", content=json.dumps(dpi(NOW + DAY_MS, "7", "review")) + "\n")
        assert (202, {"accepted": 0, "errors": 0, "not_owned": 0, "too_far_ahead": 1}) == (r.status_code, r.json())
        append(tmp_path / "in" / "events.jsonl", dpi(NOW + DAY_MS, "8", "news"),  # a file event as far ahead
               dpi(NOW, "1", "review"), dpi(NOW + 1, "1", "shop"))
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send from the events after the wild ones")
        text = httpx.get(url + "/metrics").text
    finally:
        assert 0 == stop(proc)
    assert "kairos_future_events_total 2.0" in text
    assert "kairos_late_events_total 0.0" in text
    refused = logged(tmp_path, "event too far ahead of the wall clock refused")
    assert [("http", NOW + DAY_MS), ("in/events.jsonl", NOW + DAY_MS)] == [
        (r["source"], r["ts"]) for r in refused]
    assert all("msisdn" not in r and r["max_ahead_ms"] == 300_000 for r in refused)
    assert [NOW + 1] == [s["ts"] for s in sends(tmp_path, ("sms",))]


def test_a_failing_snapshot_is_counted_makes_ready_degraded_keeps_the_previous_one_and_exits_3(tmp_path):
    """A state value the snapshot encoder cannot take (an int past 64 bits, as ``bytes: 1e40`` once
    let in) is put into a running daemon's state: every snapshot then fails loudly, the last good one
    stays on disk, processing goes on, ``/ready`` recovers when a snapshot succeeds again, and a final
    snapshot that fails ends in exit status 3, not a traceback."""
    config = load_config(write_config(tmp_path, SEQ, channels=("sms",), interval_s=0.05,
                                      extra="[reload]\nwatch = false\n"))
    path = tmp_path / "state" / "snapshot.bin"

    async def main() -> int:
        daemon = Daemon(config)
        status: list[int] = []

        async def until(condition, what: str) -> None:  # noqa: ANN001 - a test's poll
            with anyio.fail_after(30):
                while not condition():
                    await anyio.sleep(0.01)

        async def run() -> None:
            status.append(await daemon.run())

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await until(lambda: daemon.ready and daemon.files.taken >= 1, "a first good snapshot")
            port = await tg.start(HttpServer(daemon, "127.0.0.1", 0).run)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                assert 200 == (await http.get("/ready")).status_code
                tags = daemon.units["all"].engine.reference.tags
                tags["1"] = {"score": 10**40}
                await until(lambda: daemon.snapshot_failures >= 1, "a failed snapshot")
                good = path.read_bytes()
                await until(lambda: daemon.snapshot_failures >= 2, "a second failed snapshot")
                assert good == path.read_bytes()  # the previous snapshot is untouched
                decode_snapshot(good)
                r = await http.get("/ready")
                assert 503 == r.status_code
                assert r.json()["reason"].startswith("the last snapshot failed: OverflowError")
                metrics = (await http.get("/metrics")).text
                assert "kairos_snapshot_failing 1.0" in metrics
                daemon.ingest("test", (json.dumps(dpi(NOW, "1", "review")) + "\n"
                                       + json.dumps(dpi(NOW + 1, "1", "shop")) + "\n").encode(), None)
                assert 1 == daemon.sends  # processing goes on
                del tags["1"]
                await until(lambda: daemon.snapshot_error is None, "a snapshot succeeding again")
                assert (200, {"ready": True}) == (lambda r: (r.status_code, r.json()))(await http.get("/ready"))
                injected_at = wall_ms()
                tags["1"] = {"score": 10**40}
                os.kill(os.getpid(), signal.SIGTERM)
                await until(lambda: status, "the daemon to stop")
                # what is on disk is a good snapshot taken before the value went in
                assert decode_snapshot(path.read_bytes()).taken_at <= injected_at
            tg.cancel_scope.cancel()  # the test's own HTTP server
        return status[0]

    assert EXIT_SNAPSHOT_FAILED == anyio.run(main)
