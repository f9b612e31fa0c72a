"""A failure inside generated code names the scenario's own line: ``plan.define`` keeps, beside each
generated function, which scenario clause each of its lines was made from, and ``plan.places`` reads a
traceback through it. The engine's fault report (the replay's exit-3 message, the daemon's log) uses it,
so a filter pasted into a route, an audience or a later step's ``where`` is named by ``FILE:LINE``."""

from __future__ import annotations

import traceback

import pytest

from kairos import plan
from kairos.engine import Engine, Reference
from kairos.engine import _engine as _engine_module
from kairos.engine._events import Dpi
from tests.dsl.support import T0, compile_one

#: forty factors of ``bytes``: for a 10**12-byte record ``/ 3`` raises OverflowError (for ten bytes it is a float)
HUGE = " * ".join(["bytes"] * 40)
OVERFLOW = "OverflowError: integer division result too large for a float"
#: a subscriber tag holding a number past any float: ``tags.score / 3`` raises OverflowError
TAGS = {"1": {"score": 10**400}}

#: a scenario whose clause raises for the second event below, and the clause's line and column
CASES = {
    "where pasted into the route": (
        f'scenario big\n  when dpi\n    where category == "video" and {HUGE} / 3 > 1\n  then sms "t"\nend\n', 3, 11),
    "audience pasted into the route": (
        'scenario vip\n  audience tags.score / 3 > 1\n  when dpi where category == "video"\n  then sms "t"\nend\n',
        2, 12),
    "audience reordered (conjuncts)": (
        ('scenario vip\n  audience msisdn != "2" and tags.score / 3 > 1\n  when dpi as d -> dpi within 1m\n'
         '  then sms "t"\nend\n'), 2, 12),
    "where of a later sequence step": (
        ('scenario two\n  when dpi as d where category == "video"\n'
         f'  -> dpi where category == "video" and {HUGE} / 3 > 1 within 1m\n  then sms "t"\nend\n'), 3, 16),
}


def _video(i: int, size: int) -> Dpi:
    return Dpi(ts=T0 + i * 1_000, msisdn="1", host="h", category="video", bytes=size)


def _faults(text: str, general: bool, name: str = "t.kairos") -> tuple[Engine, list[BaseException]]:
    """The exceptions an engine running ``text`` catches for a small video, then a 10**12-byte one."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_engine_module, "FUSED_FEED", not general)  # the same loop's text, calling the DPI route
        engine = Engine(compile_one(text, name), Reference(tags=TAGS), sink=lambda s: None)
    caught: list[BaseException] = []
    engine.on_fault = lambda i, ev, exc: caught.append(exc)
    engine.feed([_video(0, 10), _video(1, 10**12)])
    return engine, caught


@pytest.mark.parametrize("general", [False, True], ids=["dpi route pasted", "dpi route called"])
@pytest.mark.parametrize("clause", CASES)
def test_a_failing_clause_is_reported_at_its_scenario_line(clause, general):
    text, line, col = CASES[clause]
    engine, caught = _faults(text, general)
    exc = caught[-1]
    assert f"processing failed in t.kairos:{line}: {OVERFLOW}" == engine.describe_fault(exc)
    assert plan.Origin("t.kairos", line, col) == plan.places(exc)[0]


def test_a_traceback_through_a_later_steps_guard_shows_the_clause_it_was_made_from():
    """The guard of a sequence holds terms of both steps' filters: one line per step, each naming its own."""
    _, (exc,) = _faults(CASES["where of a later sequence step"][0], general=True)
    frame = traceback.extract_tb(exc.__traceback__)[-2]  # the innermost is the ``div`` helper
    assert ("<kairos route dpi>", "route") == (frame.filename, frame.name)
    assert frame.line.endswith("# scenario two where at t.kairos:3:16")


def test_a_new_engines_routes_do_not_move_where_an_older_engines_fault_is_reported():
    """A reload builds routes of the same names (``<kairos route dpi>``) for other scenarios; an engine
    still running the old plan reports its own scenario's place, not whatever its line now holds."""
    old = Engine(compile_one(CASES["where of a later sequence step"][0], "old.kairos"), sink=lambda s: None)
    new_text = f'\n\n\n\nscenario big\n  when dpi where category == "video" and {HUGE} / 7 > 1\n  then sms "t"\nend\n'
    Engine(compile_one(new_text, "new.kairos"), sink=lambda s: None)
    caught: list[BaseException] = []
    old.on_fault = lambda i, ev, exc: caught.append(exc)
    old.feed([_video(0, 10), _video(1, 10**12)])
    (exc,) = caught
    assert f"processing failed in old.kairos:3: {OVERFLOW}" == old.describe_fault(exc)


def test_a_scenario_file_whose_name_cannot_be_printed_is_still_named_exactly():
    """A generated line's comment escapes such a name; the line map keeps it as it is."""
    name = "odd\tname.kairos"
    engine, (exc,) = _faults(CASES["where pasted into the route"][0], general=False, name=name)
    assert f"processing failed in {name}:3: {OVERFLOW}" == engine.describe_fault(exc)


def test_places_are_listed_innermost_first_and_lines_made_from_no_clause_are_skipped():
    here, there = plan.Origin("a.kairos", 2, 3), plan.Origin("b.kairos", 5, 7)
    inner = plan.define("inner", "def inner(x):\n    return 1 / x\n", {}, plan.filename("test", "inner"),
                        {2: here})
    outer = plan.define("outer", "def outer(x):\n    y = x\n    return inner(y)\n", {"inner": inner},
                        plan.filename("test", "outer"), plan.lines_from(2, [None, there]))
    with pytest.raises(ZeroDivisionError) as info:
        outer(0)
    assert [here, there] == plan.places(info.value)
    assert [] == plan.places(None)
