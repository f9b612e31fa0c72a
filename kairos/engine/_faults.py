"""Where an exception raised while processing one event came from: the scenario's own place.

The engine catches such an exception (``Engine.faults``, ``on_fault``) and goes
on; its owner reports it. The place is read off the traceback: the innermost
frame in a scenario file (a compiled expression carries the file's name and
line, ``dsl._codegen``) or else in generated code (``<kairos route dpi>``:
``plan._generated``), whose line, when made from a clause, ends in a comment
naming the clause's ``FILE:LINE:COL`` — that place is reported then.
"""

from __future__ import annotations

import linecache
import re
from typing import Collection

#: the end of a generated line made from a clause (``plan._generated.at``)
_CLAUSE_AT = re.compile(r"#.* at (.+):(\d+):\d+\s*$")


def fault_place(exc: BaseException, scenario_files: Collection[str]) -> str | None:
    """``FILE:LINE`` of the innermost frame of ``exc``'s traceback in a scenario file or generated
    code (resolved to the clause a generated line names); None if no frame is either."""
    place = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        name = code.co_filename
        line = tb.tb_lineno
        if name in scenario_files:
            place = f"{name}:{line}"
        elif name.startswith("<kairos ") and name.endswith(">"):
            clause = _CLAUSE_AT.search(linecache.getline(name, line))
            place = f"{clause[1]}:{clause[2]}" if clause else f"{name}:{line}"
        tb = tb.tb_next
    return place


def describe_fault(exc: BaseException, scenario_files: Collection[str]) -> str:
    """``processing failed in FILE:LINE: Type: message``: one line for a log or standard error."""
    place = fault_place(exc, scenario_files)
    where = f" in {place}" if place is not None else ""
    text = str(exc).replace("\n", " ")
    return f"processing failed{where}: {type(exc).__name__}" + (f": {text}" if text else "")
