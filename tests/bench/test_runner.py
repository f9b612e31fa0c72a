"""``python -m bench --quick``: one small run writes its JSON with every field and prints the table."""

from __future__ import annotations

import json

import msgspec

from bench._measure import Latency, Measurement
from bench._ratios import RATIOS
from bench._runner import TARGETS, Results, main


def test_quick_run_writes_json_with_every_field_and_prints_the_table(tmp_path, capsys):
    assert main(["--quick", "--skip", "kafka", "--results", str(tmp_path)]) == 0  # kafka: test_kafka_group.py
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "latest.json").read_text())

    assert set(Results.__struct_fields__) == set(data)
    assert set(data["w1"]) == {"w1-json", "w1-msgspec", "w1-kairos"}
    assert all(m["whole_process"] for m in data["w1"].values())  # W1 timed spawn to exit, start-up included
    assert data["w1"]["w1-kairos"]["inner_wall_s"] is not None  # and kairos replay's own figure kept beside
    assert set(data["floors"]) == {"w1", "w2"}
    for name, floor in data["floors"].items():  # each floor decoded every event of its contenders' input
        contenders = data[name].values()
        assert floor["contender"] == f"{name}-floor" and {floor["events"]} == {m["events"] for m in contenders}
    assert {r for r, *_ in RATIOS} | {f"{r}_cpu" for r, *_ in RATIOS} <= set(data["ratios"])
    assert set(data["w2"]) == {"w2-1w", "w2-2w", "w2-2w-partitioned"}
    assert set(data["live"]) == {"live-gc-auto", "live-gc-daemon", "live-gc-off"}
    for m in [*data["w1"].values(), *data["w2"].values(), *data["live"].values(), *data["floors"].values()]:
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
    w1_target = next(line for line in printed.splitlines() if line.startswith("W1 Kairos / msgspec loop, events/s"))
    assert f"(by CPU {data['ratios']['w1_vs_msgspec_cpu']:.3f})" in w1_target  # the steadier figure beside it
    assert "w1-kairos" in printed and "w2-2w" in printed and "p99" in printed
    assert 0 < data["two_process_scaling"] < 3  # measured, beside W2's two-worker ratio
    assert set(data["machine"]) >= {"cpu", "cores", "python", "load_average", "load_average_end"}
    # the machine first, then the ratios, then the absolute figures
    assert printed.index("two plain CPU-bound processes") < printed.index("W1 Kairos / W1 floor") \
        < printed.index("w1-kairos ")


def test_a_disagreement_between_contenders_fails_the_run_loudly(tmp_path, capsys, monkeypatch):
    from bench import _runner

    real = _runner.run_w1

    def lying(name: str, *args, **kwargs) -> Measurement:
        m = real(name, *args, **kwargs)
        return m if name != "w1-kairos" else msgspec.structs.replace(m, checksum="0" * 24)

    monkeypatch.setattr(_runner, "run_w1", lying)
    assert main(["--quick", "--skip", "w2", "live", "kafka", "--results", str(tmp_path)]) == 1
    assert "decided different sends" in capsys.readouterr().err
    assert not (tmp_path / "latest.json").exists()


def test_the_progress_text_names_one_worker_in_the_singular_and_a_partitioned_log(tmp_path):
    from bench._runner import _what

    assert _what(("w2", "--events", str(tmp_path / "f.jsonl"), "--workers", "1")) == "w2, one worker"
    assert _what(("w2", "--events", str(tmp_path), "--workers", "2")) == "w2, 2 workers over a partitioned log"
    assert _what(("w1-floor", "--events", "f")) == "w1-floor"
