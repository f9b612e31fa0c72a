"""The daemon at the edges of its input: a \\r inside a line, bad lines found by where they are,
repeated events (an at-least-once feed), and no subscriber's number in the log."""

from __future__ import annotations

import json
import time

import httpx

from kairos._pseudonym import Pseudonymiser
from tests.daemon.support import lines, logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import SEQ, append, dpi

NOW = time.time_ns() // 1_000_000


def test_a_carriage_return_inside_a_line_leaves_it_one_line_and_a_bad_line_is_logged_at_its_byte_offset(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), extra='[log]\npseudonymise = false\n')
    path = tmp_path / "in" / "events.jsonl"
    good = (json.dumps(dpi(NOW, "1", "review")) + "\n").encode()
    cr_in_string = b'{"type":"dpi","ts":%d,"msisdn":"1","host":"a\rb","category":"shop"}\n' % (NOW + 1)
    cr_between_tokens = b'{"type":"dpi",\r"ts":%d,"msisdn":"1","host":"a.cn","category":"shop"}\n' % (NOW + 2)
    path.write_bytes(good + cr_in_string + cr_between_tokens)
    proc = start(config)
    try:
        got = wait_for(lambda: sends(tmp_path, ("sms",)), what="the send the \\r-separated line completes")
    finally:
        assert 0 == stop(proc)
    assert [NOW + 2] == [s["ts"] for s in got]
    (bad,) = logged(tmp_path, "bad input line skipped")  # one line, counted once
    assert (bad["source"], bad["file"], bad["offset"]) == ("in/events.jsonl", "events.jsonl", len(good))
    assert path.read_bytes()[bad["offset"]:].startswith(cr_in_string)
    assert (1, 2) == (logged(tmp_path, "stopped")[-1]["decode_errors"], logged(tmp_path, "stopped")[-1]["events"])


def test_a_bad_line_in_an_ingest_request_is_logged_with_its_line_and_offset_in_the_request(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0,
                          extra='[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n')
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        assert "open" == listening["ingest"]  # loopback without a token: said at start
        first = json.dumps(dpi(NOW, "1", "review")) + "\n"
        r = httpx.post(f"http://127.0.0.1:{listening['port']}/ingest", content=first + "{bad\n" + first)
        assert (202, 1) == (r.status_code, r.json()["errors"])
        (bad,) = wait_for(lambda: logged(tmp_path, "bad input line skipped"), what="the bad line's record")
    finally:
        assert 0 == stop(proc)
    assert (bad["source"], bad["request_line"], bad["request_offset"]) == ("http", 2, len(first))


def test_a_repeated_event_is_skipped_and_counted_even_after_a_restart(tmp_path):
    # a lateness buffer holds both copies, so without the remembered identities both would be processed
    config = write_config(tmp_path, SEQ, channels=("sms",), lateness_ms=60_000, interval_s=0,
                          extra='[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n')
    path = tmp_path / "in" / "events.jsonl"
    T = NOW - 600_000  # noqa: N806 - in the past: the outbox sends at once
    review, shop = dpi(T, "1", "review"), dpi(T + 1, "1", "shop")
    append(path, review, shop, shop)  # the feed delivers the shop visit twice
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to be ready")
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        text = wait_for(lambda: (lambda t: t if "kairos_duplicate_events_total 1.0" in t else None)(
            httpx.get(f"http://127.0.0.1:{listening['port']}/metrics").text), what="the duplicate in the metrics")
        assert "kairos_duplicate_events_total 1.0" in text
    finally:
        assert 0 == stop(proc)  # the final snapshot holds the buffered events and the identities seen
    append(path, review, shop,  # delivered again after the restart
           dpi(T + 120_000, "2", "review"), dpi(T + 120_001, "2", "shop"),
           dpi(T + 200_000, "3", "news"))  # moves time past the lateness: the buffer is released
    proc = start(config)
    try:
        wait_for(lambda: len(sends(tmp_path, ("sms",))) >= 2, what="the later subscriber's send")
    finally:
        assert 0 == stop(proc)
    assert [("1", T + 1), ("2", T + 120_001)] == [(s["msisdn"], s["ts"]) for s in sends(tmp_path, ("sms",))]
    assert 2 == logged(tmp_path, "stopped")[-1]["duplicates"]


BROKEN = """
scenario broken
  when dpi as v where category == "video"
  then sms "broken" with {site: v.host}
end
"""
TEMPLATES = ('[templates."offer.handset"]\nsms = "A contract for the handset you read about on {site}."\n'
             '[templates."broken"]\nsms = "{site:d}"\n')  # renders only for a number: dead-lettered


def test_no_subscriber_number_appears_in_the_log_of_late_events_bad_lines_dead_letters_sends_and_feedback(tmp_path):
    numbers = [f"7916000000{i}" for i in range(10)]
    config = write_config(tmp_path, SEQ, channels=("sms",), extra=(
        '[log]\npseudonym_key = "test-key"\n[feedback]\nchannel = "sms"\nfiles = ["in/callbacks.jsonl"]\n'))
    (tmp_path / "scenarios" / "broken.kairos").write_text(BROKEN)
    (tmp_path / "scenarios" / "templates.toml").write_text(TEMPLATES)
    path = tmp_path / "in" / "events.jsonl"
    append(path, dpi(NOW, numbers[0], "review"), dpi(NOW + 1, numbers[0], "shop"),  # a send
           dpi(NOW + 2, numbers[1], "video"),  # a dead letter
           dpi(NOW + 5, numbers[9], "news"), dpi(NOW + 3, numbers[2], "news"))  # a late event
    with open(path, "a") as f:
        f.write('{"type":"dpi","ts":%d,"msisdn":"%s","host":"h","bytes":"many"}\n' % (NOW + 6, numbers[3]))
        f.write('{"type":"sms","ts":%d,"msisdn":"%s","direction":"up","peer":"%s"}\n'
                % (NOW + 6, numbers[4], numbers[5]))
        f.write(f"{numbers[6]},dpi,{NOW + 6}\n")  # not JSON at all
        # no `msisdn`
        f.write('{"type":"dpi","ts":%d,"MSISDN":"%s","host":"h","category":"news"}\n' % (NOW + 7, numbers[8]))
    (tmp_path / "in" / "callbacks.jsonl").write_text(json.dumps({"trigger_id": f"x:{numbers[7]}", "outcome": "clicked"})
                                                     + "\n")
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "send dead-lettered"), what="the dead letter")
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send")
        wait_for(lambda: len(logged(tmp_path, "bad input line skipped")) == 4, what="the bad lines")
        wait_for(lambda: logged(tmp_path, "feedback line rejected"), what="the rejected callback")
    finally:
        assert 0 == stop(proc)
    log = (tmp_path / "daemon.log").read_text()
    assert [] == [m for m in numbers if m in log]
    assert NOW + 7 == json.loads(logged(tmp_path, "bad input line skipped")[-1]["line"])["ts"]  # found by its ts
    assert numbers[0] in lines(tmp_path / "out" / "sms.jsonl")[0]["id"]  # the send itself names them
    (late,) = logged(tmp_path, "late event not processed")
    assert Pseudonymiser(b"test-key").of(numbers[2]) == late["msisdn"]
    (dead,) = logged(tmp_path, "send dead-lettered")
    assert f"broken:{Pseudonymiser(b'test-key').of(numbers[1])}:{NOW + 2}" == dead["id"]
    assert logged(tmp_path, "log pseudonymised")[0]["pseudonyms"] == "keyed, key from the configuration"


def test_a_line_nested_past_the_recursion_limit_is_one_bad_line_from_a_file_and_from_ingest(tmp_path):
    """msgspec raises RecursionError, not a decode error, for JSON nested ~1000 deep: it was a dead daemon
    that died again at every restart (the snapshot's position is before the line)."""
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0,
                          extra='[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n')
    deep = b'{"type":"login","ts":%d,"msisdn":"1","channel":"app","x":%s%s}\n' % (NOW, b"[" * 3000, b"]" * 3000)
    path = tmp_path / "in" / "events.jsonl"
    path.write_bytes(deep)
    append(path, dpi(NOW + 1, "1", "review"))
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        r = httpx.post(f"http://127.0.0.1:{listening['port']}/ingest", content=deep)
        assert (202, 1) == (r.status_code, r.json()["errors"])
        append(path, dpi(NOW + 2, "1", "shop"))
        got = wait_for(lambda: sends(tmp_path, ("sms",)), what="the send the lines after the nested ones complete")
    finally:
        assert 0 == stop(proc)
    assert [NOW + 2] == [s["ts"] for s in got]
    assert 2 == logged(tmp_path, "stopped")[-1]["decode_errors"]
