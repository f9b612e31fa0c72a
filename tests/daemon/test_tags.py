"""Written tags in the daemon (LANGUAGE.md §9.3): the metric, the ``tags_out`` file, and what a restart that
reads ``tags.jsonl`` again keeps — a written tag stays, the file's other tags are the file's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.daemon.support import lines, logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_http import metric
from tests.daemon.test_run import append, dpi

NOW = time.time_ns() // 1_000_000
M = "13800000001"

SCENARIOS = """
scenario home_cell
  when dpi as d where category == "home"
  set tags.home_cell = d.host, tags.segment = null
end

scenario offer
  audience tags.home_cell != null
  when dpi where category == "shop"
  then sms "offer" with {home: tags.home_cell, region: tags.region, segment: tags.segment}
end
"""


def _tags(folder: Path, region: str) -> None:
    ref = folder / "ref"
    ref.mkdir(exist_ok=True)
    (ref / "tags.jsonl").write_text(json.dumps({"msisdn": M, "tags": {"region": region, "segment": "a"}}) + "\n")


def test_tag_writes_are_counted_recorded_and_survive_a_restart_that_reads_tags_jsonl_again(tmp_path):
    _tags(tmp_path, "north")
    config = write_config(tmp_path, SCENARIOS, channels=("sms",), interval_s=0, reference="ref",
                          extra='[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n')
    config.write_text('tags_out = "out/tags.jsonl"\n' + config.read_text())  # a top-level key: before the tables
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, M, "home", "CELL-7"), dpi(NOW + 1, M, "shop"))
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the offer reading the written tag")
        text = httpx.get(f"http://127.0.0.1:{listening['port']}/metrics").text
        assert 1 == metric(text, 'kairos_tag_writes_total{scenario="home_cell"}')
        assert 'kairos_tag_writes_total{scenario="offer"}' not in text  # it writes no tag
    finally:
        assert 0 == stop(proc)
    assert lines(tmp_path / "out" / "tags.jsonl") == [
        {"scenario": "home_cell", "msisdn": M, "ts": NOW, "tags": {"home_cell": "CELL-7", "segment": None}}]

    _tags(tmp_path, "south")  # the operator's new reference data, read at the restart
    append(events, dpi(NOW + 2, M, "shop"))
    proc = start(config)
    try:
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="the second offer")
    finally:
        assert 0 == stop(proc)
    got = [s["params"] for s in sends(tmp_path, ("sms",))]
    assert got == [{"home": "CELL-7", "region": "north", "segment": None},
                   {"home": "CELL-7", "region": "south", "segment": None}]  # the written removal stays too
    log = (tmp_path / "daemon.log").read_text()
    assert M not in log  # a subscriber's number is never logged


def test_a_tags_out_file_that_cannot_be_written_is_counted_and_logged_and_the_daemon_goes_on(tmp_path):
    _tags(tmp_path, "north")
    config = write_config(tmp_path, SCENARIOS.replace("set tags.home_cell", 'then sms "home"\n  set tags.home_cell'),
                          channels=("sms",), interval_s=0, reference="ref",
                          extra='[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\n')
    config.write_text('tags_out = "/dev/full"\n' + config.read_text())  # every write fails: no space left
    events = tmp_path / "in" / "events.jsonl"
    # a host longer than the file's buffer: its line is written through at once, and fails at once
    append(events, dpi(NOW, M, "home", "h" * 20_000), dpi(NOW + 1, M, "shop"))
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="both sends, the writer's own too")
        text = httpx.get(f"http://127.0.0.1:{listening['port']}/metrics").text
        assert 1 == metric(text, "kairos_tags_out_errors_total")
        assert 1 == metric(text, 'kairos_tag_writes_total{scenario="home_cell"}')
    finally:
        assert 0 == stop(proc)
    (failed, *_) = logged(tmp_path, "the tag writes file could not be written")
    assert failed["path"] == "/dev/full" and failed["tags_out_errors"] == 1
    assert M not in (tmp_path / "daemon.log").read_text()


def test_tags_out_cut_short_by_a_crash_gets_its_next_write_on_a_line_of_its_own(tmp_path):
    _tags(tmp_path, "north")
    config = write_config(tmp_path, SCENARIOS, channels=("sms",), interval_s=0, reference="ref",
                          extra="[reload]\nwatch = false\n")
    config.write_text('tags_out = "out/tags.jsonl"\n' + config.read_text())
    half = b'{"scenario":"home_cell","msisdn":"13800000009","ts":1'  # the crash cut this line
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tags.jsonl").write_bytes(half)
    append(tmp_path / "in" / "events.jsonl", dpi(NOW, M, "home", "CELL-7"), dpi(NOW + 1, M, "shop"))
    proc = start(config)
    try:
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the offer after the write")
    finally:
        assert 0 == stop(proc)
    first, second, *more = (tmp_path / "out" / "tags.jsonl").read_bytes().split(b"\n")
    assert (first, more) == (half, [b""])
    assert json.loads(second) == {"scenario": "home_cell", "msisdn": M, "ts": NOW,
                                  "tags": {"home_cell": "CELL-7", "segment": None}}
