"""The one way generated Python becomes a function: compiled under a name that says what it is.

Every function Kairos generates (compiled expressions, routes, the feed loop,
reordered audiences, absence answers, state keepers) is built by ``define``.
Its text is registered in ``linecache`` under a file name such as
``<kairos route dpi>`` or ``<kairos scenario big audience>``, so a traceback
through it shows the generated line; lines built from a scenario's clause end
in a comment naming the clause's ``FILE:LINE:COL`` (``at``). Generated code is
made from the checked tree only, never from scenario text: a scenario's text
may hold anything its language allows (line breaks inside parentheses,
comments), which pasted into Python could break or change the code.
"""

from __future__ import annotations

import ast
import linecache
from typing import Any, Callable

from kairos.plan._model import Origin


def filename(*words: str) -> str:
    """``<kairos WORD ...>``: the pseudo file a generated function is compiled under."""
    return "<kairos " + " ".join(_printable(w) for w in words) + ">"


def at(origin: Origin | None) -> str:
    """``FILE:LINE:COL`` of a clause, safe to end a generated line with (after ``# ``)."""
    if origin is None:
        return "unknown place"
    return f"{_printable(origin.file)}:{origin.line}:{origin.col}"


def define(name: str, code: str | ast.Module, namespace: dict[str, Any], file: str) -> Callable[..., Any]:
    """Compile ``code``, which defines the function ``name``, under ``file``; run it in ``namespace``.

    Text is registered in ``linecache`` under ``file`` (a traceback then shows
    the generated line). A tree is compiled as it is: the dsl places its nodes
    on the scenario file itself (``file`` is that file, already readable).
    Returns the function, its text in ``.source`` when it was given as text.
    """
    if isinstance(code, str):
        linecache.cache[file] = (len(code), None, code.splitlines(True), file)
    exec(compile(code, file, "exec"), namespace)
    fn = namespace[name]
    if isinstance(code, str):
        fn.source = code
    return fn  # type: ignore[no-any-return]


def _printable(text: str) -> str:
    """``text`` itself if printable, else its escaped form: one line of a generated file, whatever a path holds."""
    return text if text.isprintable() else ascii(text)[1:-1]
