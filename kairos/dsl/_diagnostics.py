"""Error reports a scenario author can act on: position, message, the line and a caret.

Every error the front end finds becomes a ``Diagnostic``; ``CheckError`` carries
all of them. ``Source`` is one file's text with the lookups a report needs.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from typing import Literal

import msgspec


class Diagnostic(msgspec.Struct, frozen=True):
    """One error (or warning): where (1-based line and column), what, and the source line it is on."""

    file: str
    line: int
    col: int
    message: str
    source_line: str
    #: ``warning``: worth a look, but the file is valid (``kairos check --reference`` on a tag only a
    #: ``profile`` event could bring)
    severity: Literal["error", "warning"] = "error"

    def render(self) -> str:
        """``FILE:LINE:COL: error: MESSAGE`` (or ``warning:``), the source line, a caret under the column.

        COL counts characters; the caret's padding repeats the line's tabs and
        gives a wide (East Asian) character two spaces, so the caret stands
        under the column in a terminal even after Chinese text.
        """
        pad = "".join(_pad(c) for c in self.source_line[: self.col - 1])
        pad += " " * (self.col - 1 - len(self.source_line))
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}\n{self.source_line}\n{pad}^"


def _pad(char: str) -> str:
    """What stands under ``char`` to move the caret past it."""
    if char == "\t":
        return "\t"
    return "  " if unicodedata.east_asian_width(char) in ("W", "F") else " "


class CheckError(Exception):
    """Scenario sources are invalid; ``diagnostics`` holds every error found, in file order."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics

    def __str__(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)


class Source:
    """One scenario file: its name (as reported), its text, its lines."""

    __slots__ = ("name", "text", "_lines")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._lines = text.split("\n")

    def line(self, number: int) -> str:
        """The text of a 1-based line, without its line break."""
        return self._lines[number - 1].rstrip("\r") if number <= len(self._lines) else ""

    def diagnostic(self, line: int, col: int, message: str) -> Diagnostic:
        return Diagnostic(self.name, line, col, message, self.line(line))


class ParseError(Exception):
    """The parser cannot go on; carries the one diagnostic it reports for the file."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when exactly one candidate is close to ``word``, else ``""``.

    Names are lower-case, so ``WHEN`` or ``SMS`` means the lower-case word when that is one.
    """
    names = sorted(set(candidates))
    if word != word.lower() and word.lower() in names:
        return f"; did you mean '{word.lower()}'?"
    close = difflib.get_close_matches(word, names, n=2, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if len(close) == 1 else ""
