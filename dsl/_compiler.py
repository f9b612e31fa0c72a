"""The entry points: scenario sources in, a ``plan.Plan`` out, or every error found."""

from __future__ import annotations

import linecache
from pathlib import Path
from typing import Sequence

import plan
from dsl import _ast as ast
from dsl._checker import Checker
from dsl._diagnostics import CheckError, Diagnostic, ParseError, Source
from dsl._parser import parse

DEFAULT_CHANNELS = frozenset({"sms", "popup", "call"})


def compile_sources(
    sources: Sequence[tuple[str, str]],
    schema: plan.EventSchema,
    channels: frozenset[str] = DEFAULT_CHANNELS,
) -> plan.Plan:
    """Compile ``(filename, text)`` pairs; raises CheckError listing every error.

    The texts are registered in ``linecache`` under their file names, so a
    traceback through a compiled expression shows the scenario's line.
    """
    compiled = _compile([Source(name, text) for name, text in sources], schema, channels)
    for name, text in sources:
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    return compiled


def compile_paths(
    paths: Sequence[str | Path],
    schema: plan.EventSchema,
    channels: frozenset[str] = DEFAULT_CHANNELS,
) -> plan.Plan:
    """Compile files; a directory stands for every ``*.kairos`` below it, sorted.

    Files are read as UTF-8; a byte-order mark some editors write is dropped.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.kairos")) if p.is_dir() else [p])
    return _compile([Source(str(f), f.read_text(encoding="utf-8-sig")) for f in files], schema, channels)


def _compile(sources: list[Source], schema: plan.EventSchema, channels: frozenset[str]) -> plan.Plan:
    diagnostics: list[Diagnostic] = []
    parsed: list[ast.FileNode] = []
    for source in sources:
        try:
            parsed.append(parse(source))
        except ParseError as e:
            diagnostics.append(e.diagnostic)
    checker = Checker(schema, channels)
    scenarios, policy = checker.check(parsed)
    diagnostics += checker.diagnostics
    if diagnostics:
        order = {s.name: i for i, s in reversed(list(enumerate(sources)))}
        raise CheckError(sorted(diagnostics, key=lambda d: (order[d.file], d.line, d.col)))
    return plan.Plan(tuple(scenarios), policy, files=tuple(s.name for s in sources))
