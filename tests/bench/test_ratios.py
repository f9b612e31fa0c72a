"""Ratios and targets are read from one run's Measurements (``bench._ratios``): no timings asserted."""

from __future__ import annotations

import pytest

from bench._measure import Latency, Measurement
from bench._ratios import RATIOS, TARGETS, ratios, targets


def _m(name: str, events_per_s: float, cpu_s: float, workers: int = 1, **extra) -> Measurement:
    """A measurement of 1,000,000 events at ``events_per_s`` that took ``cpu_s`` CPU seconds."""
    fields = {"peak_rss_mib": 100.0, **extra}
    return Measurement(contender=name, events=1_000_000, sends=0, checksum="", wall_s=1_000_000 / events_per_s,
                       cpu_s=cpu_s, events_per_s=events_per_s, workers=workers, **fields)


def _run() -> dict[str, Measurement]:
    """A whole run: every contender of W1 and W2 with the floors."""
    return {
        "w1-floor": _m("w1-floor", 4_000_000, 0.25),
        "w1-json": _m("w1-json", 400_000, 2.5, peak_rss_mib=300.0),
        "w1-msgspec": _m("w1-msgspec", 2_000_000, 0.5, inner_wall_s=0.4),
        "w1-kairos": _m("w1-kairos", 2_000_000, 0.4, inner_wall_s=0.2),
        "w2-floor": _m("w2-floor", 1_000_000, 1.0),
        "w2-1w": _m("w2-1w", 500_000, 2.0),
        "w2-2w": _m("w2-2w", 700_000, 5.0, workers=2),
        "w2-2w-partitioned": _m("w2-2w-partitioned", 900_000, 2.0, workers=2),
    }


def test_a_contender_twice_its_floor_gives_two_and_half_its_floor_a_half():
    r = ratios({"w2-floor": _m("w2-floor", 1_000_000, 1.0), "w2-1w": _m("w2-1w", 2_000_000, 0.5)})
    assert (r["w2_one_vs_floor"], r["w2_one_vs_floor_cpu"]) == (2.0, 2.0)
    r = ratios({"w1-floor": _m("w1-floor", 1_000_000, 1.0), "w1-kairos": _m("w1-kairos", 500_000, 2.0)})
    assert (r["w1_kairos_vs_floor"], r["w1_kairos_vs_floor_cpu"]) == (0.5, 0.5)


def test_every_ratio_of_a_whole_run_is_computed_from_its_two_contenders():
    r = ratios(_run())
    assert r["w1_vs_msgspec"] == 1.0 and r["w1_vs_msgspec_cpu"] == 1.25  # same speed, less CPU
    assert r["w1_vs_json"] == 5.0 and r["w1_kairos_vs_floor"] == 0.5 and r["w1_json_vs_floor"] == 0.1
    assert r["w1_rss_vs_json"] == round(100 / 300, 3)
    assert r["w1_vs_msgspec_in_process"] == 2.0  # each process's own loop: 0.4 s against 0.2 s
    # two workers: by CPU, events per second of one worker's CPU, against one worker's
    assert r["w2_two_vs_one_partitioned"] == 1.8 and r["w2_two_vs_one_partitioned_cpu"] == 2.0
    assert r["w2_two_vs_one"] == 1.4 and r["w2_two_vs_one_cpu"] == 0.8
    assert r["w2_two_partitioned_vs_floor"] == 0.9
    assert {name for name, *_ in RATIOS} <= set(r)


def test_a_ratio_whose_contender_did_not_run_is_left_out():
    run = _run()
    del run["w2-floor"]
    r = ratios(run)
    assert "w2_one_vs_floor" not in r and "w2_two_vs_floor_cpu" not in r
    assert r["w2_two_vs_one"] == 1.4


def _met(name: str, value: float) -> bool:
    r = {"w2_one_vs_floor": 0.0, "w1_vs_msgspec": 0.0, "w1_vs_json": 0.0, "w1_rss_vs_json": 0.0,
         "w2_two_vs_one_partitioned": 0.0}
    state = live = None
    if name == "w2_state_bytes":
        state = _m("w2-1w", 1, 1.0, state_bytes_per_subscriber=value)
    elif name.startswith("live_"):
        p99, p999 = (value, 0.0) if name == "live_p99_ms" else (0.0, value)
        live = _m("live-gc-daemon", 1, 1.0, latency=Latency(0.0, p99, p999, 100.0))
    else:
        r[name] = value
    return next(t.met for t in targets(r, state, live) if t.name == name)


@pytest.mark.parametrize("name, threshold, higher", [(n, t, h) for n, _, t, h in TARGETS])
def test_a_target_is_met_at_its_threshold_and_not_just_past_it(name, threshold, higher):
    worse = threshold * (0.99 if higher else 1.01)
    better = threshold * (1.01 if higher else 0.99)
    assert _met(name, threshold) and _met(name, better)
    assert not _met(name, worse)


def test_the_targets_are_the_issues():
    assert {(n, t, h) for n, _, t, h in TARGETS} == {
        ("w1_vs_msgspec", 1.0, True), ("w1_vs_json", 2.0, True), ("w1_rss_vs_json", 2.0, False),
        ("w2_one_vs_floor", 0.35, True), ("w2_two_vs_one_partitioned", 1.8, True),
        ("w2_state_bytes", 200, False), ("live_p99_ms", 5.0, False), ("live_p999_ms", 20.0, False),
    }


def test_a_target_of_a_part_that_did_not_run_is_not_met_and_has_no_figure():
    for t in targets({}, None, None):
        assert t.measured is None and not t.met
