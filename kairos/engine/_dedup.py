"""Duplicate events: an event identical to one already taken within a window of event time is skipped.

Upstream feeds deliver at least once, so the same event can come twice. An
event's identity is its canonical encoding (the decoded struct as msgpack):
whitespace, key order and fields the engine ignores do not make two lines
different events, and since the msisdn and ts are part of it, identical
events are those of one subscriber at one time. Identities are kept in
buckets of event time and forgotten once the newest event seen is
``window_ms`` past their bucket, so memory is bounded by the events of one
window (docs/operations.md, "Duplicate input", gives the bytes per event). An event older
than the window is not remembered: one that old is late anyway wherever the
window is at least the allowed lateness.

Live, an identity is the encoding itself: a set of bytes hashes each once
(Python caches a bytes object's hash), which is several times cheaper than a
digest per event. A snapshot keeps the stable form, a 64-bit BLAKE2b digest
of the encoding, computed only when ``state()`` is taken (in the snapshot's
forked child). Restored digests sit in their own buckets; while any remain,
an event falling in one of those buckets is digested to be compared with
them, and they go as their buckets leave the window.

Synchronous and I/O-free; its ``state()`` goes into a snapshot so a restart
remembers what the snapshot's state has seen.
"""

from __future__ import annotations

from hashlib import blake2b

import msgspec

from kairos.engine._events import Event

__all__ = ["Dedup", "DedupState"]

_encode = msgspec.msgpack.Encoder().encode


class DedupState(msgspec.Struct, frozen=True):
    """What a snapshot keeps: the window, the newest ts seen and each bucket's identities."""

    window_ms: int
    bucket_ms: int
    top: int
    buckets: dict[int, list[bytes]]


class Dedup:
    """Filters duplicate events out of blocks of events."""

    __slots__ = ("window_ms", "bucket_ms", "top", "duplicates", "_buckets", "_restored", "_floor")

    def __init__(self, window_ms: int) -> None:
        if window_ms < 0:
            raise ValueError(f"a duplicate window must be 0 or more milliseconds, not {window_ms}")
        self.window_ms = window_ms
        self.bucket_ms = max(1_000, window_ms // 8)  #: memory holds at most the window and one bucket
        self.top = -(2**62)  #: the newest ts seen
        self.duplicates = 0
        self._buckets: dict[int, set[bytes]] = {}  #: bucket → encodings of the events taken
        self._restored: dict[int, set[bytes]] = {}  #: bucket → digests from a snapshot (empty once they age out)
        self._floor = self.top  #: events before this are too old to remember

    def __len__(self) -> int:
        """Identities remembered."""
        return sum(len(s) for s in self._buckets.values()) + sum(len(s) for s in self._restored.values())

    def fresh(self, events: list[Event]) -> list[Event]:
        """``events`` without the duplicates (the same list when there are none)."""
        return self.split(events)[0]

    def split(self, events: list[Event], late_from: int | None = None) -> tuple[list[Event], list[int]]:
        """(the events that are not duplicates, the indices of those that are).

        ``late_from``: the stream's time, for a caller whose lateness is judged first (an engine in
        ts order): an event older than it, or than an earlier event of the block, is passed on
        unjudged, so it is counted late (as every way of splitting a replay counts it), not duplicate."""
        buckets = self._buckets
        restored = self._restored
        size = self.bucket_ms
        top = self.top
        floor = self._floor
        encode = _encode
        skipped: list[int] = []
        kept: list[Event] | None = None
        late = late_from is not None
        now = -(2**62) if late_from is None else late_from
        lo = hi = 0  # the bucket of the previous event: a block mostly stays in one
        seen: set[bytes] | None = None
        old: set[bytes] | None = None  # the bucket's restored digests, if any
        for i, ev in enumerate(events):
            t = ev.ts
            if late:
                if t < now:
                    if kept is not None:
                        kept.append(ev)
                    continue
                now = t
            if t > top:
                top = t
                if t - self.window_ms > floor + size:
                    floor = self._prune(t)
                    hi = lo  # the cached bucket may be gone
            if not lo <= t < hi:
                b = t // size
                lo, hi = b * size, b * size + size
                seen = buckets.get(b)
                old = restored.get(b) if restored else None
                if seen is None:
                    if t < floor:  # too old to remember (and a duplicate of nothing remembered)
                        hi = lo
                        if kept is not None:
                            kept.append(ev)
                        continue
                    seen = buckets[b] = set()
            key = encode(ev)
            if key in seen or (old is not None and _digest(key) in old):  # type: ignore[operator]  # seen is set while lo <= t < hi
                if kept is None:
                    kept = events[:i]
                skipped.append(i)
            else:
                seen.add(key)  # type: ignore[union-attr]  # as above
                if kept is not None:
                    kept.append(ev)
        self.top = top
        self.duplicates += len(skipped)
        return (events if kept is None else kept), skipped

    def _prune(self, top: int) -> int:
        """Forget the buckets wholly before ``top - window``; returns the new floor."""
        size = self.bucket_ms
        first = (top - self.window_ms) // size  # the oldest bucket still (partly) inside the window
        for held in (self._buckets, self._restored):
            for b in [b for b in held if b < first]:
                del held[b]
        self._floor = floor = first * size
        return floor

    def state(self) -> DedupState:
        """The memory as a snapshot keeps it: each identity as its 8-byte digest (stable across processes)."""
        out: dict[int, list[bytes]] = {b: list(s) for b, s in self._restored.items()}
        for b, keys in self._buckets.items():
            digests = [_digest(k) for k in keys]
            if b in out:
                out[b] = list(self._restored[b].union(digests))
            elif digests:
                out[b] = digests
        return DedupState(self.window_ms, self.bucket_ms, self.top, out)

    def restore(self, state: DedupState) -> None:
        """Take a snapshot's memory back, under this window (an old bucket goes into every new one it overlaps)."""
        self.top = max(self.top, state.top)
        size = self.bucket_ms
        for b, keys in state.buckets.items():
            for nb in range(b * state.bucket_ms // size, ((b + 1) * state.bucket_ms - 1) // size + 1):
                self._restored.setdefault(nb, set()).update(keys)
        self._prune(self.top)


def _digest(key: bytes) -> bytes:
    """The stable identity of an encoding: what a snapshot keeps."""
    return blake2b(key, digest_size=8).digest()
