"""Scenarios without restart, with a real daemon process: watch, SIGHUP, refusal, state kept, audit log."""

from __future__ import annotations

import signal
import time

from tests.daemon.support import lines, log_offset, logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import append, dpi

NOW = time.time_ns() // 1_000_000

SEQ = """scenario review_shop
  when dpi as r where category == "review" -> dpi where category == "shop" within 10m
  then sms "offer.handset" with {site: r.host}
end
"""
NEWS = """scenario news
  when dpi where category == "news"
  then sms "offer.news"
end
"""


def audit(folder):
    return lines(folder / "state" / "audit.jsonl")


def test_a_new_scenario_file_is_published_by_the_watch_and_running_state_is_kept(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",),
                          extra="[reload]\nwatch = true\npoll_ms = 50\n")
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "review", "kept.cn"))
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        wait_for(lambda: logged(tmp_path, "snapshot taken"), what="the review to be processed")
        (tmp_path / "scenarios" / "news.kairos").write_text(NEWS)
        wait_for(lambda: logged(tmp_path, "scenarios reloaded"), what="the reload")
        append(events, dpi(NOW + 1, "1", "shop"), dpi(NOW + 2, "2", "news"))
        wait_for(lambda: len(sends(tmp_path, ("sms",))) == 2, what="sends from the old and the new scenario")
    finally:
        assert 0 == stop(proc)
    assert [("review_shop", {"site": "kept.cn"}), ("news", {})] == [
        (s["scenario"], s["params"]) for s in sends(tmp_path, ("sms",))]
    records = audit(tmp_path)
    assert [("publish", "review_shop", "start"), ("publish", "news", "watch")] == [
        (r["action"], r["scenario"], r["who"]) for r in records]
    assert all(len(r["version"]) == 16 for r in records)


def test_a_bad_file_is_refused_with_its_place_and_the_running_scenarios_go_on(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",),
                          extra="[reload]\nwatch = true\npoll_ms = 50\n")
    events = tmp_path / "in" / "events.jsonl"
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        bad = 'scenario bad\n  when dpi where catgory == "x"\n  then sms "x"\nend\n'
        (tmp_path / "scenarios" / "bad.kairos").write_text(bad)
        (refused,) = wait_for(lambda: logged(tmp_path, "scenario reload refused; the running scenarios go on"),
                              what="the refusal")
        append(events, dpi(NOW, "1", "review"), dpi(NOW + 1, "1", "shop"))
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the running scenario's send")
    finally:
        assert 0 == stop(proc)
    assert "bad.kairos:2:18: error: unknown field 'catgory'" in refused["error"]
    assert ["review_shop"] == [s["scenario"] for s in sends(tmp_path, ("sms",))]
    assert [("publish", "start"), ("refuse", "watch")] == [(r["action"], r["who"]) for r in audit(tmp_path)]


def test_sighup_reloads_a_changed_and_a_withdrawn_scenario_and_audits_both(tmp_path):
    config = write_config(tmp_path, SEQ + NEWS, channels=("sms",), extra="[reload]\nwatch = false\n")
    events = tmp_path / "in" / "events.jsonl"
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        (tmp_path / "scenarios" / "s.kairos").write_text(SEQ.replace("offer.handset", "offer.handset_v2"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: logged(tmp_path, "scenarios reloaded"), what="the reload")
        append(events, dpi(NOW, "1", "news"), dpi(NOW + 1, "1", "review"), dpi(NOW + 2, "1", "shop"))
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the changed scenario's send")
    finally:
        assert 0 == stop(proc)
    assert [("review_shop", "offer.handset_v2")] == [(s["scenario"], s["template"]) for s in sends(tmp_path, ("sms",))]
    records = audit(tmp_path)
    assert [("publish", "review_shop", "start"), ("publish", "news", "start"), ("change", "review_shop", "signal"),
            ("withdraw", "news", "signal")] == [(r["action"], r["scenario"], r["who"]) for r in records]
    assert records[2]["previous"] == records[0]["version"] != records[2]["version"]


def test_a_restart_with_changed_files_audits_the_difference_from_the_snapshot(tmp_path):
    config = write_config(tmp_path, SEQ + NEWS, channels=("sms",), extra="[reload]\nwatch = false\n")
    proc = start(config)
    wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
    assert 0 == stop(proc)
    (tmp_path / "scenarios" / "s.kairos").write_text(SEQ)
    proc = start(config)
    wait_for(lambda: len(logged(tmp_path, "ready")) == 2, what="the daemon to start again")
    assert 0 == stop(proc)
    assert [("publish", "review_shop"), ("publish", "news"), ("withdraw", "news")] == [
        (r["action"], r["scenario"]) for r in audit(tmp_path)]
    assert audit(tmp_path)[-1]["who"] == "start"


# --- what `kairos check` accepts, a reload accepts; a plan that fails to build is refused ---------

#: a line break inside the parentheses of a `where` (it once broke the generated route and the daemon)
BROKEN_LINE = """scenario big
  when dpi where (category
      == "big")
  then sms "offer.big"
end
"""
VICTIM = """scenario victim
  when dpi where category == "victim"
  then sms "offer.victim"
end
"""
#: loaded into the daemon process: the route line of scenario `victim` ends in something that is not
#: Python, as pasted scenario text once did (a code-generator fault, injected)
INJECTED = '''
import kairos.engine._routes as routes

_note = routes.Entry.note


def _broken(self, clause, expr):
    if self.scenario is not None and self.scenario.name == "victim":
        return "\\n  )"
    return _note(self, clause, expr)


routes.Entry.note = _broken
'''


def inject_route_fault(folder, monkeypatch):
    """Every daemon process started after this has the fault of ``INJECTED``."""
    import os

    (folder / "inject").mkdir()
    (folder / "inject" / "sitecustomize.py").write_text(INJECTED)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder / "inject"),
                                                                  os.environ.get("PYTHONPATH")])))


def test_a_file_with_a_line_break_inside_parentheses_is_published_and_runs(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), extra="[reload]\nwatch = true\npoll_ms = 50\n")
    events = tmp_path / "in" / "events.jsonl"
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        (tmp_path / "scenarios" / "big.kairos").write_text(BROKEN_LINE)
        wait_for(lambda: logged(tmp_path, "scenarios reloaded"), what="the reload")
        append(events, dpi(NOW, "1", "big"), dpi(NOW + 1, "2", "small"))
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the new scenario's send")
    finally:
        assert 0 == stop(proc)
    assert [("big", "1")] == [(s["scenario"], s["msisdn"]) for s in sends(tmp_path, ("sms",))]
    assert [("publish", "review_shop"), ("publish", "big")] == [(r["action"], r["scenario"]) for r in audit(tmp_path)]


def test_a_scenario_whose_code_fails_to_build_is_refused_with_its_place_and_the_daemon_goes_on(
        tmp_path, monkeypatch):
    inject_route_fault(tmp_path, monkeypatch)
    config = write_config(tmp_path, SEQ, channels=("sms",), extra="[reload]\nwatch = true\npoll_ms = 50\n")
    events = tmp_path / "in" / "events.jsonl"
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        (tmp_path / "scenarios" / "victim.kairos").write_text(VICTIM)
        (refused,) = wait_for(lambda: logged(tmp_path, "scenario reload refused; the running scenarios go on"),
                              what="the refusal")
        append(events, dpi(NOW, "1", "review"), dpi(NOW + 1, "1", "shop"), dpi(NOW + 2, "1", "victim"))
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the running scenario's send")
    finally:
        assert 0 == stop(proc)
    assert refused["error"].startswith(f"{tmp_path}/scenarios/victim.kairos:1:1: error: scenario 'victim': "
                                       "internal error while generating the route for dpi events: ")
    assert ["review_shop"] == [s["scenario"] for s in sends(tmp_path, ("sms",))]
    assert [("publish", "start"), ("refuse", "watch")] == [(r["action"], r["who"]) for r in audit(tmp_path)]


def test_a_daemon_whose_scenarios_fail_to_build_does_not_start_and_says_where(tmp_path, monkeypatch):
    from tests.daemon.test_run import run_briefly

    inject_route_fault(tmp_path, monkeypatch)
    config = write_config(tmp_path, SEQ + VICTIM, channels=("sms",))
    result = run_briefly(config)
    assert 1 == result.returncode
    assert result.stderr.startswith(f"kairos run: {tmp_path}/scenarios/s.kairos:5:1: error: scenario 'victim': "
                                    "internal error while generating the route for dpi events: ")
    assert "Traceback" not in result.stderr


def test_a_refused_reload_whose_audit_log_cannot_be_written_is_still_just_a_refusal(tmp_path):
    """A full or broken disk under the audit log must not turn a refused reload into a dead daemon."""
    from types import SimpleNamespace

    from kairos._config import load_config
    from kairos._reload import AuditLog, Reloader

    config = load_config(write_config(tmp_path, SEQ, channels=("sms",)))
    (tmp_path / "scenarios" / "s.kairos").write_text("scenario broken\n  when dpi where\nend\n")
    unwritable = tmp_path / "audit-is-a-folder"
    unwritable.mkdir()
    reloader = Reloader(SimpleNamespace(config=config), AuditLog(unwritable), poll_s=1)  # type: ignore[arg-type]
    result = reloader.reload("test")
    assert (False, 1) == (result.ok, reloader.refused)
    assert "s.kairos:" in (result.error or "")


def test_a_reload_adding_a_calendar_aggregate_starts_it_empty_and_says_so(tmp_path):
    config = write_config(tmp_path, SEQ, channels=("sms",), extra="[reload]\nwatch = true\npoll_ms = 50\n")
    events = tmp_path / "in" / "events.jsonl"
    append(events, dpi(NOW, "1", "news"))  # before the reload: not counted by the new term
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to start")
        wait_for(lambda: logged(tmp_path, "snapshot taken"), what="the first event to be processed")
        (tmp_path / "scenarios" / "daily.kairos").write_text(
            'scenario daily_news\n  when dpi where category == "news"\n'
            '  then sms "offer.news" with {n: count(dpi where category == "news") in day(0)}\nend\n')
        (started,) = wait_for(lambda: logged(tmp_path, "calendar term starts empty"), what="the reload")
        append(events, dpi(NOW + 1, "1", "news"))
        wait_for(lambda: sends(tmp_path, ("sms",)), what="the new scenario's send")
    finally:
        assert 0 == stop(proc)
    assert (started["scenario"], started["term"]) == ("daily_news", 'count|dpi|category == "news"||day')
    assert [("daily_news", {"n": 1})] == [(s["scenario"], s["params"]) for s in sends(tmp_path, ("sms",))]


def test_a_reload_reading_a_calendar_aggregate_deeper_says_its_older_periods_start_empty(tmp_path):
    daily = ('scenario daily_news\n  when dpi where category == "news"\n'
             '  then sms "offer.news" with {n: count(dpi where category == "news") in day(-DEPTH)}\nend\n')
    config = write_config(tmp_path, daily.replace("DEPTH", "1"), channels=("sms",),
                          extra="[reload]\nwatch = true\npoll_ms = 50\n")
    append(tmp_path / "in" / "events.jsonl", dpi(NOW, "1", "news"))
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "snapshot taken"), what="the first event to be processed")
        (tmp_path / "scenarios" / "s.kairos").write_text(daily.replace("DEPTH", "3"))
        (said,) = wait_for(lambda: logged(tmp_path, "calendar term reads deeper than its state: the older periods "
                                                    "start empty"), what="the reload")
    finally:
        assert 0 == stop(proc)
    assert (said["scenario"], said["term"], said["periods_kept"], said["periods_read"]) == (
        "daily_news", 'count|dpi|category == "news"||day', 1, 3)
    assert not logged(tmp_path, "calendar term starts empty")


def test_a_restart_reading_a_calendar_aggregate_deeper_says_its_older_periods_start_empty(tmp_path):
    daily = ('scenario daily_news\n  when dpi where category == "news"\n'
             '  then sms "offer.news" with {n: count(dpi where category == "news") in day(-DEPTH)}\nend\n')
    config = write_config(tmp_path, daily.replace("DEPTH", "1"), channels=("sms",))
    append(tmp_path / "in" / "events.jsonl", dpi(NOW, "1", "news"))
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "snapshot taken"), what="the first event to be processed")
    finally:
        assert 0 == stop(proc)
    (tmp_path / "scenarios" / "s.kairos").write_text(daily.replace("DEPTH", "3"))
    since = log_offset(tmp_path)
    proc = start(config)
    try:
        wait_for(lambda: logged(tmp_path, "ready", since), what="the restart")
    finally:
        assert 0 == stop(proc)
    (said,) = logged(tmp_path, "calendar term reads deeper than its state: the older periods start empty", since)
    assert (said["unit"], said["scenario"], said["periods_kept"], said["periods_read"]) == ("all", "daily_news", 1, 3)
