"""The daemon's HTTP endpoints, against a real daemon process on loopback."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.daemon.support import lines, logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import SEQ, append, dpi

NOW = time.time_ns() // 1_000_000
TOKEN = "s3cret-token"


@pytest.fixture
def daemon(tmp_path):
    """A running daemon with HTTP on a free loopback port; yields (folder, base URL)."""
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0,
                          extra=f'[reload]\nwatch = false\n[http]\nlisten = "127.0.0.1:0"\nadmin_token = "{TOKEN}"\n')
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
        wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to be ready")
        yield tmp_path, f"http://127.0.0.1:{listening['port']}"
    finally:
        assert 0 == stop(proc)


def metric(text: str, name: str) -> float:
    """One sample's value from the Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_health_and_ready_answer_200_once_the_daemon_runs(daemon):
    folder, url = daemon
    assert (200, {"status": "ok"}) == (lambda r: (r.status_code, r.json()))(httpx.get(url + "/health"))
    assert (200, {"ready": True}) == (lambda r: (r.status_code, r.json()))(httpx.get(url + "/ready"))
    # what was loaded before "ready" is frozen: full collections no longer walk it (the live p99)
    assert logged(folder, "ready")[0]["gc_frozen"] > 0


def test_ingested_lines_are_processed_like_a_source_and_show_in_the_metrics(daemon):
    folder, url = daemon
    body = "\n".join([json.dumps(dpi(NOW, "1", "review")), "{bad", json.dumps(dpi(NOW + 1, "1", "shop"))])
    r = httpx.post(url + "/ingest", content=body)
    assert (202, {"accepted": 2, "errors": 1, "not_owned": 0, "too_far_ahead": 0}) == (r.status_code, r.json())
    wait_for(lambda: sends(folder, ("sms",)), what="the send")
    def delivered() -> str | None:
        text = httpx.get(url + "/metrics").text
        return text if 'kairos_outbox_delivered_total{channel="sms"} 1.0' in text else None

    text = wait_for(delivered, what="the delivery in the metrics")
    assert 2 == metric(text, 'kairos_events_total{type="dpi"}')
    assert 1 == metric(text, "kairos_decode_errors_total")
    assert 1 == metric(text, 'kairos_sends_total{channel="sms",scenario="review_shop"}')
    assert 1 == metric(text, 'kairos_triggers_total{scenario="review_shop"}')
    assert 0 == metric(text, "kairos_late_events_total")
    assert 0 == metric(text, "kairos_outbox_pending")


def test_admin_endpoints_need_the_bearer_token(daemon):
    _, url = daemon
    assert 401 == httpx.post(url + "/admin/reload").status_code
    assert 401 == httpx.post(url + "/admin/snapshot", headers={"Authorization": "Bearer wrong"}).status_code


def test_an_admin_reload_is_audited_with_the_requesting_user(daemon):
    folder, url = daemon
    (folder / "scenarios" / "news.kairos").write_text('scenario news when dpi where category == "news" then sms "n" end\n')
    r = httpx.post(url + "/admin/reload", headers={"Authorization": f"Bearer {TOKEN}", "X-Kairos-User": "alice"})
    assert (200, ["news"]) == (r.status_code, r.json()["published"])
    assert ("publish", "news", "alice") == tuple(lines(folder / "state" / "audit.jsonl")[-1][k]
                                                for k in ("action", "scenario", "who"))


def test_a_refused_admin_reload_answers_422_with_the_error(daemon):
    folder, url = daemon
    (folder / "scenarios" / "bad.kairos").write_text("scenario bad when nothing then sms \"x\" end\n")
    r = httpx.post(url + "/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 422 == r.status_code
    assert "bad.kairos:1:19: error:" in r.json()["error"]


def test_an_admin_snapshot_is_taken_and_measured(daemon):
    folder, url = daemon
    r = httpx.post(url + "/admin/snapshot", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 200 == r.status_code and r.json()["bytes"] > 0
    assert (folder / "state" / "snapshot.bin").stat().st_size == r.json()["bytes"]
    text = httpx.get(url + "/metrics").text
    assert metric(text, "kairos_snapshots_total") >= 1
    assert metric(text, "kairos_snapshot_bytes") == r.json()["bytes"]
