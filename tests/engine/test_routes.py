"""Fused routes paste a filter's compiled text inline only when that is safe."""

from __future__ import annotations

import re

from kairos.engine._events import Dpi
from kairos.engine._routes import inlinable
from kairos.plan import NAMESPACE, Expr, Filter, Origin, Single

from tests.engine.builders import run, scenario

T0 = 1_795_363_200_000
ORIGIN = Origin("<test>", 1, 1)


def _compiled(python: str, **constants) -> Expr:
    ns = dict(NAMESPACE, **constants)
    exec(f"def f(e, a, c): return {python}", ns)
    return Expr(text=python, python=python, origin=ORIGIN, fn=ns["f"])


def test_an_expression_of_the_event_literals_and_helpers_is_inlined():
    assert inlinable(_compiled("e.category == 'video' and ge(e.bytes, 10)"))


def test_an_expression_with_its_own_constants_is_called_not_inlined():
    assert not inlinable(_compiled("matches(e.host, _k0)", _k0=re.compile("qq")))


def test_an_expression_with_nested_code_is_called_not_inlined():
    assert not inlinable(_compiled("any(x == e.app for x in ['a'])"))


def test_inlined_and_called_filters_give_the_same_sends():
    events = [Dpi(ts=T0 + i, msisdn=str(i % 3), host="h", category=c, bytes=i)
              for i, c in enumerate(["video", "news", "video", None, "video"])]
    inline = _compiled("e.category == 'video' and ge(e.bytes, 2)")
    called = Expr(text="", python="", origin=ORIGIN, fn=inline.fn)
    a = scenario("s", Single(Filter("dpi", None, inline)))
    b = scenario("s", Single(Filter("dpi", None, called)))
    sends_a, engine = run(a, events)
    sends_b, _ = run(b, events)
    assert sends_a == sends_b and [s.ts for s in sends_a] == [T0 + 2, T0 + 4]
    assert "e.category == 'video'" in engine._routes[Dpi].source
