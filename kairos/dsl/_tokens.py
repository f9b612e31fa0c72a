"""The tokenizer: one regular expression, tokens that remember where they were written.

Keywords are not reserved here: ``scenario`` is also a field of ``trigger``
events, so the parser decides by context what a NAME means.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from kairos.dsl._diagnostics import Source

NAME, NUMBER, DURATION, STRING, TIME, OP, EOF, ERROR = (
    "name", "number", "duration", "string", "time", "op", "eof", "error"
)

_TOKEN = re.compile(
    r"""
    (?P<skip>[ \t\r\f]+|\#[^\n]*)
    |(?P<newline>\n)
    |(?P<time>[0-9]+:[0-9]+)
    |(?P<duration>[0-9]+(?:\.[0-9]+)?[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>[0-9]+(?:\.[0-9]+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*")
    |(?P<op>->|==|!=|<=|>=|\.\.|[-+*/<>()\[\]{},:.%=])
    """,
    re.VERBOSE,
)

_HINTS = {"=": "; did you mean '=='?", "!": "; write `not`", "&": "; write `and`", "|": "; write `or`"}


class Token(NamedTuple):
    """A token: kind, its text as written, 1-based line and column, offsets in the file."""

    kind: str
    text: str
    line: int
    col: int
    start: int
    end: int


def tokenize(source: Source) -> list[Token]:
    """All tokens of the file, ending with an EOF token placed just after the last one.

    Text that is no token ends the list with an ERROR token, which the parser
    reports when it gets there (so an earlier syntax error is reported first).
    """
    text = source.text
    tokens: list[Token] = []
    line, line_start, pos = 1, 0, 0
    match = _TOKEN.match
    while pos < len(text):
        m = match(text, pos)
        if m is None:
            tokens.append(Token(ERROR, text[pos], line, pos - line_start + 1, pos, pos + 1))
            return tokens
        kind = m.lastgroup
        if kind == "newline":
            line += 1
            line_start = m.end()
        elif kind != "skip":
            tokens.append(Token(kind, m.group(), line, pos - line_start + 1, pos, m.end()))  # type: ignore[arg-type]  # a group name
        pos = m.end()
    if tokens:
        last = tokens[-1]
        tokens.append(Token(EOF, "", last.line, last.col + len(last.text), last.end, last.end))
    else:
        tokens.append(Token(EOF, "", 1, 1, 0, 0))
    return tokens


def error_message(token: Token) -> str:
    """What is wrong with an ERROR token."""
    if token.text == '"':
        return "unterminated string: close it with \" on the same line"
    return f"unexpected character {token.text!r}{_HINTS.get(token.text, '') or _full_width_hint(token.text)}"


_CURLY_QUOTES = {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"}


def _full_width_hint(char: str) -> str:
    """A hint for punctuation a Chinese input method typed: ＞ ： （ and curly quotes."""
    ascii_char = _CURLY_QUOTES.get(char) or unicodedata.normalize("NFKC", char)
    if ascii_char == char or not ascii_char.isascii():
        return ""
    return (f"; did you mean '{ascii_char}'? (a full-width character: switch the input method "
            "to half-width)")


def string_value(token: Token) -> str:
    """The value of a STRING token: quotes removed, ``\\"`` ``\\\\`` ``\\n`` decoded.

    Other backslashes are kept as written, so regular expressions such as
    ``"\\d+"`` read naturally.
    """
    return re.sub(r'\\(["\\n])', _unescape, token.text[1:-1])


def _unescape(m: re.Match[str]) -> str:
    c = m.group(1)
    return "\n" if c == "n" else c
