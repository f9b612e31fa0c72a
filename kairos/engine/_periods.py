"""Calendar and recency state (LANGUAGE.md §9.2): per-subscriber period buckets kept as columns.

Every subscriber a term has seen gets one row index, shared by all terms. A
``count`` or ``sum`` term is a ring of ``depth + 1`` calendar-aligned slots, each
a numpy column (int32 counts, float64 sums) over the rows: a slot is reused when
the clock enters a new period and cleared in one vectorised step, so an event
costs one increment of its current bucket (events arrive in time order). A
``top`` term keeps a small value count per row and slot, a ``since`` term one
int64 time per row. Terms with the same key (kind, filter, value, period kind)
share one column whichever scenarios read them; rows whose columns are all
empty are recycled when the day changes. Events come in time order but for
``trigger`` events: a trigger the policy decides late (a capacity queue, an
arbitration window) re-enters at its own time. An event whose period is older
than the one its slot holds now is no longer kept and is not counted; it never
clears the newer period, nor replaces a later ``since`` time.
"""

from __future__ import annotations

import ast
import datetime as _dt
import re
import sys
from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import numpy as np

from kairos.engine._localtime import LocalTime
from kairos.engine._routes import inlinable
from kairos.engine.forms.base import shared as _shared
from kairos.plan import NAMESPACE, Origin, Term, define, filename, lines_from

_DAY_MS = 86_400_000
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_NONE = -(2**63)  # a since column's "never seen"
_KINDS = {"day": 0, "week": 1, "month": 2}
_FEW = 8  # a top bucket keeps up to this many values as a flat list
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def _numpy() -> Any:
    """numpy, imported when rows are first recycled (a new day), not with the engine: ``kairos check``
    builds engines and never needs it, and its import costs ~0.1 s."""
    import numpy

    return numpy


_CLOCK_READS = ("hour", "weekday", "day")


def shared_clock_reads(texts: list[str]) -> dict[str, str]:
    """The clock reads of the event's time (``c.hour(e.ts)`` …) that ``texts`` make more than once, each
    named (``_qhour``) to be read once per event before them: they are pure and never raise."""
    seen: dict[str, int] = {}
    for text in texts:
        for node in ast.walk(ast.parse(text, mode="eval")):
            call = _clock_read(node)
            if call is not None:
                seen[call] = seen.get(call, 0) + 1
    return {f"_q{fn}": f"c.{fn}(e.ts)" for fn in _CLOCK_READS if seen.get(fn, 0) > 1}


def reading(text: str, shared: dict[str, str]) -> str:
    """``text`` with the clock reads of ``shared`` replaced by their names."""
    if not shared:
        return text

    class _Shared(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> Any:
            fn = _clock_read(node)
            if fn is None or f"_q{fn}" not in shared:
                return self.generic_visit(node)
            return ast.copy_location(ast.Name(f"_q{fn}", ast.Load()), node)

    return ast.unparse(_Shared().visit(ast.parse(text, mode="eval")).body)


def _clock_read(node: ast.AST) -> str | None:
    """``fn`` when ``node`` is ``c.fn(e.ts)`` for a clock read ``fn``."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CLOCK_READS
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "c" and not node.keywords
            and len(node.args) == 1 and ast.dump(node.args[0]) == _EVENT_TS):
        return node.func.attr
    return None


_EVENT_TS = ast.dump(ast.Attribute(ast.Name("e", ast.Load()), "ts", ast.Load()))


def _value(term: Term, j: int, ns: dict[str, Any]) -> str:
    """Python text for term ``j``'s value (``top``, ``sum``): its expression inline where it may be,
    else a call to its compiled function."""
    value = term.value
    assert value is not None  # top and sum have a value
    if inlinable(value):
        return f"({value.python})"
    ns[f"_Tv{j}"] = value.fn
    return f"_Tv{j}(e, a, c)"


class PeriodClock:
    """Local-calendar period numbers of a time: (day, Monday week, month), cached per local day."""

    __slots__ = ("local", "lo", "hi", "ids", "on_new_day", "_last_day", "_dates")

    def __init__(self, local: LocalTime) -> None:
        self.local = local
        self.lo = self.hi = 0
        self.ids = (0, 0, 0)
        #: called when time enters a later day than any before (recycling empty rows)
        self.on_new_day: Callable[[], None] | None = None
        self._last_day: int | None = None
        self._dates: dict[str, int | None] = {}

    def of(self, ts: int) -> tuple[int, int, int]:
        if self.lo <= ts < self.hi:
            return self.ids
        local = self.local
        day = local.local_ms(ts) // _DAY_MS
        self.lo = local.to_utc(day * _DAY_MS)
        self.hi = local.to_utc((day + 1) * _DAY_MS)
        date = _dt.date.fromordinal(_EPOCH_ORDINAL + day)
        # 1970-01-01 was a Thursday: day + 3 counts from the Monday before it
        self.ids = (day, (day + 3) // 7, date.year * 12 + date.month - 1)
        if self._last_day is None or day > self._last_day:
            first = self._last_day is None
            self._last_day = day
            if not first and self.on_new_day is not None:
                self.on_new_day()
        return self.ids

    def date(self, text: Any) -> int | None:
        """``date(x)``: local midnight of ``YYYY-MM-DD`` as epoch ms; None for null or no date."""
        if not isinstance(text, str):
            return None
        ms = self._dates.get(text, -1)
        if ms == -1:
            ms = None
            m = _DATE.fullmatch(text)
            if m is not None:
                try:
                    day = _dt.date(int(m[1]), int(m[2]), int(m[3])).toordinal() - _EPOCH_ORDINAL
                    ms = self.local.to_utc(day * _DAY_MS)
                except (ValueError, OverflowError):
                    ms = None
            if len(self._dates) < 100_000:
                self._dates[text] = ms
        return ms


class _Buckets:
    """``count``/``sum``: ``depth + 1`` period slots (slot = period % size), a column of rows each.

    A column is an ``array.array`` (int32 counts, float64 sums): an increment from the generated
    update is a plain item assignment, and numpy reads it without a copy when rows are recycled.
    A slot no period has reached yet holds no column (None): ``count(dpi) in month(-3)`` costs
    one column, not four, until the calendar has gone through four months.
    """

    __slots__ = ("kind", "size", "pids", "slots", "typecode", "dtype", "capacity")

    def __init__(self, kind: str, depth: int, typecode: str, capacity: int) -> None:
        self.kind = _KINDS[kind]
        self.size = depth + 1
        self.pids = [-1] * self.size
        self.typecode = typecode
        self.dtype = "int32" if typecode == "i" else "float64"
        self.capacity = capacity
        #: a slot's column, or None while its pid is -1 (never reached): read only when the pid matches
        self.slots: list[array[Any] | None] = [None] * self.size

    def _empty(self, capacity: int) -> array[Any]:
        return array(self.typecode, bytes(capacity * array(self.typecode).itemsize))

    def grow(self, capacity: int) -> None:
        self.capacity = capacity
        for column in self.slots:  # in place: the generated update holds the list, not the columns
            if column is not None:
                column.frombytes(bytes((capacity - len(column)) * column.itemsize))

    def reset(self, s: int, pid: int) -> None:
        """Slot ``s`` now holds period ``pid``: cleared in one step (the period it held is no longer read)."""
        self.slots[s] = self._empty(self.capacity)
        self.pids[s] = pid

    def column(self, s: int) -> array[Any]:
        """Slot ``s``'s column, made (empty) if it has none."""
        column = self.slots[s]
        if column is None:
            column = self.slots[s] = self._empty(self.capacity)
        return column

    def add(self, row: int, ids: tuple[int, int, int], amount: Any) -> None:
        """Count ``amount`` in the period of ``ids``; not at all if its slot holds a newer period already
        (a trigger decided late re-enters at its own, older time: it must not clear the newer counts)."""
        pid = ids[self.kind]
        s = pid % self.size
        if self.pids[s] != pid:
            if self.pids[s] > pid:
                return
            self.reset(s, pid)
        self.column(s)[row] += amount

    def get(self, row: int | None, ids: tuple[int, int, int], n: int) -> Any:
        pid = ids[self.kind] + n
        s = pid % self.size
        if row is None or self.pids[s] != pid or -n >= self.size:
            return 0
        v = self.column(s)[row]
        return int(v) if self.typecode == "d" and v == int(v) and abs(v) < 2**53 else v

    def used(self, mask: np.ndarray, ids: tuple[int, int, int]) -> None:
        cur = ids[self.kind]
        for s, pid in enumerate(self.pids):
            if cur - self.size < pid <= cur:
                mask |= _numpy().frombuffer(self.column(s), self.dtype)[: mask.shape[0]] != 0

    def saved(self, s: int, n: int) -> bytes:
        """Slot ``s``'s first ``n`` rows as bytes (zeros for a slot without a column)."""
        column = self.slots[s]
        itemsize = array(self.typecode).itemsize
        return bytes(n * itemsize) if column is None else column[:n].tobytes()

    def nbytes(self) -> int:
        return sum(len(column) * column.itemsize for column in self.slots if column is not None)


class _Top:
    """``top``: per slot, a column of rows each holding one value (its count in a parallel int32
    column), a flat list ``[v, n, v, n…]`` of a few values or a dict ``{v: n}`` of many, or None.

    Most rows hold one value (the cell a subscriber spends the night in): a reference to the one
    shared copy of it and four bytes, not a list and a dict entry. The counts column is nonzero
    exactly for the rows that hold something, so numpy finds the used rows without a Python loop.
    A slot no period has reached yet holds no columns.
    """

    __slots__ = ("kind", "size", "pids", "slots", "counts", "capacity")

    def __init__(self, kind: str, depth: int, capacity: int) -> None:
        self.kind = _KINDS[kind]
        self.size = depth + 1
        self.pids = [-1] * self.size
        self.capacity = capacity
        self.slots: list[list[Any] | None] = [None] * self.size  # row → value, [v, n, v, n…], {v: n} or None
        self.counts: list[array[int] | None] = [None] * self.size  # row → the one value's count (nonzero: used)

    def grow(self, capacity: int) -> None:
        self.capacity = capacity
        for s, values in enumerate(self.slots):
            counts = self.counts[s]
            if values is not None and counts is not None:
                values.extend([None] * (capacity - len(values)))
                counts.frombytes(bytes(4 * (capacity - len(counts))))

    def _clear(self, s: int) -> list[Any]:
        values = self.slots[s] = [None] * self.capacity
        self.counts[s] = array("i", bytes(4 * self.capacity))
        return values

    def add(self, row: int, ids: tuple[int, int, int], value: Any) -> None:
        if value is None or not isinstance(value, (str, int, float)):
            return
        pid = ids[self.kind]
        s = pid % self.size
        if self.pids[s] != pid:
            if self.pids[s] > pid:
                return  # a period older than the slot's newer one is no longer kept (see _Buckets.add)
            self.pids[s] = pid
            values = self._clear(s)
        else:
            held_values = self.slots[s]
            values = self._clear(s) if held_values is None else held_values
        counts = self.counts[s]
        assert counts is not None
        held = values[row]
        if held is None:
            values[row] = _shared(value)
            counts[row] = 1
            return
        cls = held.__class__
        if cls is list:
            for k in range(0, len(held), 2):
                if held[k] == value:
                    held[k + 1] += 1
                    return
            if len(held) < 2 * _FEW:
                held += (_shared(value), 1)
                return
            held = values[row] = dict(zip(held[::2], held[1::2], strict=True))
            held[value] = 1
        elif cls is dict:
            held[value] = held.get(value, 0) + 1
        elif held == value:
            counts[row] += 1
        else:
            values[row] = [held, counts[row], _shared(value), 1]

    def pairs(self, s: int, row: int) -> list[tuple[Any, int]]:
        """Row ``row``'s (value, how often) pairs in slot ``s`` (none: an empty list)."""
        values, counts = self.slots[s], self.counts[s]
        if values is None or counts is None:
            return []
        held = values[row]
        if held is None:
            return []
        if held.__class__ is list or held.__class__ is dict:
            return _pairs(held)
        return [(held, counts[row])]

    def get(self, row: int | None, ids: tuple[int, int, int], n: int) -> Any:
        pid = ids[self.kind] + n
        s = pid % self.size
        if row is None or self.pids[s] != pid or -n >= self.size:
            return None
        pairs = self.pairs(s, row)
        if not pairs:
            return None
        best = max(k for _, k in pairs)
        # ties: the smallest value (numbers before text, so mixed values still compare)
        return min((v for v, k in pairs if k == best), key=lambda v: (isinstance(v, str), v))

    def used(self, mask: np.ndarray, ids: tuple[int, int, int]) -> None:
        cur = ids[self.kind]
        for s, pid in enumerate(self.pids):
            counts = self.counts[s]
            if counts is None:
                continue
            if cur - self.size < pid <= cur:
                mask |= _numpy().frombuffer(counts, "int32")[: mask.shape[0]] != 0
            else:
                self.slots[s] = self.counts[s] = None  # no scenario reads that far back any more

    def forget(self, row: int) -> None:
        for s, values in enumerate(self.slots):
            counts = self.counts[s]
            if values is not None and counts is not None:
                values[row] = None
                counts[row] = 0

    def items(self, s: int, n: int) -> list[tuple[int, list[tuple[Any, int]]]]:
        """Slot ``s``'s used rows below ``n`` with their pairs, in row order (a snapshot's form)."""
        counts = self.counts[s]
        if counts is None:
            return []
        used = _numpy().flatnonzero(_numpy().frombuffer(counts, "int32")[:n]).tolist()
        return [(r, self.pairs(s, r)) for r in used]

    def load(self, s: int, rows: Iterable[tuple[int, list[tuple[Any, int]]]]) -> None:
        """Slot ``s`` holds ``rows`` (row, [(value, n)]), as ``items`` gave them."""
        values = self._clear(s)
        counts = self.counts[s]
        assert counts is not None
        for r, pairs in rows:
            if not pairs:
                continue
            if len(pairs) == 1:
                values[r] = _shared(pairs[0][0])
                counts[r] = pairs[0][1]
            else:
                values[r] = [x for v, k in pairs for x in (_shared(v), k)] if len(pairs) <= _FEW else dict(pairs)
                counts[r] = 1

    def nbytes(self) -> int:
        return sum(12 * len(values) for values in self.slots if values is not None)


def _pairs(counts: Any) -> list[tuple[Any, int]]:
    """A top bucket's (value, how often) pairs, from its flat list or its dict."""
    if counts.__class__ is list:
        return list(zip(counts[::2], counts[1::2], strict=True))
    return list(counts.items())


class _Since:
    """``since``: the latest ts per row (an int64 ``array.array``; ``_NONE``: never)."""

    __slots__ = ("data",)

    def __init__(self, capacity: int) -> None:
        self.data = array("q", [_NONE]) * capacity

    def grow(self, capacity: int) -> None:
        self.data.extend(array("q", [_NONE]) * (capacity - len(self.data)))

    def add(self, row: int, ts: int) -> None:
        """``ts`` is the row's latest time, unless it holds a later one (a trigger decided late is older)."""
        if self.data[row] < ts:
            self.data[row] = ts

    def get(self, row: int | None, now: int) -> int | None:
        if row is None:
            return None
        t = self.data[row]
        return None if t == _NONE else now - t

    def used(self, mask: np.ndarray) -> None:
        mask |= _numpy().frombuffer(self.data, "int64")[: mask.shape[0]] != _NONE

    def nbytes(self) -> int:
        return len(self.data) * self.data.itemsize


Column = _Buckets | _Top | _Since


class ColumnState(msgspec.Struct, array_like=True):
    """One term's column in a snapshot: slot period ids and the rows' values."""

    key: str
    pids: list[int]
    counts: bytes = b""  #: count/sum: the slots' columns, row-major (slots × rows), native dtype
    tops: list[list[tuple[int, list[tuple[Any, int]]]]] = []  #: top: per slot, (row, [(value, n)])


class CalendarState(msgspec.Struct):
    """The calendar and recency state of an engine (absent from snapshots before it existed)."""

    rows: dict[str, int]
    columns: list[ColumnState]
    width: int = 0  #: rows per saved column (the row index's length when captured)


class Periods:
    """Every term the loaded scenarios read, deduplicated by key, over one row index."""

    def __init__(self, local: LocalTime, terms: Iterable[Term]) -> None:
        self.clock = PeriodClock(local)
        self.clock.on_new_day = self.collect
        self.rows: dict[str, int] = {}
        self._owners: list[str | None] = []
        self._free: list[int] = []
        self._capacity = 1024
        self.terms: dict[str, Term] = {}
        for term in terms:
            seen = self.terms.get(term.key)
            if seen is None or seen.depth < term.depth:
                self.terms[term.key] = term
        self.columns: dict[str, Column] = {}
        for key, term in self.terms.items():
            if term.kind == "since":
                self.columns[key] = _Since(self._capacity)
            elif term.kind == "top":
                self.columns[key] = _Top(term.period, term.depth, self._capacity)  # type: ignore[arg-type]  # a period term has one
            else:
                typecode = "i" if term.kind == "count" else "d"
                self.columns[key] = _Buckets(term.period, term.depth, typecode, self._capacity)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return bool(self.columns)

    # --- rows

    def row(self, m: str) -> int:
        """The subscriber's row, given one if it has none."""
        r = self.rows.get(m)
        if r is not None:
            return r
        m = sys.intern(m)  # kept for long: the one copy of the number the runtimes' states also key by
        if self._free:
            r = self._free.pop()
            self._owners[r] = m
        else:
            r = len(self._owners)
            self._owners.append(m)
            if r >= self._capacity:
                self.reserve(r + 1)
        self.rows[m] = r
        return r

    def reserve(self, n: int) -> None:
        """Room for ``n`` rows in every column, doubling the capacity until it holds them (a new row, a
        restore). Called ahead, so that columns do not double while events flow: a doubling copies every
        column at once (at half a million rows, a 20–70 ms stall of a live stream,
        issue 17). The daemon reserves each unit's reference's subscribers when it builds the engine."""
        if n <= self._capacity or not self.columns:
            return
        while self._capacity < n:
            self._capacity *= 2
        for col in self.columns.values():
            col.grow(self._capacity)

    def collect(self) -> None:
        """Recycle the rows no live bucket of any term holds anything for (at each new day)."""
        n = len(self._owners)
        if not n or not self.columns:
            return
        ids = self.clock.ids
        np = _numpy()
        used = np.zeros(n, bool)
        for col in self.columns.values():
            if isinstance(col, _Since):
                col.used(used)
            else:
                col.used(used, ids)
        owners = self._owners
        for r in np.flatnonzero(~used).tolist():
            m = owners[r]
            if m is not None:
                del self.rows[m]
                owners[r] = None
                self._free.append(r)
                for col in self.columns.values():
                    if isinstance(col, _Top):
                        col.forget(r)

    # --- reading (the compiled expressions, through the context)

    def value(self, key: str, n: int, m: str, now: int) -> Any:
        col = self.columns[key]
        assert not isinstance(col, _Since)
        return col.get(self.rows.get(m), self.clock.of(now), n)

    def since(self, key: str, m: str, now: int) -> int | None:
        col = self.columns[key]
        assert isinstance(col, _Since)
        return col.get(self.rows.get(m), now)

    # --- updating (the routes)

    def updater(self, event_type: str, ctx: Any) -> Callable[[Any], None] | None:
        """One generated function updating every term on ``event_type``; None when no term reads it.

        The period of the event's time is one range test while the day is the same; a count or
        sum bucket is one item increment (its slot reset first when a newer period starts)."""
        terms = [t for t in self.terms.values() if t.filter.event_type == event_type]
        if not terms:
            return None
        clock = self.clock
        ns: dict[str, Any] = dict(NAMESPACE)
        # names start with _T (globals) or _q (locals): a route pastes these lines among its own (``.body``)
        ns.update({"c": ctx, "a": (), "_Trow": self.row, "_Trows": self.rows, "_Tclock": clock})
        # the periods first: entering a new day recycles empty rows, which must not take this event's row
        body = ["_qt = e.ts", "if not (_Tclock.lo <= _qt < _Tclock.hi):", "    _Tclock.of(_qt)", "_qp = _Tclock.ids",
                "_qm = _Trows.get(e.msisdn)", "if _qm is None:", "    _qm = _Trow(e.msisdn)"]
        #: the scenario place each line was made from (a traceback through the function names it)
        origins: list[Origin | None] = [None] * len(body)
        wheres = [t.filter.where.python for t in terms if t.filter.where is not None and inlinable(t.filter.where)]
        shared = shared_clock_reads(wheres)
        for name, call in shared.items():
            body.append(f"{name} = {call}")
            origins.append(None)
        for j, term in enumerate(terms):
            col = self.columns[term.key]
            where = term.filter.where
            indent = ""
            if where is not None:
                if inlinable(where):
                    body.append(f"if ({reading(where.python, shared)}):  # term {j}")
                else:
                    ns[f"_Tw{j}"] = where.fn
                    body.append(f"if _Tw{j}(e, a, c):  # term {j}")
                origins.append(where.origin)
                indent = "    "
            if isinstance(col, _Since):
                ns[f"_Tu{j}"] = col.data
                body.append(f"{indent}if _Tu{j}[_qm] < _qt:  # the latest: a trigger decided late is older")
                body.append(f"{indent}    _Tu{j}[_qm] = _qt")
            elif isinstance(col, _Top):
                ns[f"_Tu{j}"] = col.add
                body.append(f"{indent}_Tu{j}(_qm, _qp, {_value(term, j, ns)})")
            else:
                ns[f"_Tk{j}"] = col
                ns[f"_Tp{j}"] = col.pids
                amount = "1"
                if term.kind == "sum":
                    body.append(f"{indent}_qv = {_value(term, j, ns)}")
                    body.append(f"{indent}if _qv.__class__ is int or _qv.__class__ is float:")
                    indent += "    "
                    amount = "_qv"
                # as _Buckets.add: a slot holding a newer period than the event's is left alone
                body.extend([f"{indent}_qq = _qp[{col.kind}]", f"{indent}_qs = _qq % {col.size}",
                             f"{indent}if _Tp{j}[_qs] == _qq:", f"{indent}    _Tk{j}.slots[_qs][_qm] += {amount}",
                             f"{indent}elif _Tp{j}[_qs] < _qq:", f"{indent}    _Tk{j}.reset(_qs, _qq)",
                             f"{indent}    _Tk{j}.slots[_qs][_qm] += {amount}"])
            origins.extend([term.filter.origin] * (len(body) - len(origins)))
        source = "def terms(e):\n" + "".join(f"    {line}\n" for line in body)
        fn = define("terms", source, ns, filename("terms", event_type), lines_from(2, origins))
        fn.body, fn.origins = body, origins  # type: ignore[attr-defined]  # for a route to paste (``_routes._paste``)
        return fn

    # --- measuring, snapshots

    def nbytes(self) -> int:
        """Bytes the columns hold (the row index not counted)."""
        return sum(col.nbytes() for col in self.columns.values())

    def capture(self) -> CalendarState:
        n = len(self._owners)
        rows = dict(self.rows)
        columns = []
        for key, col in self.columns.items():
            if isinstance(col, _Since):
                columns.append(ColumnState(key, [], col.data[:n].tobytes()))
            elif isinstance(col, _Top):
                tops = [col.items(s, n) for s in range(col.size)]
                columns.append(ColumnState(key, list(col.pids), b"", tops))
            else:
                columns.append(ColumnState(key, list(col.pids), b"".join(col.saved(s, n) for s in range(col.size))))
        return CalendarState(rows, columns, n)

    def restore(self, state: CalendarState) -> list[str]:
        """Load ``state`` (a fresh ``Periods``); the keys of the terms it did not hold (they start empty)."""
        if not self.columns:
            return []
        n = state.width
        self._owners = [None] * n
        rows = {sys.intern(m): r for m, r in state.rows.items()}  # the one copy of each number
        for m, r in rows.items():
            self._owners[r] = m
        self.rows.clear()  # in place: the generated updates hold this dict
        self.rows.update(rows)
        self._free = [r for r in range(n) if self._owners[r] is None]
        self.reserve(n)
        saved = {c.key: c for c in state.columns}
        for key, col in self.columns.items():
            c = saved.get(key)
            if c is None:
                continue
            if isinstance(col, _Since):
                col.data[:n] = array("q", c.counts[: n * 8])
                continue
            for s, pid in enumerate(c.pids):
                if pid < 0:
                    continue
                t = pid % col.size
                if col.pids[t] > pid:
                    continue  # a deeper saved ring: keep the newest period for each slot
                col.pids[t] = pid
                if isinstance(col, _Top):
                    col.load(t, c.tops[s])
                else:
                    column = col.column(t)
                    width = n * column.itemsize
                    column[:n] = array(col.typecode, c.counts[s * width : (s + 1) * width])
        return [key for key in self.columns if key not in saved]
