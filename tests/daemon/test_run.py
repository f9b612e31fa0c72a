"""``kairos run`` as a real process: configuration errors, SIGTERM, restart, idle time, lateness, rotation, stdin."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from kairos._pseudonym import Pseudonymiser
from tests.daemon.support import KAIROS, lines, logged, sends, start, stop, wait_for, write_config

NOW = time.time_ns() // 1_000_000

SEQ = """
scenario review_shop
  when dpi as r where category == "review" -> dpi where category == "shop" within 10m
  then sms "offer.handset" with {site: r.host}
end
"""

ABSENT = """
scenario no_topup
  when usage as u where pct >= 90 -> not topup within 1s
  then sms "care.topup" with {pct: u.pct}
end
"""


def append(path: Path, *events: dict) -> None:
    with open(path, "a") as f:
        for ev in events:
            f.write(json.dumps(ev) + "\n")


def dpi(ts: int, m: str, category: str, host: str = "a.cn") -> dict:
    return {"type": "dpi", "ts": ts, "msisdn": m, "host": host, "category": category}


def buffered_in_snapshot(folder: Path) -> int | None:
    """How many events wait in the lateness buffer of the published snapshot (None: no snapshot yet)."""
    import msgspec

    from kairos.engine import decode_snapshot
    from kairos._units import UnitState

    path = folder / "state" / "snapshot.bin"
    if not path.exists():
        return None
    extra = msgspec.msgpack.decode(decode_snapshot(path.read_bytes()).extra, type=UnitState)
    return len(msgspec.msgpack.decode(extra.buffered))


def run_briefly(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(KAIROS + ["run", "--config", str(config)], capture_output=True, text=True, timeout=60)


# --- configuration -----------------------------------------------------------------

def test_an_unknown_configuration_key_is_named_with_its_section_and_the_daemon_does_not_start(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",))
    config.write_text(config.read_text().replace("idle_after_ms", "idle_afterms"))
    result = run_briefly(config)
    assert 1 == result.returncode
    assert "`time`: Object contains unknown field `idle_afterms`" in result.stderr
    assert "kairos.example.toml" in result.stderr


def test_a_scenario_using_an_unconfigured_channel_is_refused_at_start_with_its_place_and_the_table_to_add(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("popup",))
    result = run_briefly(config)
    assert 1 == result.returncode
    assert (
        f"kairos run: {tmp_path}/scenarios/s.kairos:4:8: error: channel 'sms' is not configured: {config} has no "
        "[channels.sms] table (it has: popup)\n"
        '  then sms "offer.handset" with {site: r.host}\n'
        "       ^\n"
        f"A scenario sends on 'sms', which {config} does not configure; add to it:\n"
        "\n"
        "[channels.sms]\n"
        'plugin = "sms"   # then the plugin\'s own keys (docs/channels.md)\n'
    ) == result.stderr


def test_a_channel_with_an_unknown_plugin_is_refused_with_the_registered_ones(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",))
    config.write_text(config.read_text().replace('plugin = "file"', 'plugin = "fax"'))
    result = run_briefly(config)
    assert 1 == result.returncode
    assert "channels.sms: no channel plugin named 'fax'" in result.stderr


def test_a_damaged_snapshot_stops_the_start_and_says_how_to_go_on(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "snapshot.bin").write_bytes(b"KAIROS-SNAPSHOT\n\xc1garbage")
    result = run_briefly(config)
    assert 1 == result.returncode
    assert "damaged snapshot" in result.stderr and "Move the file away" in result.stderr


# --- stop and restart --------------------------------------------------------------

def test_sigterm_takes_a_final_snapshot_and_a_restart_continues_a_partial_match(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0)
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review", "first.cn"), dpi(NOW + 1, "2", "review"), dpi(NOW + 2, "2", "shop"))
    proc = start(config)
    wait_for(lambda: len(sends(tmp_path, ("sms",))) == 1, what="the first send")
    assert 0 == stop(proc)
    assert (tmp_path / "state" / "snapshot.bin").exists()
    assert logged(tmp_path, "snapshot taken")[-1]["reason"] == "shutdown"

    append(events, dpi(NOW + 3, "1", "shop"))  # completes subscriber 1's match from before the stop
    proc = start(config)
    wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="the second send")
    assert 0 == stop(proc)
    got = [(s["msisdn"], s["params"]) for s in sends(tmp_path, ("sms",))]
    assert [("2", {"site": "a.cn"}), ("1", {"site": "first.cn"})] == got
    assert logged(tmp_path, "source resumes")[-1]["offset"] > 0


def test_a_snapshot_taken_in_a_forked_child_restores_the_state(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0.1, fork=True)
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review", "forked.cn"))
    proc = start(config)
    wait_for(lambda: any(r["forked"] and r["reason"] == "periodic" for r in logged(tmp_path, "snapshot taken")),
             what="a forked periodic snapshot")
    proc.kill()  # no final snapshot: only the forked one can carry the partial match
    proc.wait(10)
    append(events, dpi(NOW + 1, "1", "shop"))
    proc = start(config)
    wait_for(lambda: sends(tmp_path, ("sms",)), what="the send completing the restored match")
    assert 0 == stop(proc)
    assert [{"site": "forked.cn"}] == [s["params"] for s in sends(tmp_path, ("sms",))]


# --- time --------------------------------------------------------------------------

def test_idle_sources_let_wall_clock_time_fire_a_not_within_deadline(tmp_path):
    config = write_config(tmp_path, ABSENT, channels=("sms",), idle_advance=True)
    now = time.time_ns() // 1_000_000
    append(tmp_path / "in" / "events.jsonl", {"type": "usage", "ts": now, "msisdn": "7", "pct": 95})
    proc = start(config)
    try:
        got = wait_for(lambda: sends(tmp_path, ("sms",)), timeout=30, what="the deadline's send")
    finally:
        assert 0 == stop(proc)
    assert [(f"no_topup:7:{now + 1000}", now + 1000)] == [(s["id"], s["ts"]) for s in got]


def test_events_out_of_order_within_the_lateness_are_ordered_and_later_ones_are_counted_and_logged(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), lateness_ms=5_000,
                          extra='[log]\npseudonym_key = "k"\n')
    events = tmp_path / "in" / "events.jsonl"
    # the shop visit is recorded before the review it follows (2 s apart, inside the lateness)
    append(events, dpi(NOW + 2_000, "1", "shop"), dpi(NOW, "1", "review"),
           dpi(NOW + 60_000, "9", "news"))  # moves time on: the two above are released in ts order
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the ordered sequence's send")
        append(events, dpi(NOW + 1_000, "1", "review"))  # 59 s behind the newest: past the lateness
        wait_for(lambda: logged(tmp_path, "late event not processed"), what="the late event's log record")
    finally:
        assert 0 == stop(proc)
    (late,) = logged(tmp_path, "late event not processed")
    # the subscriber is named by the keyed pseudonym of the number, never the number
    assert (late["msisdn"], late["ts"], late["late_events"]) == (Pseudonymiser(b"k").of("1"), NOW + 1_000, 1)
    assert [NOW + 2_000] == [s["ts"] for s in sends(tmp_path, ("sms",))]
    assert logged(tmp_path, "stopped")[-1]["late"] == 1


# --- sources -----------------------------------------------------------------------

def test_a_rotated_input_file_is_read_to_its_end_and_the_new_one_from_its_start(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",))
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review"))
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        append(events, dpi(NOW + 1, "1", "shop"))
        os.rename(events, tmp_path / "in" / "events.jsonl.1")
        append(tmp_path / "in" / "events.jsonl.1", dpi(NOW + 2, "2", "review"))  # late writes to the old file
        append(events, dpi(NOW + 3, "2", "shop"))
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="sends from both files")
    finally:
        assert 0 == stop(proc)
    assert ["1", "2"] == [s["msisdn"] for s in sends(tmp_path, ("sms",))]


def test_a_file_rotated_while_the_daemon_was_down_is_finished_before_the_new_one(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0)
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review"))
    proc = start(config)
    wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
    assert 0 == stop(proc)
    append(events, dpi(NOW + 1, "1", "shop"))  # written after the stop, then rotated away
    os.rename(events, tmp_path / "in" / "events.jsonl.1")
    append(events, dpi(NOW + 2, "2", "review"), dpi(NOW + 3, "2", "shop"))
    proc = start(config)
    try:
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="sends from both files")
    finally:
        assert 0 == stop(proc)
    assert ["1", "2"] == [s["msisdn"] for s in sends(tmp_path, ("sms",))]


def test_a_directory_source_reads_its_files_in_name_order_and_picks_up_new_ones(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",),
                          sources='[[sources]]\nkind = "file"\npath = "in"\npoll_ms = 20\n')
    append(tmp_path / "in" / "a.jsonl", dpi(NOW, "1", "review"))
    append(tmp_path / "in" / "b.jsonl", dpi(NOW + 1, "1", "shop"))
    proc = start(config)
    try:
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 1, what="a send across two files")
        append(tmp_path / "in" / "c.jsonl", dpi(NOW + 2, "2", "review"), dpi(NOW + 3, "2", "shop"))
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="a send from a new file")
    finally:
        assert 0 == stop(proc)


def test_standard_input_is_a_source_and_bad_lines_are_logged_and_counted(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), sources='[[sources]]\nkind = "stdin"\n')
    proc = start(config, stdin=subprocess.PIPE)
    try:
        proc.stdin.write((json.dumps(dpi(NOW, "1", "review")) + "\nnot json\n"
                          + json.dumps(dpi(NOW + 1, "1", "shop")) + "\n").encode())
        proc.stdin.flush()
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send from standard input")
    finally:
        assert 0 == stop(proc)
    (bad,) = logged(tmp_path, "bad input line skipped")
    assert (bad["line"], bad["decode_errors"]) == ("not json", 1)
    assert 1 == len(lines(tmp_path / "out" / "sms.jsonl"))


def test_events_waiting_in_the_lateness_buffer_survive_a_restart(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), lateness_ms=60_000, interval_s=0.1)
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review", "buffered.cn"), dpi(NOW + 1, "1", "shop"))
    proc = start(config)
    wait_for(lambda: buffered_in_snapshot(tmp_path) == 2, what="a snapshot holding both events in the buffer")
    assert 0 == stop(proc)
    assert [] == sends(tmp_path, ("sms",))  # both still wait: the newest event is not 60 s past them
    append(events, dpi(NOW + 120_000, "9", "news"))  # releases them, after the restart
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send from the buffered events")
    finally:
        assert 0 == stop(proc)
    assert [{"site": "buffered.cn"}] == [s["params"] for s in sends(tmp_path, ("sms",))]
    assert 2 == logged(tmp_path, "snapshot loaded")[-1]["buffered"]


def test_a_final_snapshot_that_cannot_be_written_is_reported_and_the_exit_status_says_so(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0)
    proc = start(config)
    wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
    (tmp_path / "state" / "snapshot.bin.tmp").mkdir(parents=True)  # the temporary file cannot be created
    assert 3 == stop(proc)  # EXIT_SNAPSHOT_FAILED
    (failed,) = logged(tmp_path, "the final snapshot failed; the previous one stays and a restart resumes from it "
                                 "(the outbox drops repeated sends)")
    assert "snapshot.bin.tmp" in failed["error"]


TEMPLATES = '[templates."offer.handset"]\nsms = "A contract for the handset you read about on {site}."\n'


def test_the_template_catalogue_beside_the_scenarios_renders_the_sent_text(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",))
    (tmp_path / "scenarios" / "templates.toml").write_text(TEMPLATES)
    append(tmp_path / "in" / "events.jsonl", dpi(NOW, "1", "review", "phones.cn"), dpi(NOW + 1, "1", "shop"))
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the send")
    finally:
        assert 0 == stop(proc)
    assert ["A contract for the handset you read about on phones.cn."] == [s["text"] for s in sends(tmp_path, ("sms",))]


def test_an_action_whose_template_is_missing_from_the_catalogue_is_refused_at_start(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",))
    (tmp_path / "scenarios" / "templates.toml").write_text(TEMPLATES.replace("offer.handset", "offer.other"))
    result = run_briefly(config)
    assert 1 == result.returncode
    assert "s.kairos:4:" in result.stderr and "offer.handset" in result.stderr
