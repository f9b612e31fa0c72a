"""What `kairos check` accepts, `kairos replay` runs: generated code is made from the checked tree.

A scenario's text may break lines inside parentheses and hold comments
anywhere; none of it reaches generated Python (it once did, as a comment in
the route, and a line break there was a SyntaxError). A failure while
building an engine anyway — a bug of ours — is an error naming the scenario,
exit 1, never a traceback.
"""

from __future__ import annotations

import json
import linecache
import traceback
from pathlib import Path

import msgspec
import pytest

from kairos import dsl
from kairos.engine import BuildError, Engine, Reference, event_schema
from kairos.engine._events import Usage
from kairos import main

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
MINUTE = 60_000


def _dpi(ts: int, m: str, bytes_: int, category: str = "video") -> dict:
    return {"type": "dpi", "ts": ts, "msisdn": m, "host": "a.cn", "category": category, "bytes": bytes_}


def _send(scenario: str, m: str, ts: int, channel: str, template: str, params: dict | None = None) -> dict:
    return {"id": f"{scenario}:{m}:{ts}", "scenario": scenario, "msisdn": m, "ts": ts, "send_at": ts,
            "channel": channel, "template": template, "params": params or {}}


#: each clause with a line break inside parentheses (and in the first, a comment holding `)` and `"`);
#: the events, and the sends ``kairos replay`` must write
CASES = {
    "where": (
        'scenario big\n  when dpi where (bytes  # more than 5 ) " bytes\n    > 5)\n  then sms "offer.big"\nend\n',
        [_dpi(T0, "1", 10), _dpi(T0 + 1, "2", 3)],
        [_send("big", "1", T0, "sms", "offer.big")],
    ),
    "audience": (
        'scenario big\n  audience (msisdn\n      != "2")\n  when dpi where bytes > 5\n  then sms "offer.big"\nend\n',
        [_dpi(T0, "1", 10), _dpi(T0 + 1, "2", 10)],
        [_send("big", "1", T0, "sms", "offer.big")],
    ),
    "with": (
        'scenario big\n  when dpi as d where bytes > 5\n  then sms "offer.big" with {b: (d.bytes\n    + 1)}\nend\n',
        [_dpi(T0, "1", 10)],
        [_send("big", "1", T0, "sms", "offer.big", {"b": 11})],
    ),
    "absence answer": (
        'scenario quiet\n  when dpi as d where category == "video"\n'
        '       -> not topup where (amount\n    > d.bytes) within 10m\n  then call "care.topup"\nend\n',
        [_dpi(T0, "1", 5), _dpi(T0, "2", 5),
         {"type": "topup", "ts": T0 + MINUTE, "msisdn": "1", "amount": 3},  # not more than 5: no answer
         {"type": "topup", "ts": T0 + MINUTE, "msisdn": "2", "amount": 9},  # answers
         _dpi(T0 + 20 * MINUTE, "3", 0, "news")],
        [_send("quiet", "1", T0 + 10 * MINUTE, "call", "care.topup")],
    ),
}


def _replay(tmp_path: Path, scenario: Path, events: list[dict]) -> tuple[int, list[dict]]:
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    out = tmp_path / "sends.jsonl"
    status = main(["replay", "--scenarios", str(scenario), "--events", str(events_file), "--out", str(out),
                   "--quiet"])
    return status, [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("clause", CASES)
def test_a_line_break_inside_parentheses_checks_and_replays_with_the_right_sends(tmp_path, capsys, clause):
    text, events, expected = CASES[clause]
    scenario = tmp_path / "s.kairos"
    scenario.write_text(text, encoding="utf-8")
    assert 0 == main(["check", str(scenario)])
    assert (0, expected) == _replay(tmp_path, scenario, events)
    assert "Traceback" not in capsys.readouterr().err


def test_no_generated_function_holds_the_scenarios_text():
    text = CASES["where"][0] + CASES["absence answer"][0].replace("quiet", "quiet_too")
    plan = dsl.compile_sources([("t.kairos", text)], event_schema())
    engine = Engine(plan, Reference(), sink=lambda s: None)
    generated = {name: "".join(entry[2]) for name, entry in linecache.cache.items()
                 if name.startswith("<kairos ") and len(entry) == 4}
    assert {"<kairos route dpi>", "<kairos route topup>", "<kairos feed dpi>",
            "<kairos scenario quiet_too answer>"} <= generated.keys()
    assert not [name for name, code in generated.items() if "more than 5" in code or "d.bytes" in code]
    assert "# scenario big where at t.kairos:2:18" in engine._routes[engine_type("dpi")].source


def engine_type(tag: str) -> type:
    from kairos.engine import event_types

    return event_types()[tag]


class _BrokenClock:
    def hour(self, ts: int) -> int:
        raise RuntimeError("clock down")


def test_a_traceback_through_a_route_names_the_scenarios_clause_and_place():
    text = 'scenario early\n  when usage\n    where hour(ts) < 9\n  then sms "t"\nend\n'
    engine = Engine(dsl.compile_sources([("scenarios/early.kairos", text)], event_schema()), sink=lambda s: None)
    engine.ctx.hour = _BrokenClock().hour  # the context calls its clock's bound hour
    caught: list[BaseException] = []
    engine.on_fault = lambda i, ev, exc: caught.append(exc)  # the engine skips the event and goes on
    engine.feed([Usage(ts=T0, msisdn="1", pct=50)])
    (exc,) = caught
    *_, frame = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<kairos")]  # feed, route
    assert ("<kairos route usage>", "route") == (frame.filename, frame.name)
    assert frame.line == "if ((c.hour(e.ts) < 9)):  # scenario early where at scenarios/early.kairos:3:11"
    assert "processing failed in scenarios/early.kairos:3: RuntimeError: clock down" == engine.describe_fault(exc)


def test_a_traceback_through_a_reordered_audience_names_its_scenario():
    text = ('scenario vip\n  audience tags.vip == true and msisdn != "2"\n'
            '  when usage as u -> usage within 1m\n  then sms "t"\nend\n')
    engine = Engine(dsl.compile_sources([("s.kairos", text)], event_schema()), sink=lambda s: None)
    audience = engine._audiences[0]

    class Broken:
        msisdn = "1"

        def tag(self, name: str) -> None:
            raise RuntimeError("tag store down")

    with pytest.raises(RuntimeError) as info:
        audience(None, (), Broken())
    frame = traceback.extract_tb(info.value.__traceback__)[-2]
    assert ("<kairos scenario vip audience>", "audience") == (frame.filename, frame.name)
    assert frame.line.endswith("# audience at s.kairos:2:12")


# --- a failure while building is an error naming the scenario, never a traceback

GOOD = 'scenario good\n  when dpi where bytes > 1\n  then sms "t"\nend\n'
VICTIM = 'scenario victim\n  when dpi where bytes > 5\n  then sms "t"\nend\n'


def _broken_plan():
    """A plan whose second scenario's filter generates Python that does not compile: a code-generator
    bug, injected in the plan (the checker can no longer produce one)."""
    plan = dsl.compile_sources([("s.kairos", GOOD + VICTIM)], event_schema())
    good, victim = plan.scenarios
    where = victim.pattern.filter.where
    broken = msgspec.structs.replace(
        victim, pattern=msgspec.structs.replace(victim.pattern, filter=msgspec.structs.replace(
            victim.pattern.filter, where=msgspec.structs.replace(where, python="(e.bytes > 5"))))
    return msgspec.structs.replace(plan, scenarios=(good, broken))


def test_a_plan_that_fails_to_build_names_the_scenario_at_fault():
    with pytest.raises(BuildError) as info:
        Engine(_broken_plan(), sink=lambda s: None)
    message = str(info.value)
    assert message.startswith("s.kairos:5:1: error: scenario 'victim': internal error while building its "
                              "runtime: SyntaxError: ")
    assert "'good'" not in message
    assert message.endswith("this is an internal error of Kairos, not of the scenario: please report it "
                            "with the scenario file)")
    assert isinstance(info.value.__cause__, SyntaxError)


def test_a_route_that_fails_to_compile_names_only_the_scenario_whose_lines_break_it(monkeypatch):
    """The old fault, injected: a route line of one scenario's clause ends in something that is not Python."""
    from kairos.engine._routes import Entry

    note = Entry.note
    monkeypatch.setattr(Entry, "note", lambda self, clause, expr: (
        "\n  )" if self.scenario.name == "victim" else note(self, clause, expr)))
    plan = dsl.compile_sources([("s.kairos", GOOD + VICTIM)], event_schema())
    with pytest.raises(BuildError) as info:
        Engine(plan, sink=lambda s: None)
    first, last = str(info.value).splitlines()
    assert first.startswith("s.kairos:5:1: error: scenario 'victim': internal error while generating the route "
                            "for dpi events: ")
    assert last.startswith("(the scenario passed `kairos check`")


@pytest.mark.parametrize("command", ["check", "replay"])
def test_check_and_replay_refuse_a_plan_that_fails_to_build_with_exit_1_and_no_traceback(
        tmp_path, capsys, monkeypatch, command):
    import kairos._compile  # each command imports compile_plan from here when it runs

    scenario = tmp_path / "s.kairos"
    scenario.write_text(GOOD + VICTIM, encoding="utf-8")
    (tmp_path / "events.jsonl").write_text(json.dumps(_dpi(T0, "1", 10)) + "\n", encoding="utf-8")
    monkeypatch.setattr(kairos._compile, "compile_plan", lambda paths: _broken_plan())
    argv = ["check", str(scenario)] if command == "check" else [
        "replay", "--scenarios", str(scenario), "--events", str(tmp_path / "events.jsonl")]
    assert 1 == main(argv)
    err = capsys.readouterr().err
    assert err.startswith(f"kairos {command}: s.kairos:5:1: error: scenario 'victim': internal error")
    assert "Traceback" not in err


def test_a_checker_bug_is_an_error_at_the_scenario_not_a_traceback(monkeypatch):
    from kairos.dsl._checker import Checker

    def broken(self, node):
        raise KeyError("oops")

    monkeypatch.setattr(Checker, "scenario", broken)
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([("s.kairos", "\n" + GOOD)], event_schema())
    (d,) = info.value.diagnostics
    assert ("s.kairos", 2, 1) == (d.file, d.line, d.col)
    assert d.message == ("internal error of Kairos while checking this (KeyError: 'oops'); please report it "
                         "with this file")


def test_a_number_too_long_to_mean_anything_is_an_error_not_a_crash():
    text = f'scenario big\n  when dpi where bytes > {"9" * 5000}\n  then sms "t"\nend\n'
    with pytest.raises(dsl.CheckError) as info:
        dsl.compile_sources([("s.kairos", text)], event_schema())
    (d,) = info.value.diagnostics
    assert (2, 26, "number too long: at most 300 digits") == (d.line, d.col, d.message)


def test_a_literal_python_cannot_spell_is_compiled_as_a_constant():
    from kairos.dsl import _ir as ir
    from kairos.dsl._codegen import _Emitter

    emitter = _Emitter()
    inf = ir.Const(float("inf"), ir.NUM)
    code = emitter.value(ir.Op("<", ir.Field(None, "bytes", ir.NUM), inf, ir.BOOL))
    assert "(e.bytes < _k0)" == code and emitter.constants == {"_k0": float("inf")}
    listed = emitter.value(ir.Op("in", ir.Field(None, "bytes", ir.NUM), ir.ListOf((inf,)), ir.BOOL))
    assert "isin(e.bytes, _k1)" == listed and emitter.constants["_k1"] == (float("inf"),)
