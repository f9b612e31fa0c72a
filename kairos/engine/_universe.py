"""The universe of a schedule (LANGUAGE.md §9.1): every msisdn in ``tags.jsonl`` and every
msisdn seen in any event or ``profile`` so far.

Kept only when a loaded scenario has a schedule. The tag table's numbers are
members without any cost here (the reference already holds them); the numbers
seen only in events are kept as a sorted ``array('q')`` of their integer value
(8 bytes a member) plus a small set of the ones seen since the last merge.
A number that is not a plain digit string (a leading zero, a ``+``, too long
for 64 bits) is kept as text. The numbers of the last events not in the tag table are remembered in a
bounded set, so a subscriber with many events pays one dict lookup (the tag
table) and at most one set lookup per event; the array is searched only for a
number not among them. ``members()`` lists them all in ascending
msisdn (text) order, the order a schedule visits them in.
"""

from __future__ import annotations

import bisect
import sys
from itertools import islice
from array import array
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

#: the set of numbers seen since the last merge is merged into the array past this size
#: (or past half the array's, whichever is larger): merges cost O(members) each, rarely
MERGE_AT = 1 << 16
_MAX_DIGITS = 18  # every 18-digit number fits in an int64
#: numbers of recent events remembered as members (cleared when full): one set lookup per event; at
#: most about 23 MB (a number and its set slot), so a quarter million active subscribers pay no search
KNOWN_AT_MOST = 1 << 18


class UniverseState(msgspec.Struct, array_like=True):
    """A universe in a snapshot: the merged numbers (int64, little-endian bytes) and the rest as text."""

    numbers: bytes
    texts: list[str]


def _plain(m: str) -> bool:
    """``m`` is kept as an integer: digits only, no leading zero, at most 18 of them."""
    return m.isdigit() and m.isascii() and len(m) <= _MAX_DIGITS and (m[0] != "0" or m == "0")


class Universe:
    """The subscribers a schedule visits; ``see(ev)`` is the route step that keeps it."""

    __slots__ = ("tags", "_numbers", "_fresh", "_texts", "known", "only", "_rows", "_rows_key", "_members")

    def __init__(self, tags: dict[str, Any]) -> None:
        #: the reference's tag table (``Reference.tags``): its keys are members
        self.tags = tags
        self._numbers = array("q")  # sorted, unique
        self._fresh: set[str] = set()  # seen since the last merge (may repeat merged ones)
        self._texts: set[str] = set()  # members that are not plain numbers
        #: numbers of recent events, known to be members: a route skips ``see`` for them (``_routes.Unless``)
        self.known: set[str] = set()
        #: a worker's or partition's share: only the tag rows it owns are its members (None: all)
        self.only: Callable[[str], bool] | None = None
        #: the tag rows (those ``only`` owns) in ascending order, as of ``_rows_key`` = (tag rows, ``only``):
        #: an instant merges the few numbers seen only in events into them instead of sorting a million
        self._rows: list[str] = []
        self._rows_key: tuple[int, Any] | None = None
        #: the last ``members()`` and what it was made of: schedules firing at one instant share one list
        self._members: tuple[tuple[int, Any, int, int], list[str]] | None = None

    def see(self, ev: Any) -> None:
        """An event's subscriber is a member from now on (a step of every route)."""
        m = ev.msisdn
        if m in self.tags:
            return  # a tag row: a member already, one lookup, nothing kept
        known = self.known
        if m in known:
            return
        if len(known) >= KNOWN_AT_MOST:
            known.clear()
        m = sys.intern(m)  # the one copy of the number (the states' keys), not the decoded line's
        known.add(m)
        if m in self._fresh or self._has(m):
            return
        fresh = self._fresh
        fresh.add(m)
        if len(fresh) > MERGE_AT and len(fresh) > len(self._numbers) >> 1:
            self._merge()

    def _has(self, m: str) -> bool:
        """``m`` is among the merged members."""
        if not _plain(m):
            return m in self._texts
        n = int(m)
        numbers = self._numbers
        k = bisect.bisect_left(numbers, n)
        return k < len(numbers) and numbers[k] == n

    def member(self, m: str) -> bool:
        """``m`` is among ``members()``: a tag row this universe owns, or a number seen in events — one
        hash probe for a tag row, not a search of the sorted members (a sweep's catch-up, per event)."""
        if m in self.tags:
            only = self.only
            if only is None or only(m):
                return True
        return m in self._fresh or self._has(m)

    def add(self, numbers: Iterable[str]) -> None:
        """Make each of ``numbers`` a member (a snapshot from before the universe was kept)."""
        self._rows_key = self._members = None  # restored: the reference's rows may have been replaced
        self._fresh.update(numbers)
        self._merge()

    def _merge(self, more: Iterable[int] = ()) -> None:
        fresh = self._fresh
        if not fresh and not more:
            return
        texts = self._texts
        ints = set()
        for m in fresh:
            if _plain(m):
                ints.add(int(m))
            else:
                texts.add(m)
        fresh.clear()
        ints.update(self._numbers)
        ints.update(more)
        self._numbers = array("q", sorted(ints))

    def members(self) -> list[str]:
        """Every member once, in ascending msisdn order. The caller may keep the list but must not change
        it: while no member is added the same list is returned (the catalogue's twelve day-1 schedules
        fire at one instant: one list of a million, not twelve)."""
        self._merge()
        rows = self.rows()
        key = (len(self.tags), self.only, len(self._numbers), len(self._texts))
        if self._members is not None and self._members[0] == key:
            return self._members[1]
        members = self._list(rows)
        self._members = (key, members)
        return members

    def _list(self, rows: list[str]) -> list[str]:
        numbers = self._numbers
        if not rows and not self._texts:
            seen = [str(n) for n in numbers]
            if not numbers or len(seen[0]) == len(seen[-1]):
                return seen  # numbers of one length: numeric order is text order
            return sorted(seen)
        tags, only = self.tags, self.only
        # the rest: seen in events, not a tag row this universe owns (rows are only added, never removed,
        # but by a snapshot's restore, which forgets the rows; a row added since ``rows()`` changed its key)
        rest = sorted(m for m in (*map(str, numbers), *self._texts)
                      if m not in tags or (only is not None and not only(m)))
        if not rest:
            return rows  # replaced, never changed, when rows are added: no copy of a million
        return sorted(rows + rest)  # two ascending runs: one merge, not a sort of every member

    def rows(self) -> list[str]:
        """The tag rows this universe owns, in ascending order: sorted once; rows added since (a ``set`` or
        ``profile`` of a new subscriber) are merged in; sorted again only after a restore or if ``only``
        changed. A daemon calls it when a unit opens, so its first instant does not pay for it."""
        tags, only = self.tags, self.only
        size = len(tags)
        was = self._rows_key
        if was is None or was[1] is not only or size < was[0]:
            self._rows = sorted(tags if only is None else [m for m in tags if only(m)])
        elif size > was[0]:  # rows added since (a dict keeps its order: the last ones): merged in, not re-sorted
            added = sorted(m for m in islice(reversed(tags), size - was[0]) if only is None or only(m))
            if added:
                self._rows = sorted(self._rows + added)  # two ascending runs: one merge
        self._rows_key = (size, only)
        return self._rows

    def __len__(self) -> int:
        return len(self.members())

    def bytes_per_member(self) -> float:
        """What the universe itself holds per member seen in events (the tag table is the reference's)."""
        self._merge()
        n = len(self._numbers) + len(self._texts)
        return 0.0 if n == 0 else (self._numbers.buffer_info()[1] * self._numbers.itemsize
                                   + sum(len(t) + 49 for t in self._texts)) / n

    # --- snapshots

    def capture(self) -> UniverseState:
        self._merge()
        numbers = self._numbers
        if array("q", [1]).tobytes() != (1).to_bytes(8, "little"):  # pragma: no cover (big-endian hosts)
            numbers = array("q", numbers)
            numbers.byteswap()
        return UniverseState(numbers.tobytes(), sorted(self._texts))

    def restore(self, state: UniverseState) -> None:
        self._rows_key = self._members = None  # the reference's rows may have been replaced with the snapshot's
        numbers = array("q")
        numbers.frombytes(state.numbers)
        if array("q", [1]).tobytes() != (1).to_bytes(8, "little"):  # pragma: no cover (big-endian hosts)
            numbers.byteswap()
        self._texts.update(state.texts)
        self._merge(numbers)
