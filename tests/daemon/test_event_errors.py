"""The daemon survives an event whose processing raises: counted, logged without the subscriber, and
later events still make sends."""

from __future__ import annotations

import time

import httpx

from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import SEQ, append, dpi

NOW = time.time_ns() // 1_000_000
HUGE = " * ".join(["bytes"] * 40)  # past any float for a 10**12-byte record: ``/ 3`` raises OverflowError

BIG = f"""
scenario big_video
  when dpi where category == "video" and {HUGE} / 3 > 1
  then sms "offer.video"
end
"""


def test_an_event_whose_processing_raises_is_counted_logged_with_the_scenario_and_later_events_make_sends(tmp_path):
    config = write_config(tmp_path, SEQ + BIG, channels=("sms",), interval_s=0.1, extra=(
        '[log]\npseudonymise = false\n[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n'))
    bad_number = "79160000002"
    append(tmp_path / "in" / "events.jsonl",
           dpi(NOW, "79160000001", "review"),
           {**dpi(NOW + 1, bad_number, "video"), "bytes": 10**12},
           dpi(NOW + 2, "79160000001", "shop"),
           {**dpi(NOW + 3, "79160000003", "video"), "bytes": 10})
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        got = wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2 and sends(tmp_path, ("sms",)),
                       what="the sends of the events after the failing one")
        (failed,) = wait_for(lambda: logged(tmp_path, "event processing failed; event skipped"),
                             what="the failure's record")
        metrics = httpx.get(f"http://127.0.0.1:{listening['port']}/metrics").text
        seen = len(logged(tmp_path, "snapshot taken"))
        wait_for(lambda: len(logged(tmp_path, "snapshot taken")) > seen, what="a snapshot after the failure")
    finally:
        assert 0 == stop(proc)
    assert [("review_shop", "79160000001"), ("big_video", "79160000003")] == [(s["scenario"], s["msisdn"]) for s in got]
    assert "kairos_event_errors_total 1.0" in metrics.splitlines()
    assert {"unit": "all", "type": "dpi", "ts": NOW + 1, "scenario_at": f"{tmp_path / 'scenarios' / 's.kairos'}:8",
            "error": "OverflowError: integer division result too large for a float", "event_errors": 1} == {
        k: failed[k] for k in ("unit", "type", "ts", "scenario_at", "error", "event_errors")}
    assert bad_number not in (tmp_path / "daemon.log").read_text()  # nor any of the event's values
    assert 1 == logged(tmp_path, "stopped")[-1]["event_errors"]


#: in a daemon process: the outbox's journal refuses the second send, as a full disk would
FULL_DISK = '''
from kairos.adapters import Outbox

_submit = Outbox.submit
_calls = [0]


def submit(self, send, **kw):
    _calls[0] += 1
    if _calls[0] == 2:
        raise OSError(28, "No space left on device")
    return _submit(self, send, **kw)


Outbox.submit = submit
'''


def test_an_outbox_that_cannot_take_a_send_stops_the_daemon_without_a_final_snapshot_and_a_restart_sends_it(
        tmp_path, monkeypatch):
    """The send is not skipped as one event's fault (its state would count it made): the daemon stops with
    status 4 and no final snapshot, and the next start decides it again from the last published one."""
    import os

    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(FULL_DISK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path / "inject"),
                                                                  os.environ.get("PYTHONPATH")])))
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0)
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review"), dpi(NOW + 1, "1", "shop"), dpi(NOW + 2, "2", "review"),
           dpi(NOW + 3, "2", "shop"))
    proc = start(config)
    assert 4 == proc.wait(60)
    (stopped,) = logged(tmp_path, "a decision could not be made durable (the outbox refused a send, or the shared "
                               "capacity store could not answer); stopped without a final snapshot")
    assert "No space left on device" in stopped["error"]
    assert not logged(tmp_path, "snapshot taken")
    monkeypatch.delenv("PYTHONPATH")
    proc = start(config)
    try:
        got = wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2 and sends(tmp_path, ("sms",)),
                       what="both sends after the restart")
    finally:
        assert 0 == stop(proc)
    assert ["1", "2"] == sorted(s["msisdn"] for s in got)
