"""Generated events as columns, sorted by time and written as JSON lines.

Every event is laid out the same way, which lets one vectorised pass write
events of all types mixed::

    {"type":"KIND","ts":TS,"msisdn":"MSISDN" T0 N0 T1 N1 T2 N2 T3 N3 T4

T0…T4 are texts (field names, quotes, enumerations, ``}\\n``; code 0 is the
empty text) and N0…N3 integers (``-1``: nothing). A generator adds events per
type with ``EventBuilder.add``; ``sorted_columns`` orders everything by ts
(stable, so ties keep generation order and the output stays deterministic).
"""

from __future__ import annotations

from typing import IO, Sequence

import numpy as np

from kairos.traffic._jsonl import Fixed, Int, Table, Text, render
from kairos.traffic._population import MSISDN_BASE

TEXTS = 5
NUMS = 4
CHUNK = 1 << 17  # lines formatted at once: big enough for numpy, small enough for the cache

Part = np.ndarray | int | str


class Columns:
    """Events as arrays (sorted by ts once ``EventBuilder.sorted_columns`` made them)."""

    def __init__(
        self,
        table: Table,
        ts: np.ndarray,
        sub: np.ndarray,
        kind: np.ndarray,
        texts: list[np.ndarray | int],
        nums: list[np.ndarray | int],
    ) -> None:
        self.table = table
        self.ts = ts
        self.sub = sub
        self.kind = kind
        self.texts = texts
        self.nums = nums

    def __len__(self) -> int:
        return len(self.ts)

    def rows(self, lo: int, hi: int) -> Columns:
        """Events ``lo`` to ``hi`` (their order kept): the part a paced writer writes next."""
        def cut(col: np.ndarray | int) -> np.ndarray | int:
            return col[lo:hi] if isinstance(col, np.ndarray) else col

        return Columns(self.table, self.ts[lo:hi], self.sub[lo:hi], self.kind[lo:hi],
                       [cut(c) for c in self.texts], [cut(c) for c in self.nums])

    def write(self, out: IO[bytes], chunk: int = CHUNK) -> int:
        """Write every event as a JSON line; returns the number of bytes."""
        mid = self.table.code(',"msisdn":"')
        written = 0
        for lo in range(0, len(self.ts), chunk):
            sl = slice(lo, lo + chunk)
            n = len(self.ts[sl])

            def cut(col: np.ndarray | int) -> np.ndarray | int:
                return col[sl] if isinstance(col, np.ndarray) else col

            segs = [Text(self.kind[sl], self.table), Fixed(self.ts[sl], 13), Text(mid, self.table),
                    Fixed(self.sub[sl] + MSISDN_BASE, 11)]
            for k in range(NUMS):
                segs.append(Text(cut(self.texts[k]), self.table))
                num = cut(self.nums[k])
                if isinstance(num, np.ndarray):
                    segs.append(Int(num))
            segs.append(Text(cut(self.texts[NUMS]), self.table))
            data = render(n, segs)
            out.write(data)
            written += len(data)
        return written


class EventBuilder:
    """Collects events of any type; keeps only those with ts in [lo, hi)."""

    def __init__(self, table: Table, lo: int, hi: int) -> None:
        self.table = table
        self.lo = lo
        self.hi = hi
        self.empty = table.code(b"")
        self._kinds: dict[str, int] = {}
        self._ts: list[np.ndarray] = []
        self._sub: list[np.ndarray] = []
        self._kind: list[np.ndarray] = []
        self._texts: list[list[tuple[Part, int]]] = [[] for _ in range(TEXTS)]
        self._nums: list[list[tuple[Part, int]]] = [[] for _ in range(NUMS)]

    def kind(self, name: str) -> int:
        code = self._kinds.get(name)
        if code is None:
            code = self._kinds[name] = self.table.code(f'{{"type":"{name}","ts":')
        return code

    def add(
        self,
        kind: str,
        ts: np.ndarray,
        sub: np.ndarray,
        texts: Sequence[Part],
        nums: Sequence[np.ndarray | int] = (),
    ) -> None:
        """Events of one type: ``texts[k]`` and ``nums[k]`` are arrays like ``ts`` or one value for all.

        ``texts`` are codes of ``self.table`` or strings (interned here); the
        first one closes the msisdn's quote (``'","cell":"'``), the last one
        ends the line (``'}\\n'``).
        """
        ts = np.asarray(ts, dtype=np.int64)
        keep = (ts >= self.lo) & (ts < self.hi)
        everything = bool(keep.all())
        n = int(keep.sum()) if not everything else len(ts)
        if n == 0:
            return

        def take(col: Part) -> tuple[Part, int]:
            if isinstance(col, str):
                return self.table.code(col), n
            if isinstance(col, np.ndarray):
                return (col if everything else col[keep]), n
            return int(col), n

        self._ts.append(ts if everything else ts[keep])
        self._sub.append(np.broadcast_to(np.asarray(sub, dtype=np.int64), ts.shape)[keep])
        self._kind.append(np.full(n, self.kind(kind), dtype=np.int32))
        for k in range(TEXTS):
            self._texts[k].append(take(texts[k]) if k < len(texts) else (self.empty, n))
        for k in range(NUMS):
            self._nums[k].append(take(nums[k]) if k < len(nums) else (-1, n))

    def sorted_columns(self) -> Columns:
        """Everything added, ordered by ts (stable)."""
        if not self._ts:
            z = np.zeros(0, dtype=np.int64)
            return Columns(self.table, z, z, z.astype(np.int32), [self.empty] * TEXTS, [-1] * NUMS)
        ts = np.concatenate(self._ts)
        order = np.argsort(ts, kind="stable")

        def column(parts: list[tuple[Part, int]], dtype: type) -> np.ndarray | int:
            scalars = {p for p, _ in parts if not isinstance(p, np.ndarray)}
            if len(scalars) == 1 and all(not isinstance(p, np.ndarray) for p, _ in parts):
                return scalars.pop()  # type: ignore[return-value]
            full = np.concatenate(
                [p.astype(dtype, copy=False) if isinstance(p, np.ndarray) else np.full(n, p, dtype=dtype)
                 for p, n in parts]
            )
            return full[order]

        return Columns(
            self.table,
            ts[order],
            np.concatenate(self._sub)[order],
            np.concatenate(self._kind)[order],
            [column(p, np.int32) for p in self._texts],
            [column(p, np.int64) for p in self._nums],
        )
