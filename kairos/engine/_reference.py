"""Reference data (LANGUAGE.md §7): cells → areas, tags, lists, the DPI knowledge base.

Loaded once; every lookup on the hot path is a dict or set probe. Errors name
the file and line so an operator can fix the data.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from kairos.engine._events import check_tags

_EMPTY: frozenset[str] = frozenset()
#: distinct sets of written names shared at most (tag names are few; profile events naming ever new
#: ones must not grow the table without end: past this a subscriber's set is its own)
_SHAPES = 4096
_NO_TAGS: dict[str, Any] = {}


class ReferenceError(Exception):
    """A reference file is missing a column or holds a line that cannot be read."""


class _TagLine(msgspec.Struct):
    msisdn: str
    tags: dict[str, Any]

    def __post_init__(self) -> None:
        check_tags(self.tags)  # as a ``profile`` event's: tags are snapshotted


class _TagNames(msgspec.Struct):
    """A ``tags.jsonl`` line read for its tag names only: the values are left undecoded."""

    msisdn: str
    tags: dict[str, msgspec.Raw]


class ReferenceNames(msgspec.Struct, frozen=True):
    """The names a reference folder holds: its lists, its areas, the tag names seen in ``tags.jsonl``."""

    lists: frozenset[str]
    areas: frozenset[str]
    tags: frozenset[str]

    @classmethod
    def scan(cls, folder: str | Path) -> ReferenceNames:
        """Read a reference folder for its names only, without building its tables (``kairos check
        --reference``): list files by name, ``cells.csv``'s areas, and each ``tags.jsonl`` line's tag
        names with the values skipped (a 1,000,000-line file in about 2 s)."""
        root = Path(folder)
        if not root.is_dir():
            raise ReferenceError(f"{root}: reference folder does not exist")
        lists = root / "lists"
        return cls(
            lists=frozenset(p.stem for p in lists.glob("*.txt")) if lists.is_dir() else frozenset(),
            areas=frozenset().union(*_load_cells(root / "cells.csv").values()),
            tags=_tag_names(root / "tags.jsonl"),
        )


class KnowledgeBase:
    """Host suffix → (app, category); the first pattern in file order wins."""

    __slots__ = ("_patterns", "_cache", "_max_cache")

    def __init__(self, rows: list[tuple[str, str, str]], max_cache: int = 200_000) -> None:
        self._patterns: dict[str, tuple[int, str, str]] = {}
        for rank, (pattern, app, category) in enumerate(rows):
            self._patterns.setdefault(pattern, (rank, app, category))
        self._cache: dict[str, tuple[str, str] | None] = {}
        self._max_cache = max_cache

    def __len__(self) -> int:
        return len(self._patterns)

    def label(self, host: str) -> tuple[str, str] | None:
        """The (app, category) of the first pattern ``host`` ends with, if any."""
        hit = self._cache.get(host, False)
        if hit is not False:
            return hit  # type: ignore[return-value]  # False marks a miss; all else is an answer
        best: tuple[int, str, str] | None = None
        patterns = self._patterns
        for i in range(len(host)):
            found = patterns.get(host[i:])
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        result = None if best is None else (best[1], best[2])
        if len(self._cache) >= self._max_cache:
            self._cache.clear()
        self._cache[host] = result
        return result


class Reference:
    """All reference data of one folder, shaped for O(1) lookups."""

    __slots__ = ("areas_of_cell", "area_names", "tags", "lists", "kb", "written", "_shapes")

    def __init__(
        self,
        areas_of_cell: dict[str, frozenset[str]] | None = None,
        tags: dict[str, dict[str, Any]] | None = None,
        lists: dict[str, frozenset[str]] | None = None,
        kb: KnowledgeBase | None = None,
    ) -> None:
        self.areas_of_cell = areas_of_cell or {}
        self.area_names: frozenset[str] = frozenset().union(*self.areas_of_cell.values())
        self.tags = tags if tags is not None else {}
        self.lists = lists or {}
        self.kb = kb or KnowledgeBase([])
        #: msisdn → the names of the subscriber's tags the engine wrote (a ``set`` clause, a ``profile``
        #: event), a removal included: these survive ``tags.jsonl`` being read again (``overlay``)
        self.written: dict[str, frozenset[str]] = {}
        self._shapes: dict[frozenset[str], frozenset[str]] = {}  # each set of names once, shared

    @classmethod
    def load(cls, folder: str | Path) -> Reference:
        """Read a reference folder; every file is optional."""
        root = Path(folder)
        if not root.is_dir():
            raise ReferenceError(f"{root}: reference folder does not exist")
        return cls(
            areas_of_cell=_load_cells(root / "cells.csv"),
            tags=_load_tags(root / "tags.jsonl"),
            lists=_load_lists(root / "lists"),
            kb=KnowledgeBase(_load_kb(root / "kb.csv")),
        )

    def areas(self, cell: Any) -> frozenset[str]:
        return self.areas_of_cell.get(cell, _EMPTY)

    def update_tags(self, msisdn: str, changes: dict[str, Any]) -> None:
        """Apply a ``profile`` event or a ``set`` clause: merge the tags; a null value removes the tag.

        Each name is marked written for the subscriber (``written``). A profile event comes with every
        scenario, set or not: a subscriber already marked for these names costs one probe, and the marks
        are one frozenset per subscriber, shared by every subscriber written the same names."""
        current = self.tags.get(msisdn)
        if current is None:
            msisdn = sys.intern(msisdn)  # kept for long (a key): the one copy of the number
            current = self.tags[msisdn] = {}
        names = self.written.get(msisdn)
        if names is None or not names.issuperset(changes):
            self._mark(msisdn, names, changes)
        for name, value in changes.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value

    def _mark(self, msisdn: str, names: frozenset[str] | None, more: Iterable[str]) -> None:
        """Mark ``more`` written for ``msisdn`` (besides ``names``, its marks so far)."""
        marks = frozenset(more) if names is None else names.union(more)
        shapes = self._shapes
        shared = shapes.get(marks)
        if shared is None:
            if len(shapes) < _SHAPES:
                shapes[marks] = marks
            shared = marks
        self.written[sys.intern(msisdn)] = shared  # the number as the tags' key holds it

    def written_by_name(self) -> dict[str, list[str]]:
        """The marks as a snapshot keeps them: tag name → the subscribers written it, both sorted (the
        same state, the same bytes)."""
        by_name: dict[str, list[str]] = {}
        for msisdn, names in self.written.items():
            for name in names:
                numbers = by_name.get(name)
                if numbers is None:
                    numbers = by_name[name] = []
                numbers.append(msisdn)
        return {name: sorted(by_name[name]) for name in sorted(by_name)}

    def replace(self, tags: dict[str, dict[str, Any]]) -> None:
        """Take ``tags`` whole (a snapshot from before written tags were marked), marking written every tag
        that differs from the tags loaded now (a removal included): the next snapshot then keeps them over
        ``tags.jsonl`` read again, as if they had been marked when written."""
        loaded = self.tags
        for m in loaded.keys() | tags.keys():
            was = loaded.get(m, _NO_TAGS)
            now = tags.get(m, _NO_TAGS)
            differ = [name for name in was.keys() | now.keys() if not _same(was.get(name), now.get(name))]
            if differ:
                self._mark(m, self.written.get(m), differ)
        loaded.clear()
        loaded.update((sys.intern(m), values) for m, values in tags.items())  # one copy of each number

    def overlay(self, tags: dict[str, dict[str, Any]], written: dict[str, list[str]]) -> None:
        """Put back the tags the engine wrote (a snapshot's ``tags``, marked in ``written``) over the
        tags loaded now from ``tags.jsonl``: a written value (or removal) wins for its name and
        subscriber, every other tag is the file's as read now."""
        marked: dict[str, list[str]] = {}
        for name, numbers in written.items():
            for m in numbers:
                names = marked.get(m)
                if names is None:
                    names = marked[m] = []
                names.append(name)
                value = tags.get(m, _NO_TAGS).get(name)
                current = self.tags.get(m)
                if value is not None:
                    if current is None:
                        current = self.tags[sys.intern(m)] = {}
                    current[name] = value
                elif current is not None:
                    current.pop(name, None)
        for m, names in marked.items():
            self._mark(m, self.written.get(m), names)


def _same(a: Any, b: Any) -> bool:
    """Two tag values are the same value of the same type (``True`` is not ``1``, nor ``1`` ``1.0``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        return bool(msgspec.json.encode(a) == msgspec.json.encode(b))
    return bool(a == b)


def _read_text(path: Path) -> str:
    """The text of a reference file, without the byte-order mark Excel or Notepad may write.

    Left in, the mark would hide the header of a CSV file or silently change
    the first number of a list, so that subscriber would not be matched. A file
    that is not UTF-8 (a GBK export) is refused with the line of its first bad byte.
    """
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start + (3 if raw.startswith(codecs.BOM_UTF8) else 0)
        line = raw.count(b"\n", 0, start) + 1
        raise ReferenceError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[start]:02x}); save the file as UTF-8"
        ) from None


def _csv_rows(path: Path, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    with io.StringIO(_read_text(path), newline="") as f:
        reader = csv.reader(f)
        first = next(reader, None)
        if first is None or tuple(c.strip() for c in first[: len(header)]) != header:
            raise ReferenceError(f"{path}:1: expected the header {','.join(header)}")
        rows = []
        for row in reader:
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < len(header):
                raise ReferenceError(
                    f"{path}:{reader.line_num}: expected {len(header)} columns "
                    f"({','.join(header)}), got {len(row)}"
                )
            rows.append((reader.line_num, [c.strip() for c in row]))
        return rows


def _load_cells(path: Path) -> dict[str, frozenset[str]]:
    if not path.exists():
        return {}
    grouped: dict[str, set[str]] = {}
    for _, (cell, area, *_) in _csv_rows(path, ("cell", "area")):
        grouped.setdefault(cell, set()).add(area)
    return {cell: frozenset(areas) for cell, areas in grouped.items()}


def _load_tags(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    decoder = msgspec.json.Decoder(_TagLine)
    out: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(_read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = decoder.decode(line)
        except msgspec.DecodeError as e:
            raise ReferenceError(f"{path}:{n}: {e}") from None
        out.setdefault(sys.intern(row.msisdn), {}).update(row.tags)
    return out


def _tag_names(path: Path) -> frozenset[str]:
    """The tag names of ``tags.jsonl``, line by line in bytes (no copy of the file as text); a line that
    is not a tags line is refused as ``_load_tags`` refuses it, with its number."""
    if not path.exists():
        return frozenset()
    decode = msgspec.json.Decoder(_TagNames).decode
    names: set[str] = set()
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            try:
                names.update(decode(line.removeprefix(codecs.BOM_UTF8) if n == 1 else line).tags)
            except msgspec.DecodeError as e:
                if line.strip():
                    raise ReferenceError(f"{path}:{n}: {e}") from None
    return frozenset(names)


def _load_lists(folder: Path) -> dict[str, frozenset[str]]:
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.txt")):
        lines = _read_text(path).split("\n")
        out[path.stem] = frozenset(s for s in (line.strip() for line in lines) if s and not s.startswith("#"))
    return out


def _load_kb(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [(p, app, cat) for _, (p, app, cat, *_) in _csv_rows(path, ("pattern", "app", "category"))]
