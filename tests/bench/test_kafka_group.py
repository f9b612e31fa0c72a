"""``bench.kafka_group`` runs on a small input and fails loudly when the group's sends are not replay's."""

from __future__ import annotations

import json

import pytest

from bench import kafka_group
from kairos import traffic


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("traffic")
    traffic.write(folder / "events.jsonl", subscribers=400, hours=12, seed=4)
    traffic.make_reference(folder / "ref", 400, 4)
    return folder


def test_the_kafka_group_benchmark_runs_one_instance_and_two_and_compares_them_with_replay(small, tmp_path, capsys):
    status = kafka_group.main(["--events", str(small / "events.jsonl"), "--reference", str(small / "ref"),
                               "--keep", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    assert 0 == status
    assert "one instance:" in printed and "two instances:" in printed and "two instances / one:" in printed
    assert 2 == printed.count("sends equal replay: True")


def test_the_kafka_group_benchmark_fails_loudly_when_the_sends_differ_from_replay(small, tmp_path, capsys,
                                                                                  monkeypatch):
    real = kafka_group._replay

    def one_more(*args):
        sends = real(*args)
        return {**sends, "made-up": json.dumps({"id": "made-up"}).encode()}

    monkeypatch.setattr(kafka_group, "_replay", one_more)
    status = kafka_group.main(["--events", str(small / "events.jsonl"), "--reference", str(small / "ref"),
                               "--keep", str(tmp_path / "run")])
    assert 1 == status
    assert "did not deliver exactly the sends of one replay" in capsys.readouterr().err
