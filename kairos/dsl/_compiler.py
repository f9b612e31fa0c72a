"""The entry points: scenario sources in, a ``plan.Plan`` out, or every error found."""

from __future__ import annotations

import codecs
import linecache
from collections.abc import Sequence
from pathlib import Path

from kairos import plan
from kairos.dsl import _ast as ast
from kairos.dsl._checker import Checker
from kairos.dsl._diagnostics import CheckError, Diagnostic, ParseError, Source
from kairos.dsl._parser import parse

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
    sources: list[Source] = []
    unreadable: list[Diagnostic] = []
    for f in files:
        text = _read(f, unreadable)
        if text is not None:
            sources.append(Source(str(f), text))
    return _compile(sources, schema, channels, unreadable, [str(f) for f in files])


def _read(path: Path, problems: list[Diagnostic]) -> str | None:
    """The file's text; None, with a diagnostic at its first bad byte, when it is not UTF-8.

    A file saved as GBK or Latin-1 is a mistake an author must be able to find,
    so it is reported like any other error, with its line and column.
    """
    raw = path.read_bytes()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        line_end = raw.find(b"\n", e.start)
        line = raw[line_start : None if line_end < 0 else line_end].decode("utf-8", "replace").rstrip("\r")
        col = len(raw[line_start : e.start].decode("utf-8", "replace")) + 1
        message = (f"the file is not UTF-8 text: byte 0x{raw[e.start]:02x} here does not start a valid "
                   "UTF-8 character; save the file as UTF-8")
        problems.append(Diagnostic(str(path), raw.count(b"\n", 0, e.start) + 1, col, message, line))
        return None


def _compile(
    sources: list[Source],
    schema: plan.EventSchema,
    channels: frozenset[str],
    unreadable: Sequence[Diagnostic] = (),
    file_order: Sequence[str] = (),
) -> plan.Plan:
    diagnostics: list[Diagnostic] = list(unreadable)
    parsed: list[ast.FileNode] = []
    for source in sources:
        try:
            parsed.append(parse(source))
        except ParseError as e:
            diagnostics.append(e.diagnostic)
        except Exception as e:  # a bug of the parser: an error to report, never a traceback
            diagnostics.append(source.diagnostic(1, 1, f"internal error of Kairos while parsing this file "
                                                 f"({type(e).__name__}: {e}); please report it with this file"))
    checker = Checker(schema, channels)
    scenarios, policy = checker.check(parsed)
    diagnostics += checker.diagnostics
    if diagnostics:
        names = list(file_order) or [s.name for s in sources]
        order = {name: i for i, name in reversed(list(enumerate(names)))}
        raise CheckError(sorted(diagnostics, key=lambda d: (order[d.file], d.line, d.col)))
    return plan.Plan(tuple(scenarios), policy, files=tuple(s.name for s in sources))
