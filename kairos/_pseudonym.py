"""Subscribers' numbers out of the daemon's log: one structlog processor that pseudonymises every record.

A number becomes ``~`` and 16 hex digits of a keyed BLAKE2b hash: the same
number gives the same pseudonym under the same key (a log can still be read
per subscriber), and without the key it cannot be turned back or checked
against a guess. The processor runs on every record, after tracebacks are
rendered, so no call site can forget it:

| field | what is written |
| --- | --- |
| ``msisdn``, ``peer`` | the pseudonym |
| ``id``, ``trigger_id``, ``ids`` | the id with its number replaced: ``SCENARIO:~…:TS[:N]`` |
| ``line`` (a raw input line) | JSON: the same object with every run of 7 or more digits replaced, in any value or
  key at any depth (a whole number of 7 or more digits too), except an epoch-ms ``ts``; anything else: every run
  of 7 or more digits replaced, and if the line is as long as the call sites cut lines (``LINE_CUT`` bytes) the
  digits at its end, however few, become ``<cut>`` (they may be a cut number) |
| ``error`` | ids and ``"msisdn": "…"`` pairs replaced, and every run of 7 or more digits inside quotes (a
  decoder's limits, like ``<= 1000000000000000``, stay readable), except in a quoted file path |
| ``exception``, ``stack`` (tracebacks) | ids, pairs and every run of 7 or more digits replaced, except the
  ``File "…", line N`` places and quoted file paths |
| any other text | ids and ``"msisdn": "…"`` / ``msisdn='…'`` pairs replaced |

A quoted file path (no whitespace, ``:`` or ``@``, and a ``/`` or a ``.`` and 1 to 5
letters at its end: ``'/data/snap/unit-20261204.snap'``) stays readable in an
error or a traceback, digits and all: the numbers in the paths the daemon
meets are dates and counters, not subscribers' numbers, and an error that
cannot say which file it could not open cannot be acted on. This is a choice:
a number put into a file name would be written as it is.

Every text is first cut to ``TEXT_CAP`` bytes (64 KiB) and, if cut, treated
as a cut line: the digits at its edge are dropped and it ends in ``<cut>``.
With the cap and patterns that scan each character a bounded number of times,
a record costs time linear in its size, however it was made.

Bytes are read as UTF-8 text (bad bytes replaced) under the same rules, and
any other object as its ``repr``, which is what the JSON renderer would write.
Whatever cannot be read (a value that raises) is written ``<unloggable>``:
the processor never raises, since a raising processor would stop the daemon.

Libraries that log through the standard ``logging`` module (aiosmpplib, with
its own handler outside the logger tree) are covered by ``pseudonymise_stdlib``:
every record is rewritten when it is made — message, traceback and stack —
with the traceback rules, and hex dumps of PDUs are removed.

The key comes from ``KAIROS_PSEUDONYM_KEY`` or else ``log.pseudonym_key``;
with neither, a random key is made for the process (and said so in the log):
pseudonyms then cannot be linked across restarts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, MutableMapping
from typing import Any

import msgspec

ENV_KEY = "KAIROS_PSEUDONYM_KEY"
#: how many bytes of a raw line the call sites log (``line[:200]``): a line this long may end in a cut number
LINE_CUT = 200
UNLOGGABLE = "<unloggable>"
#: the most of any one text the processor reads and writes (UTF-8 bytes); a longer one is cut
TEXT_CAP = 64 * 1024
CUT = "<cut>"

_NUMBER_KEYS = frozenset({"msisdn", "peer"})
_ID_KEYS = frozenset({"id", "trigger_id", "ids", "trigger_ids"})
_TRACEBACK_KEYS = frozenset({"exception", "stack"})
#: written by structlog itself: nothing to replace
_OWN_KEYS = frozenset({"event", "level", "timestamp"})

#: ``SCENARIO:MSISDN:TS[:N]`` inside text (a trigger id)
_ID_IN_TEXT = re.compile(r"(?<![\w:~/.-])([A-Za-z_]\w*):([^:\s\"',{}\[\]/]+):(\d+)(?=\b)")
#: ``"msisdn": "…"`` (or a number) inside text that is not valid JSON, and ``msisdn='…'`` in a repr
_PAIR_IN_TEXT = re.compile(r"""(["'](?:msisdn|peer)["']\s*:\s*)("[^"]*"?|'[^']*'?|[^,}\s]+)"""
                           r"""|(\b(?:msisdn|peer)=)("[^"]*"|'[^']*'|\d+)""")
#: a run of 7 or more digits (glued to letters or not); a pseudonym, and an id already pseudonymised (its ts), are
#: matched to be kept. The id starts only where a word starts: tried inside a long word it would be quadratic
_RUN = re.compile(r"(?<!\w)[A-Za-z_]\w*:~[0-9a-f]{16}:\d+(?::\d+)?|~[0-9a-f]{16}|\d{7,}")
#: a quoted value inside an error text (``trigger_id 'x:7916…'``, a repr): where a number in an error would be
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
#: a place in a traceback, or a quoted string on one line (kept readable if it is a file path)
_PLACE = re.compile(r'File "[^"\n]*", line \d+' r"|(?<!\w)'[^'\n]*'" r'|(?<!\w)"[^"\n]*"')
#: a file path inside quotes: no whitespace, ``:`` or ``@`` (not an id, a URL or an address), and a ``/`` or an
#: extension of 1 to 5 letters
_PATH = re.compile(r"""(['"])(?=[^\s'":@]*/|[^\s'":@]*\.[A-Za-z]{1,5}\1)[^\s'":@]+\1""")
#: a hex dump of a PDU: ``pdu=…`` or ``"pdu": "…"``
_PDU = re.compile(r"""(["']?pdu["']?\s*[:=]\s*)(["'][0-9A-Fa-f]*["']|[0-9A-Fa-f]+)""")
#: a hex token, redacted if it holds 7 or more ASCII digits (``3`` and a digit each) or UCS-2 digits (``003`` and a
#: digit): one pattern for both would be cubic, backtracking over where the digits start and end
_HEX_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]+(?![0-9A-Za-z])")
_HEX_DIGITS = re.compile(r"(?:3[0-9]){7,}|(?:003[0-9]){7,}")
#: the digits at a text's end (from where their run starts, so a long run is scanned once)
_CUT_EDGE = re.compile(r"(?<!\d)\d+\Z")
_TS_MIN, _TS_MAX = 10**12, 10**13  # an epoch-ms ts of 13 digits: 2001 to 2286
_LONG_INT = 10**6  # a whole number of 7 or more digits


class Pseudonymiser:
    """The structlog processor; ``of(msisdn)`` is the pseudonym of one number."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2b(key, digest_size=32).digest()  # any length of key fits BLAKE2b's 64 bytes
        self._cache: dict[str, str] = {}

    def of(self, msisdn: str) -> str:
        cache = self._cache
        out = cache.get(msisdn)
        if out is None:
            out = "~" + hashlib.blake2b(msisdn.encode(), key=self._key, digest_size=8).hexdigest()
            if len(cache) < 100_000:
                cache[msisdn] = out
        return out

    def __call__(self, _logger: Any, _method: str, record: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        try:
            for k, v in list(record.items()):
                if k not in _OWN_KEYS:
                    try:
                        record[k] = self._value(k, v)
                    except Exception:  # noqa: BLE001 - a value that cannot be read is not written, and the daemon goes on
                        record[k] = UNLOGGABLE
            return record
        except Exception:  # noqa: BLE001 - not even a mapping: a record that says so
            event = record.get("event") if isinstance(record, MutableMapping) else None
            return {"event": event if isinstance(event, str) else UNLOGGABLE}

    # --- by field -------------------------------------------------------------

    def _value(self, key: str, v: Any) -> Any:
        if isinstance(v, (bytes, bytearray, memoryview)):
            v = bytes(v[:TEXT_CAP + 1]).decode("utf-8", "replace")
        if isinstance(v, str):
            v = capped(v)
            if key in _NUMBER_KEYS:
                return self.of(v)
            if key in _ID_KEYS:
                return self.id(v)
            if key == "line":
                return self.line(v)
            if key in _TRACEBACK_KEYS:
                return self.traceback(v)
            text = self.text(v)
            return _QUOTED.sub(self._quoted, text) if key == "error" else text
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            return self.of(str(v)) if key in _NUMBER_KEYS else v
        if isinstance(v, float):
            return self.of(repr(v)) if key in _NUMBER_KEYS else v
        if isinstance(v, (list, tuple, set, frozenset)):
            return [self._value(key, x) for x in v]
        if isinstance(v, dict):
            return {k: self._value(k if isinstance(k, str) else key, x) for k, x in v.items()}
        return self._value(key, repr(v))  # what the JSON renderer would write for it

    def id(self, trigger_id: str) -> str:
        """``SCENARIO:MSISDN:TS[:N]`` with the number replaced (anything else: as text)."""
        parts = trigger_id.split(":")
        if len(parts) in (3, 4) and not parts[1].startswith("~"):
            parts[1] = self.of(parts[1])
            return ":".join(parts)
        return self.text(trigger_id)

    def text(self, text: str) -> str:
        """Ids and ``"msisdn": …`` pairs inside free text."""
        if ":" not in text and "=" not in text:
            return text
        text = _ID_IN_TEXT.sub(self._id_match, text)
        return _PAIR_IN_TEXT.sub(self._pair_match, text)

    def digits(self, text: str) -> str:
        """Ids, pairs and every other run of 7 or more digits inside text that may hold anything."""
        return _RUN.sub(self._run, self.text(text))

    def traceback(self, text: str) -> str:
        """A traceback (or a library's message): as ``digits``, but its ``File "…", line N`` places and quoted
        file paths kept."""
        out, at = [], 0
        for m in _PLACE.finditer(text):
            if m[0][0] in "'\"" and not _PATH.fullmatch(m[0]):
                continue  # a quoted string that is no path: read with the text around it
            out += (self.digits(text[at:m.start()]), m[0])
            at = m.end()
        out.append(self.digits(text[at:]))
        return "".join(out)

    def line(self, raw: str) -> str:
        """A raw input line: a JSON object keeps its shape; anything else loses every long digit run too."""
        try:
            obj = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            obj = None
        if isinstance(obj, dict):
            return msgspec.json.encode(self._json("", obj)).decode()
        if len(raw) >= LINE_CUT or len(raw.encode("utf-8", "replace")) >= LINE_CUT:
            raw = _CUT_EDGE.sub(CUT, raw)  # perhaps cut inside a number: its digits at the edge say nothing
        return self.digits(raw)

    def _json(self, key: str, v: Any) -> Any:
        """One value of a JSON line: any long number anywhere is replaced, whatever its key."""
        if key == "ts" and _looks_like_ts(v):
            return v
        if isinstance(v, str):
            if key.lower() in _NUMBER_KEYS:
                return self.of(v)
            return self.id(v) if key in _ID_KEYS and v.count(":") in (2, 3) else self.digits(v)
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            return self.of(str(v)) if key.lower() in _NUMBER_KEYS or abs(v) >= _LONG_INT else v
        if isinstance(v, float):
            return self.of(repr(v)) if key.lower() in _NUMBER_KEYS or _RUN.search(repr(v)) else v
        if isinstance(v, list):
            return [self._json(key, x) for x in v]
        if isinstance(v, dict):
            return {self.digits(k): self._json(k, x) for k, x in v.items()}
        return self.digits(repr(v))

    def _id_match(self, m: re.Match[str]) -> str:
        return f"{m[1]}:{self.of(m[2])}:{m[3]}"

    def _pair_match(self, m: re.Match[str]) -> str:
        if m[1] is None:  # msisdn='…' in a repr
            value = m[4]
            quote = value[0] if value[0] in "'\"" else ""
            return f"{m[3]}{quote}{self.of(value.strip(quote) if quote else value)}{quote}"
        value = m[2].strip("\"'")
        return f'{m[1]}"{self.of(value)}"'

    def _quoted(self, m: re.Match[str]) -> str:
        return m[0] if _PATH.fullmatch(m[0]) else _RUN.sub(self._run, m[0])

    def _run(self, m: re.Match[str]) -> str:
        s = m[0]
        return self.of(s) if s[0].isdigit() else s  # a pseudonym, or an id already pseudonymised, as it is

    # --- the standard library's logging ---------------------------------------

    def foreign(self, text: str) -> str:
        """A library's log text: as a traceback, and hex dumps of PDUs (which hold the numbers they carry) removed."""
        text = _PDU.sub(_redact_pdu, capped(text))
        return self.traceback(_HEX_TOKEN.sub(_redact_hex, text))

    def stdlib(self, record: logging.LogRecord) -> None:
        """Rewrite a ``logging`` record in place: its message, traceback and stack (never raises)."""
        try:
            record.msg, record.args = self.foreign(record.getMessage()), ()
            if record.exc_info:
                record.exc_text = self.foreign(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None  # formatters write exc_text instead
            elif record.exc_text:
                record.exc_text = self.foreign(record.exc_text)
            if record.stack_info:
                record.stack_info = self.foreign(record.stack_info)
        except Exception:  # noqa: BLE001 - a record that cannot be read is not written, and the daemon goes on
            record.msg, record.args, record.exc_info, record.exc_text, record.stack_info = UNLOGGABLE, (), None, None, None


def capped(text: str) -> str:
    """A text of at most ``TEXT_CAP`` UTF-8 bytes; a longer one cut, as a cut line: edge digits dropped, ``<cut>``."""
    if len(text) <= TEXT_CAP // 4:  # 4 bytes at most a character: short enough without encoding it
        return text
    raw = text[:TEXT_CAP + 1].encode("utf-8", "surrogatepass")
    if len(raw) <= TEXT_CAP and len(text) <= TEXT_CAP:
        return text
    cut = raw[:TEXT_CAP - len(CUT)].decode("utf-8", "ignore")  # a character cut in two is dropped whole
    return _CUT_EDGE.sub("", cut) + CUT


def _redact_hex(m: re.Match[str]) -> str:
    return "<redacted>" if _HEX_DIGITS.search(m[0]) else m[0]


def _redact_pdu(m: re.Match[str]) -> str:
    quote = m[2][0] if m[2][0] in "'\"" else ""
    return f"{m[1]}{quote}<redacted>{quote}"


def _looks_like_ts(v: Any) -> bool:
    """An epoch-ms time of 13 digits (int or digit string): not personal, and what finds the line."""
    if isinstance(v, int) and not isinstance(v, bool):
        return _TS_MIN <= v < _TS_MAX
    return isinstance(v, str) and len(v) == 13 and v.isascii() and v.isdigit() and v[0] != "0"


def pseudonymise_stdlib(pseudonymiser: Pseudonymiser | None) -> None:
    """Every standard ``logging`` record pseudonymised when it is made (``None``: no longer).

    A record factory rather than a handler or filter, because aiosmpplib's logger is made outside the logger tree
    with its own handler: no root handler or filter ever sees its records, but every record is made by the factory.
    """
    current = logging.getLogRecordFactory()
    base: Callable[..., logging.LogRecord] = getattr(current, "kairos_base", current)
    if pseudonymiser is None:
        logging.setLogRecordFactory(base)
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        pseudonymiser.stdlib(record)
        return record

    factory.kairos_base = base  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def pseudonym_key(configured: str) -> tuple[bytes, str]:
    """The key and where it came from: the environment, the configuration, or random for this process."""
    env = os.environ.get(ENV_KEY, "")
    if env:
        return env.encode(), "environment"
    if configured:
        return configured.encode(), "configuration"
    return os.urandom(32), "random"
