"""The daemon's HTTP endpoints, against a real daemon process on loopback."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.daemon.support import lines, logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import SEQ, dpi

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
    news = 'scenario news when dpi where category == "news" then sms "n" end\n'
    (folder / "scenarios" / "news.kairos").write_text(news)
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


def test_loopback_addresses_are_told_from_the_wildcard_and_other_hosts():
    from kairos._http import is_loopback

    assert [True, True, True, True] == [is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "localhost")]
    assert [False, False, False, False] == [is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "kairos.lan")]


def _ingest_server(tmp_path, listen: str, token: str = ""):
    config = write_config(tmp_path, SEQ, channels=("sms",), interval_s=0, extra=(
        f'[reload]\nwatch = false\n[http]\nlisten = "{listen}"\n' + (f'ingest_token = "{token}"\n' if token else "")))
    proc = start(config)
    (listening,) = wait_for(lambda: logged(tmp_path, "http listening"), what="the HTTP server")
    wait_for(lambda: logged(tmp_path, "ready"), what="the daemon to be ready")
    return proc, listening, f"http://127.0.0.1:{listening['port']}/ingest"


def test_ingest_beyond_loopback_without_a_token_is_off_and_the_start_says_so(tmp_path):
    proc, listening, url = _ingest_server(tmp_path, "0.0.0.0:0")
    try:
        r = httpx.post(url, content=json.dumps(dpi(NOW, "1", "review")) + "\n")
        assert 403 == r.status_code and "ingest_token" in r.json()["error"]
        assert 200 == httpx.get(url.replace("/ingest", "/metrics")).status_code  # the rest still serves
    finally:
        assert 0 == stop(proc)
    assert "off" == listening["ingest"]
    assert logged(tmp_path, "POST /ingest is off: http.listen is not a loopback address and no http.ingest_token is "
                            "set; set http.ingest_token (clients send Authorization: Bearer TOKEN) or listen on "
                            "127.0.0.1 to use it")
    assert 0 == logged(tmp_path, "stopped")[-1]["events"]


def test_ingest_with_a_token_refuses_a_request_without_it_even_on_loopback(tmp_path):
    proc, listening, url = _ingest_server(tmp_path, "127.0.0.1:0", token=TOKEN)
    body = json.dumps(dpi(NOW, "1", "review")) + "\n"
    try:
        assert 401 == httpx.post(url, content=body).status_code
        assert 401 == httpx.post(url, content=body, headers={"Authorization": "Bearer wrong"}).status_code
        r = httpx.post(url, content=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert (202, 1) == (r.status_code, r.json()["accepted"])
    finally:
        assert 0 == stop(proc)
    assert "token" == listening["ingest"]
