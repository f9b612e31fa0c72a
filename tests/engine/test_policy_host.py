"""The contact policy stage runs on its ``PolicyHost`` alone: no engine, every call it makes visible.

A recording host stands in for the engine, so each test reads as the whole
conversation between the stage and the engine for one trigger (the flow drawn
in ``kairos/engine/_policy.py``'s docstring).
"""

from __future__ import annotations

from typing import Any

from kairos.engine import DEFAULT_TZ, LocalTime, Reference, ScenarioStats
from kairos.engine._policy import Candidate, PolicyStage
from kairos.plan import Action, Control, Policy, Scenario, Single
from tests.engine.builders import HERE, flt, scenario

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
M = 60_000


class RecordingHost:
    """A ``PolicyHost`` that writes down every call the stage makes of it."""

    def __init__(self, scenarios: list[Scenario]) -> None:
        self.clock = LocalTime(DEFAULT_TZ)
        self.now = T0
        self.scenarios = scenarios
        self.stats = [ScenarioStats() for _ in scenarios]
        self.reference = Reference()
        self.observer = None
        self.calls: list[tuple[Any, ...]] = []

    def schedule_last(self, when: int, owner: Any, msisdn: str) -> None:
        self.calls.append(("schedule_last", when - T0, msisdn))

    def watch(self, when: int, owner: Any, msisdn: str) -> None:
        self.calls.append(("watch", type(owner).__name__))

    def emit(self, i: int, m: str, t: int, trigger_id: str, action: Action, params: dict[str, Any],
             send_at: int, depth: int) -> None:
        self.calls.append(("emit", trigger_id, action.channel, send_at - T0))

    def hold_out(self, i: int, m: str, t: int, trigger_id: str, action: Action, params: dict[str, Any],
                 send_at: int) -> None:
        self.calls.append(("hold_out", trigger_id, action.channel))

    def requeue(self, ev: Any) -> None:
        self.calls.append(("requeue", ev))


def _scenarios(*priorities: int) -> list[Scenario]:
    return [scenario(f"s{p}", Single(flt("dpi")), priority=p) for p in priorities]


def _offer(stage: PolicyStage, scenarios: list[Scenario], i: int, ts: int, msisdn: str = "1") -> str:
    trigger_id = f"{scenarios[i].name}:{msisdn}:{ts}"
    stage.offer(Candidate(trigger_id, i, scenarios[i], msisdn, T0 + ts, ({},), 1))
    return trigger_id


def test_an_arbitration_window_asks_the_host_for_one_deadline_and_emits_only_the_winner_when_it_fires() -> None:
    scenarios = _scenarios(10, 90)
    host = RecordingHost(scenarios)
    stage = PolicyStage(Policy(origin=HERE, arbitrate_ms=5 * M), host, index=2)
    low = _offer(stage, scenarios, 0, 0)
    high = _offer(stage, scenarios, 1, 2 * M)
    assert [("schedule_last", 5 * M, "1")] == host.calls  # nothing decided while the window is open

    stage.on_deadline("1", T0 + 5 * M)

    # the winner's record is kept for feedback (``Records`` asks to be told when it may go), then sent
    assert [("schedule_last", 5 * M, "1"), ("watch", "Records"), ("emit", high, "sms", 2 * M)] == host.calls
    assert {"arbitration": 1} == host.stats[0].suppressed
    assert low not in stage.records and high in stage.records


def test_a_control_group_trigger_is_handed_to_the_host_to_hold_out_never_emitted() -> None:
    scenarios = _scenarios(50)
    host = RecordingHost(scenarios)
    stage = PolicyStage(Policy(origin=HERE, control=(Control(100.0),)), host, index=1)
    held = _offer(stage, scenarios, 0, 0)
    assert [("watch", "Records"), ("hold_out", held, "sms")] == host.calls  # recorded for feedback, held out
    assert {"control": 1} == host.stats[0].suppressed
