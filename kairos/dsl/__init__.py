"""The Kairos scenario language: scenario files in, a compiled ``plan.Plan`` out.

``compile_sources`` and ``compile_paths`` tokenize, parse and check scenario
and policy files (LANGUAGE.md §1–§6) against the caller's event schema and
channels, and compile every expression to a Python function the engine calls
per event. Invalid sources raise ``CheckError`` whose ``Diagnostic`` items
render as ``FILE:LINE:COL: error: MESSAGE`` with the source line and a caret;
``check_names`` reports, the same way, the list, area and tag names a
reference folder lacks.
This package depends on ``plan`` only. A public name loads its module when
it is first used (``__getattr__``): ``CheckError`` does not load the compiler.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kairos.dsl._compiler import compile_paths, compile_sources
    from kairos.dsl._diagnostics import CheckError, Diagnostic
    from kairos.dsl._names import check_names

#: each module's public names: a name's module is imported at its first use
_MODULES = {
    "_compiler": "compile_paths compile_sources",
    "_diagnostics": "CheckError Diagnostic",
    "_names": "check_names",
}
_EXPORTS = {
    public.partition("=")[0]: (module, public.partition("=")[2] or public)
    for module, names in _MODULES.items()
    for public in names.split()
}


if not TYPE_CHECKING:  # type checkers read the imports above: a name they do not list stays an error

    def __getattr__(name: str) -> Any:
        """Import a public name's module at its first use (PEP 562) and keep the name here."""
        try:
            module, attr = _EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = ["CheckError", "Diagnostic", "check_names", "compile_paths", "compile_sources"]
