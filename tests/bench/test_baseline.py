"""W1's hand-written baselines and Kairos decide the same sends (the bench's correctness check)."""

from __future__ import annotations

import io
import json

import pytest

from bench import baseline
from bench._contenders import w1_json, w1_kairos, w1_msgspec
from kairos import traffic

T0 = 1_795_363_200_000
M = 60_000


def _video(ts: int, m: str, category: str = "video") -> dict:
    return {"type": "dpi", "ts": ts, "msisdn": m, "host": "v.example.com", "app": "v", "category": category}


def _oracle(events: list[dict]) -> list[tuple[str, int]]:
    """W1 by brute force, straight from LANGUAGE.md: count the videos in [t − 10m, t]
    at every video; send if >= 20 and no send of this subscriber in (t − 60m, t]."""
    sends: list[tuple[str, int]] = []
    for i, ev in enumerate(events):
        if ev["type"] != "dpi" or ev.get("category") != "video":
            continue
        m, t = ev["msisdn"], ev["ts"]
        n = sum(1 for e in events[: i + 1]
                if e["msisdn"] == m and e.get("category") == "video" and t - 10 * M <= e["ts"] <= t)
        last = max((ts for mm, ts in sends if mm == m), default=None)
        if n >= 20 and (last is None or t >= last + 60 * M):
            sends.append((m, t))
    return sends


def _boundaries() -> list[dict]:
    """Windows and cool-downs that end exactly on an event, for three subscribers."""
    evs = []
    # a: 20 videos spread over exactly 10 minutes (both ends in the window) → a send at the 20th
    evs += [_video(T0 + i * 30_000, "a") for i in range(19)]
    evs.append(_video(T0 + 10 * M, "a"))
    # a again exactly 60 minutes after its send (no longer cooling) and 1 ms before (cooling)
    evs += [_video(T0 + 60 * M + 10 * M - 1 - (19 - i) * 1000, "a") for i in range(20)]
    evs += [_video(T0 + 70 * M + i, "a") for i in range(20)]
    # b: 20 videos over 10 minutes and 1 ms → the first has left the window, no send
    evs += [_video(T0 + i * 30_000, "b") for i in range(19)] + [_video(T0 + 10 * M + 1, "b")]
    # c: 19 videos and 19 other DPI sessions in one second: the others do not count
    evs += [_video(T0 + 5 * M + i, "c", "news" if i % 2 else "video") for i in range(38)]
    evs.sort(key=lambda e: e["ts"])
    return evs


def _write(tmp_path, events: list[dict]):
    path = tmp_path / "w1.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_baselines_and_kairos_agree_with_the_language_at_window_and_cooldown_boundaries(tmp_path):
    events = _boundaries()
    path = _write(tmp_path, events)
    expected = _oracle(events)
    assert expected == [("a", T0 + 10 * M), ("a", T0 + 70 * M)]  # the oracle reads the spec so
    assert sorted(expected) == sorted(baseline.run_json(path.read_bytes().splitlines()))
    assert sorted(expected) == sorted(baseline.run_msgspec(io.BytesIO(path.read_bytes())))
    k = w1_kairos(path)
    assert (k.sends, k.checksum) == (len(expected), baseline.checksum(expected))


def test_baselines_and_kairos_send_the_same_on_generated_w1_traffic(tmp_path):
    path = tmp_path / "w1.jsonl"
    traffic.write(path, subscribers=300, events=30_000, hours=2, seed=4, mix="w1")
    runs = [w1_json(path), w1_msgspec(path), w1_kairos(path)]
    assert runs[0].sends > 10  # enough sends to make agreement mean something
    assert {(r.events, r.sends, r.checksum) for r in runs} == {(runs[0].events, runs[0].sends, runs[0].checksum)}


@pytest.mark.parametrize("sends_a, sends_b", [([("1", 5), ("2", 7)], [("2", 7), ("1", 5)])])
def test_the_checksum_ignores_order_but_not_content(sends_a, sends_b):
    assert baseline.checksum(sends_a) == baseline.checksum(sends_b)
    assert baseline.checksum(sends_a) != baseline.checksum([("1", 5), ("2", 8)])
