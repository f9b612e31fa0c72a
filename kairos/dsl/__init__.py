"""The Kairos scenario language: scenario files in, a compiled ``plan.Plan`` out.

``compile_sources`` and ``compile_paths`` tokenize, parse and check scenario
and policy files (LANGUAGE.md §1–§6) against the caller's event schema and
channels, and compile every expression to a Python function the engine calls
per event. Invalid sources raise ``CheckError`` whose ``Diagnostic`` items
render as ``FILE:LINE:COL: error: MESSAGE`` with the source line and a caret;
``check_names`` reports, the same way, the list, area and tag names a
reference folder lacks.
This package depends on ``plan`` only.
"""

from kairos.dsl._compiler import compile_paths, compile_sources
from kairos.dsl._diagnostics import CheckError, Diagnostic
from kairos.dsl._names import check_names

__all__ = ["CheckError", "Diagnostic", "check_names", "compile_paths", "compile_sources"]
