"""Where an exception raised while processing one event came from: the scenario's own place.

The engine catches such an exception (``Engine.faults``, ``on_fault``) and goes
on; its owner reports it. The place is read off the traceback through the line
maps ``plan.define`` keeps (``plan.places``): the innermost frame of generated
code — a compiled expression, a route, the feed loop, an audience — whose line
was made from a scenario's clause. Failing that (a failure in no clause's
line), the innermost frame in a scenario file or in generated code is named.
"""

from __future__ import annotations

from collections.abc import Collection

from kairos.plan import places


def fault_place(exc: BaseException, scenario_files: Collection[str]) -> str | None:
    """``FILE:LINE`` of the innermost scenario clause ``exc``'s traceback passed through, else of its
    innermost frame in a scenario file or generated code; None if no frame is either."""
    found = places(exc)
    if found:
        return f"{found[0].file}:{found[0].line}"
    place = None
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in scenario_files or (name.startswith("<kairos ") and name.endswith(">")):
            place = f"{name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return place


def describe_fault(exc: BaseException, scenario_files: Collection[str]) -> str:
    """``processing failed in FILE:LINE: Type: message``: one line for a log or standard error."""
    place = fault_place(exc, scenario_files)
    where = f" in {place}" if place is not None else ""
    text = str(exc).replace("\n", " ")
    return f"processing failed{where}: {type(exc).__name__}" + (f": {text}" if text else "")
