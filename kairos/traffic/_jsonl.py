"""Vectorised JSON lines: events held as numpy columns become bytes with no dict per event.

A line is a row of segments, each a column over a chunk of events: text drawn
from an interned table of byte strings (one code per event; keys, quotes and
punctuation live in the text), or an integer written in decimal (fixed width
for ``ts`` and msisdns, shortest form otherwise, ``-1`` for "nothing here").
``render`` writes each segment for all lines at once into a padded matrix and
squeezes the padding out in one pass — a few array passes per segment, not a
Python call per event.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_P10 = 10 ** np.arange(19, dtype=np.int64)


class Table:
    """Interned byte strings; a code is a row of ``padded()``."""

    def __init__(self) -> None:
        self._index: dict[bytes, int] = {}
        self._items: list[bytes] = []
        self._packed: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def code(self, text: bytes | str) -> int:
        """The code of ``text``, adding it the first time."""
        raw = text.encode() if isinstance(text, str) else text
        found = self._index.get(raw)
        if found is None:
            found = self._index[raw] = len(self._items)
            self._items.append(raw)
            self._packed = None
        return found

    def codes(self, texts: Sequence[bytes | str]) -> np.ndarray:
        """Codes of many texts, as an int32 array (for ``array[choice]`` lookups)."""
        return np.array([self.code(t) for t in texts], dtype=np.int32)

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """(a row per item, zero-padded to the longest; the length of each item)."""
        if self._packed is None:
            lens = np.array([len(t) for t in self._items], dtype=np.int64)
            rows = np.zeros((len(self._items), max(1, int(lens.max(initial=0)))), dtype=np.uint8)
            for i, t in enumerate(self._items):
                rows[i, : len(t)] = np.frombuffer(t, dtype=np.uint8)
            self._packed = (rows, lens)
        return self._packed


class Text:
    """A text segment: ``codes`` (an array, or one code for every line) into ``table``."""

    __slots__ = ("codes", "table")

    def __init__(self, codes: np.ndarray | int, table: Table) -> None:
        self.codes = codes
        self.table = table


class Fixed:
    """An integer column written with exactly ``width`` digits (``ts``, msisdns)."""

    __slots__ = ("values", "width")

    def __init__(self, values: np.ndarray, width: int) -> None:
        self.values = values
        self.width = width


class Int:
    """A non-negative integer column in shortest decimal form; ``-1`` writes nothing."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray) -> None:
        self.values = values


Segment = Text | Fixed | Int


def _int_digits(values: np.ndarray) -> np.ndarray:
    nd = np.searchsorted(_P10, values, side="right").astype(np.int64)
    nd[values == 0] = 1
    nd[values < 0] = 0
    return nd


def render(n: int, segments: Sequence[Segment]) -> bytes:
    """The bytes of ``n`` lines made of ``segments`` (each a column of length ``n``).

    Each segment fills its own block of columns of one padded matrix (a row
    per line) next to a mask of the bytes that count; one boolean compaction
    at the end squeezes the padding out.
    """
    if n == 0:
        return b""
    blocks: list[tuple[np.ndarray, np.ndarray | None]] = []  # (bytes, mask or None: all)
    for seg in segments:
        if isinstance(seg, Text):
            blocks.append(_text(n, seg))
        elif isinstance(seg, Fixed):
            blocks.append((_fixed(seg.values, seg.width), None))
        else:
            blocks.append(_int(seg.values))
    width = sum(b.shape[1] for b, _ in blocks)
    matrix = np.empty((n, width), dtype=np.uint8)
    mask = np.ones((n, width), dtype=bool)
    col = 0
    for data, valid in blocks:
        w = data.shape[1]
        matrix[:, col : col + w] = data
        if valid is not None:
            mask[:, col : col + w] = valid
        col += w
    return matrix[mask].tobytes()


def _text(n: int, seg: Text) -> tuple[np.ndarray, np.ndarray | None]:
    padded, lens = seg.table.padded()
    if not isinstance(seg.codes, np.ndarray):
        ln = int(lens[seg.codes])
        return np.broadcast_to(padded[seg.codes, :ln], (n, ln)), None
    ln_each = lens[seg.codes]
    w = int(ln_each.max())
    return padded[:, :w][seg.codes], np.arange(w) < ln_each[:, None]


def _fixed(values: np.ndarray, width: int) -> np.ndarray:
    return ((values[:, None] // _P10[width - 1 :: -1][:width]) % 10 + 48).astype(np.uint8)


def _int(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nd = np.searchsorted(_P10, values, side="right").astype(np.int64)
    nd[values == 0] = 1
    nd[values < 0] = 0
    width = max(1, int(nd.max()))
    exp = nd[:, None] - 1 - np.arange(width)
    digits = ((values[:, None] // _P10[np.maximum(exp, 0)]) % 10 + 48).astype(np.uint8)
    return digits, exp >= 0
