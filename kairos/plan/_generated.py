"""The one way generated Python becomes a function, and the way back from its frames to the scenario.

Every function Kairos generates (compiled expressions, routes, the feed loop,
reordered audiences, absence answers, state keepers) is built by ``define``.
Text is registered in ``linecache`` under a file name that says what it is
(``<kairos route dpi>``, ``<kairos scenario big audience>``), so a traceback
through it shows the generated line. Beside it ``define`` keeps the line map
its caller gives (``origins``: a line of the code → the ``FILE:LINE:COL`` of
the scenario clause it was made from); ``places`` reads a traceback through
that map, so a failure inside a route or an audience names the scenario's
own line. A generated line made from a clause also ends in a comment naming
it (``at``), for a person reading the traceback. Generated code is made from
the checked tree only, never from scenario text: a scenario's text may hold
anything its language allows (line breaks inside parentheses, comments),
which pasted into Python could break or change the code.
"""

from __future__ import annotations

import ast
import linecache
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import CodeType, TracebackType
from typing import Any

from kairos.plan._model import Origin

#: ``id(code)`` → (the code, weakly; its line → scenario place) for each code object ``define`` made with a map
_MAPS: dict[int, tuple[weakref.ref[CodeType], Mapping[int, Origin]]] = {}


def filename(*words: str) -> str:
    """``<kairos WORD ...>``: the pseudo file a generated function is compiled under."""
    return "<kairos " + " ".join(_printable(w) for w in words) + ">"


def at(origin: Origin | None) -> str:
    """``FILE:LINE:COL`` of a clause, safe to end a generated line with (after ``# ``)."""
    if origin is None:
        return "unknown place"
    return f"{_printable(origin.file)}:{origin.line}:{origin.col}"


def define(name: str, code: str | ast.Module, namespace: dict[str, Any], file: str,
           origins: Mapping[int, Origin] | None = None) -> Callable[..., Any]:
    """Compile ``code``, which defines the function ``name``, under ``file``; run it in ``namespace``.

    Text is registered in ``linecache`` under ``file`` (a traceback then shows
    the generated line). A tree is compiled as it is: the dsl places its nodes
    on the scenario file itself (``file`` is that file, already readable).
    ``origins``: the scenario place each line of ``file`` the code runs on was
    made from (lines made from no clause left out), read back by ``places``.
    Returns the function, its text in ``.source`` when it was given as text.
    """
    if isinstance(code, str):
        linecache.cache[file] = (len(code), None, code.splitlines(True), file)
    compiled = compile(code, file, "exec")
    if origins:
        _remember(compiled, dict(origins))
    exec(compiled, namespace)  # noqa: S102 - text made by Kairos from the checked tree, never a scenario's
    fn = namespace[name]
    if isinstance(code, str):
        fn.source = code
    return fn  # type: ignore[no-any-return]


def lines_from(first: int, origins: Sequence[Origin | None]) -> dict[int, Origin]:
    """A line map for ``define`` from the places of consecutive lines, the first of them line ``first``."""
    return {first + k: origin for k, origin in enumerate(origins) if origin is not None}


def place(code: CodeType, line: int) -> Origin | None:
    """The scenario place line ``line`` of ``code`` was made from; None if ``define`` was told none."""
    entry = _MAPS.get(id(code))
    if entry is None or entry[0]() is not code:
        return None
    return entry[1].get(line)


def places(failure: BaseException | TracebackType | None) -> list[Origin]:
    """The scenario places a traceback (an exception's, or ``failure`` itself) passed through, innermost first:
    one per frame of generated code whose line was made from a clause (``define``'s ``origins``)."""
    tb = failure.__traceback__ if isinstance(failure, BaseException) else failure
    found: list[Origin] = []
    while tb is not None:
        origin = place(tb.tb_frame.f_code, tb.tb_lineno)
        if origin is not None:
            found.append(origin)
        tb = tb.tb_next
    found.reverse()
    return found


def _remember(code: CodeType, origins: Mapping[int, Origin]) -> None:
    """Keep ``origins`` for ``code`` and the code nested in it (its functions, lambdas, comprehensions),
    for as long as each code object lives."""
    for each in _codes(code):
        key = id(each)

        def forget(ref: weakref.ref[CodeType], key: int = key) -> None:
            if _MAPS.get(key, (None,))[0] is ref:
                del _MAPS[key]

        _MAPS[key] = (weakref.ref(each, forget), origins)


def _codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _printable(text: str) -> str:
    """``text`` itself if printable, else its escaped form: one line of a generated file, whatever a path holds."""
    return text if text.isprintable() else ascii(text)[1:-1]
