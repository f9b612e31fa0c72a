"""bench.live_sweep: the traffic it offers crosses the instant where asked, its spacing unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from bench.live_sweep import shifted


def test_offered_traffic_crosses_the_instant_where_asked_with_its_spacing_kept(tmp_path: Path) -> None:
    source = tmp_path / "w2.jsonl"
    source.write_text("".join(json.dumps({"type": "login", "ts": 1_000 + 7 * k, "msisdn": "1380000000" + str(k),
                                          "channel": "app"}) + "\n" for k in range(10)))
    lines = shifted(source, 8, instant=5_000_000, at=0.25)
    ts = [json.loads(line)["ts"] for line in lines]
    assert len(lines) == 8
    assert ts[2] == 5_000_000
    assert [ts[k + 1] - ts[k] for k in range(7)] == [7] * 7
    assert [json.loads(line)["msisdn"] for line in lines] == ["1380000000" + str(k) for k in range(8)]
