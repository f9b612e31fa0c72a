"""``python -m bench --quick``: one small run writes its JSON with every field and prints the table."""

from __future__ import annotations

import json

from bench._measure import Latency, Measurement
from bench._runner import TARGETS, Results, main


def test_quick_run_writes_json_with_every_field_and_prints_the_table(tmp_path, capsys):
    assert main(["--quick", "--skip", "kafka", "--results", str(tmp_path)]) == 0  # kafka: test_kafka_group.py
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "latest.json").read_text())

    assert set(Results.__struct_fields__) == set(data)
    assert set(data["w1"]) == {"w1-json", "w1-msgspec", "w1-kairos"}
    assert set(data["w2"]) == {"w2-1w", "w2-2w", "w2-2w-partitioned"}
    assert set(data["live"]) == {"live-gc-auto", "live-gc-daemon", "live-gc-off"}
    for m in [*data["w1"].values(), *data["w2"].values(), *data["live"].values()]:
        assert set(Measurement.__struct_fields__) == set(m)
        assert m["events"] > 0 and m["wall_s"] > 0 and m["cpu_s"] > 0 and m["peak_rss_mib"] > 0
    assert data["w1_sends_identical"] and data["w2_outputs_identical"]
    assert len({(m["sends"], m["checksum"]) for m in data["w1"].values()}) == 1
    assert len({m["checksum"] for m in data["w2"].values()}) == 1
    assert data["inputs"]["w2_partitioned"].endswith("-p2")

    one = data["w2"]["w2-1w"]
    assert one["subscribers_in_state"] > 0 and one["state_bytes_per_subscriber"] > 0
    assert one["state_object_bytes_per_subscriber"] > 0 and one["state_breakdown"]
    for live in data["live"].values():
        assert set(Latency.__struct_fields__) == set(live["latency"])
        lat = live["latency"]
        assert 0 <= lat["p50_ms"] <= lat["p99_ms"] <= lat["p999_ms"] <= lat["max_ms"]
        assert live["offered_rate"] == round(one["events_per_s"] / 2)

    assert [t["name"] for t in data["targets"]] == [name for name, *_ in TARGETS]
    assert all(t["measured"] is not None for t in data["targets"])
    assert "w1-kairos" in printed and "w2-2w" in printed and "p99" in printed
    assert 0 < data["two_process_scaling"] < 3  # measured, beside W2's two-worker ratio
    assert "two plain CPU-bound processes" in printed


def test_a_disagreement_between_contenders_fails_the_run_loudly(tmp_path, capsys, monkeypatch):
    from bench import _runner

    real = _runner._contender

    def lying(*args: str) -> Measurement:
        m = real(*args)
        return m if args[0] != "w1-kairos" else Measurement(**{**{f: getattr(m, f) for f in
                                                                   m.__struct_fields__}, "sends": m.sends + 1})

    monkeypatch.setattr(_runner, "_contender", lying)
    assert main(["--quick", "--skip", "w2", "live", "kafka", "--results", str(tmp_path)]) == 1
    assert "decided different sends" in capsys.readouterr().err
    assert not (tmp_path / "latest.json").exists()
