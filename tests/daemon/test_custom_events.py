"""The daemon decodes the event types its scenario folder's ``events.toml`` declares.

It registers the catalogue as it starts: its sources decode the custom types
(a wild value is a bad input line, logged and counted), a custom event waiting
in a snapshot's lateness buffer survives a restart, and a reload whose
catalogue declares other types is refused saying a restart is needed (its
decoders were built for the types at start), while a reload with the
catalogue unchanged goes through.
"""

from __future__ import annotations

from kairos._config import load_config
from kairos._daemon import Daemon
from kairos.engine import use_catalogue
from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import NOW, append, buffered_in_snapshot

CATALOGUE = '[voucher_redeemed]\namount = {type = "number", min = 0, max = 100000}\ncode = "string"\n'
SCENARIO = ('scenario big_voucher\n  when voucher_redeemed where amount >= 100\n'
            '  then sms "offer.thanks" with {code: last.code}\nend\n')


def voucher(ts: int, m: str, amount: float, code: str) -> dict:
    return {"type": "voucher_redeemed", "ts": ts, "msisdn": m, "amount": amount, "code": code}


def test_the_daemon_sends_on_a_custom_event_and_logs_a_wild_value_as_a_bad_line(tmp_path):
    config = write_config(tmp_path, SCENARIO, channels=("sms",))
    (tmp_path / "scenarios" / "events.toml").write_text(CATALOGUE)
    append(tmp_path / "in" / "events.jsonl", voucher(NOW, "1", 1e40, "WILD"), voucher(NOW + 1, "2", 150, "A2"))
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send from the custom event")
    finally:
        assert 0 == stop(proc)
    assert [{"code": "A2"}] == [s["params"] for s in sends(tmp_path, ("sms",))]
    (bad,) = logged(tmp_path, "bad input line skipped")
    assert "$.amount" in bad["error"]


def test_a_custom_event_waiting_in_the_lateness_buffer_survives_a_restart(tmp_path):
    config = write_config(tmp_path, SCENARIO, channels=("sms",), lateness_ms=60_000, interval_s=0.1)
    (tmp_path / "scenarios" / "events.toml").write_text(CATALOGUE)
    events = tmp_path / "in" / "events.jsonl"
    append(events, voucher(NOW, "1", 150, "BUFFERED"))
    proc = start(config)
    wait_for(lambda: buffered_in_snapshot(tmp_path) == 1, what="a snapshot holding the event in the buffer")
    assert 0 == stop(proc)
    append(events, voucher(NOW + 120_000, "9", 1, "LOW"))  # releases it, after the restart
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send from the buffered event")
    finally:
        assert 0 == stop(proc)
    assert [{"code": "BUFFERED"}] == [s["params"] for s in sends(tmp_path, ("sms",))]


def _daemon(path):
    """A daemon built from ``path`` (it registers its folder's catalogue), its units opened, never run."""
    return Daemon(load_config(path))


def test_a_reload_whose_catalogue_declares_other_types_is_refused_saying_to_restart(tmp_path):
    path = write_config(tmp_path, SCENARIO, channels=("sms",))
    catalogue = tmp_path / "scenarios" / "events.toml"
    catalogue.write_text(CATALOGUE)
    try:
        reloader = _daemon(path).reloader
        catalogue.write_text(CATALOGUE + 'shop = {type = "string", required = false}\n')
        result = reloader.reload("test")
        assert (False, 1) == (result.ok, reloader.refused)
        assert (f"scenarios: the event types of {tmp_path}/scenarios/events.toml changed; new event types need new "
                "decoders: restart the daemon to use them (the running scenarios go on)") == result.error
    finally:
        use_catalogue([])


def test_a_reload_with_the_catalogue_unchanged_but_its_comments_is_not_refused_for_it(tmp_path):
    path = write_config(tmp_path, SCENARIO, channels=("sms",))
    catalogue = tmp_path / "scenarios" / "events.toml"
    catalogue.write_text(CATALOGUE)
    try:
        reloader = _daemon(path).reloader
        catalogue.write_text("# vouchers\n" + CATALOGUE.replace('"string"', '{type = "string", about = "its code"}'))
        result = reloader.reload("test")
        assert "event types" not in (result.error or "")
        assert (True, 0) == (result.ok, reloader.refused)
    finally:
        use_catalogue([])
