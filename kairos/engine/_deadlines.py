"""The engine's deadline queue: (when, seq, owner, msisdn) entries, taken in (when, seq) order.

A binary heap of a million waits (one per subscriber an absence pattern
watches) costs a cache miss or three per push at its far end, and a tuple of
four objects (about 140 bytes) per entry. Here entries wait unsorted in
buckets of ``width`` ms, packed in columns — seq an int64, when as a 16-bit
offset into the bucket, owner 16 bits (wider if one needs it), and a list of
the numbers: about 20 bytes an entry — a push appends to a bucket that is hot
in cache — and only the earliest bucket, once time reaches it, becomes a small
heap of tuples. Entries pushed into a bucket already opened go straight into
that heap, so the order is exactly (when, seq) throughout. A bucket is a
minute: a million waits over three days fill a few thousand buckets, whose
own arrays cost little beside their entries (one-second buckets of a few
entries each cost more than the entries).
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator
from typing import Any

Entry = tuple[int, int, int, str]

_Bucket = list[Any]  # [offsets of when in the bucket ('H'), seqs ('q'), owners ('H', or 'q'), msisdns]

#: larger than any event time
NEVER = 2**63


class Deadlines:
    """A priority queue of deadline entries, bucketed by time."""

    __slots__ = ("width", "floor", "_buckets", "_keys", "_due", "_open")

    def __init__(self, width: int = 60_000) -> None:
        if not 0 < width <= 1 << 16:
            raise ValueError(f"a bucket is 1 to 65536 ms wide (a 16-bit offset), not {width}")
        self.width = width
        #: no entry is earlier than this (the engine's cheap "anything due?" test)
        self.floor = NEVER
        self._buckets: dict[int, _Bucket] = {}
        self._keys: list[int] = []  # heap of the buckets' keys (when // width)
        self._due: list[Entry] = []  # heap: the entries of opened buckets
        self._open = -NEVER  # the latest opened bucket's key

    def __len__(self) -> int:
        return len(self._due) + sum(len(b[3]) for b in self._buckets.values())

    def __iter__(self) -> Iterator[Entry]:
        """Every entry, in no particular order."""
        yield from self._due
        for key, bucket in self._buckets.items():
            yield from self._entries(key, bucket)

    def push(self, when: int, seq: int, owner: int, msisdn: str) -> None:
        """Add the entry (when, seq, owner, msisdn); ``seq`` orders entries of the same ``when``."""
        key = when // self.width
        if key <= self._open:
            heapq.heappush(self._due, (when, seq, owner, msisdn))
        else:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [array("H"), array("q"), array("H"), []]
                heapq.heappush(self._keys, key)
            bucket[0].append(when - key * self.width)
            bucket[1].append(seq)
            try:
                bucket[2].append(owner)
            except OverflowError:
                bucket[2] = array("q", bucket[2])  # an owner past 16 bits: this bucket's owners widen
                bucket[2].append(owner)
            bucket[3].append(msisdn)
        if when < self.floor:
            self.floor = when

    def pop_before(self, t: int) -> Entry | None:
        """The earliest entry with ``when < t`` (removed), or None."""
        due = self._due
        while not due:
            keys = self._keys
            if not keys or keys[0] * self.width >= t:
                self.floor = keys[0] * self.width if keys else NEVER
                return None
            key = heapq.heappop(keys)
            self._open = key
            due.extend(self._entries(key, self._buckets.pop(key)))
            heapq.heapify(due)
        if due[0][0] >= t:
            self.floor = due[0][0]
            return None
        entry = heapq.heappop(due)
        if due:
            self.floor = due[0][0]
        else:
            self.floor = self._keys[0] * self.width if self._keys else NEVER
        return entry

    def _entries(self, key: int, bucket: _Bucket) -> Iterator[Entry]:
        """A bucket's entries as (when, seq, owner, msisdn)."""
        start = key * self.width
        return zip([start + offset for offset in bucket[0]], bucket[1], bucket[2], bucket[3])  # noqa: B905 (hot path; columns of one bucket)

    def clear(self) -> None:
        self._buckets.clear()
        self._keys.clear()
        self._due.clear()
        self.floor = NEVER
