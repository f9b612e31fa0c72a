"""Subscribers' numbers out of the daemon's log: one structlog processor that pseudonymises every record.

A number becomes ``~`` and 16 hex digits of a keyed BLAKE2b hash: the same
number gives the same pseudonym under the same key (a log can still be read
per subscriber), and without the key it cannot be turned back or checked
against a guess. The processor runs on every record, so no call site can
forget it:

| field | what is written |
| --- | --- |
| ``msisdn``, ``peer`` | the pseudonym |
| ``id``, ``trigger_id``, ``ids`` | the id with its number replaced: ``SCENARIO:~…:TS[:N]`` |
| ``line`` (a raw input line) | JSON: the same object with those fields replaced; anything else: also every run of 7 or more digits replaced |
| ``error`` | ids and ``"msisdn": "…"`` pairs replaced, and every run of 7 or more digits inside quotes (a
  decoder's limits, like ``<= 1000000000000000``, stay readable) |
| any other text | ids and ``"msisdn": "…"`` pairs replaced |

The key comes from ``KAIROS_PSEUDONYM_KEY`` or else ``log.pseudonym_key``;
with neither, a random key is made for the process (and said so in the log):
pseudonyms then cannot be linked across restarts.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import MutableMapping
from typing import Any

import msgspec

ENV_KEY = "KAIROS_PSEUDONYM_KEY"

_NUMBER_KEYS = frozenset({"msisdn", "peer"})
_ID_KEYS = frozenset({"id", "trigger_id", "ids", "trigger_ids"})

#: ``SCENARIO:MSISDN:TS[:N]`` inside text (a trigger id)
_ID_IN_TEXT = re.compile(r"(?<![\w:~/.-])([A-Za-z_]\w*):([^:\s\"',{}\[\]/]+):(\d+)(?=\b)")
#: ``"msisdn": "…"`` (or a number) inside text that is not valid JSON
_PAIR_IN_TEXT = re.compile(r'("(?:msisdn|peer)"\s*:\s*)("[^"]*"?|[^,}\s]+)')
_DIGIT_RUN = re.compile(r"(?<![~\w])\d{7,}")
#: a quoted value inside an error text (``trigger_id 'x:7916…'``, a repr): where a number in an error would be
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


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
        for k, v in record.items():
            if k != "event":
                record[k] = self._value(k, v)
        return record

    # --- by field -------------------------------------------------------------

    def _value(self, key: str, v: Any) -> Any:
        if isinstance(v, str):
            if key in _NUMBER_KEYS:
                return self.of(v)
            if key in _ID_KEYS:
                return self.id(v)
            if key == "line":
                return self.line(v)
            text = self.text(v)
            return _QUOTED.sub(self._quoted, text) if key == "error" else text
        if isinstance(v, int) and key in _NUMBER_KEYS:
            return self.of(str(v))
        if isinstance(v, (list, tuple)):
            return [self._value(key, x) for x in v]
        if isinstance(v, dict):
            return {k: self._value(k if isinstance(k, str) else key, x) for k, x in v.items()}
        return v

    def id(self, trigger_id: str) -> str:
        """``SCENARIO:MSISDN:TS[:N]`` with the number replaced (anything else: as text)."""
        parts = trigger_id.split(":")
        if len(parts) in (3, 4) and not parts[1].startswith("~"):
            parts[1] = self.of(parts[1])
            return ":".join(parts)
        return self.text(trigger_id)

    def text(self, text: str) -> str:
        """Ids and ``"msisdn": …`` pairs inside free text."""
        if ":" not in text:
            return text
        text = _ID_IN_TEXT.sub(self._id_match, text)
        return _PAIR_IN_TEXT.sub(self._pair_match, text)

    def line(self, raw: str) -> str:
        """A raw input line: a JSON object keeps its shape; anything else loses every long digit run too."""
        try:
            obj = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            obj = None
        if isinstance(obj, dict):
            return msgspec.json.encode(self._value("", obj)).decode()
        return _DIGIT_RUN.sub(self._digits, self.text(raw))

    def _id_match(self, m: re.Match[str]) -> str:
        return f"{m[1]}:{self.of(m[2])}:{m[3]}"

    def _pair_match(self, m: re.Match[str]) -> str:
        value = m[2].strip('"')
        return f'{m[1]}"{self.of(value)}"'

    def _quoted(self, m: re.Match[str]) -> str:
        return _DIGIT_RUN.sub(self._digits, m[0])

    def _digits(self, m: re.Match[str]) -> str:
        return self.of(m[0])


def pseudonym_key(configured: str) -> tuple[bytes, str]:
    """The key and where it came from: the environment, the configuration, or random for this process."""
    env = os.environ.get(ENV_KEY, "")
    if env:
        return env.encode(), "environment"
    if configured:
        return configured.encode(), "configuration"
    return os.urandom(32), "random"
