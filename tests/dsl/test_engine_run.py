"""Compiled plans run in the engine: the front end and the runtime agree end to end."""

from __future__ import annotations

from kairos.engine import Engine, Reference
from kairos.engine._events import Dpi, Usage
from tests.dsl.support import T0, compile_one

M = 60_000


def _run(text: str, events: list) -> list:
    sends: list = []
    engine = Engine(compile_one(text), Reference(), sink=sends.append)
    for ev in events:
        engine.on_event(ev)
    engine.finish()
    return sends


def test_a_threshold_crossing_sends_once_per_cycle_with_its_parameters():
    text = """
scenario data_90
  when usage as u where crosses_above(pct, 90)
  once per u.cycle
  then sms "offer.data" with {pct: u.pct, cycle: u.cycle}
end
"""
    events = [Usage(ts=T0 + i * M, msisdn="1", pct=p, cycle=c)
              for i, (p, c) in enumerate([(50, "11"), (91, "11"), (80, "11"), (95, "11"), (10, "12"), (92, "12")])]
    sends = _run(text, events)
    assert [(s.ts, s.params) for s in sends] == [
        (T0 + 1 * M, {"pct": 91, "cycle": "11"}),
        (T0 + 5 * M, {"pct": 92, "cycle": "12"}),  # the crossing at 95 was in the same cycle
    ]


def test_a_count_over_a_window_with_a_filter_on_an_optional_field():
    text = 'scenario video when count(dpi where category == "video") >= 3 within 10m then sms "v" end'
    cats = ["video", None, "video", "news", "video", "video"]
    sends = _run(text, [Dpi(ts=T0 + i * M, msisdn="1", host="h", category=c) for i, c in enumerate(cats)])
    assert [s.ts for s in sends] == [T0 + 4 * M, T0 + 5 * M]
