"""``kairos replay --by tags.NAME``: the per-scenario counts grouped by a subscriber's tag.

The monthly silent / low-use report (DOMAIN.md 14) is "the counts by region,
service and brand": matched, suppressed (by reason) and sent per scenario,
split by the value a tag had for the subscriber *when the scenario matched*
(a tag written or changed later does not move a match already counted).

A ``Grouper`` is the engine's observer (the hook ``kairos explain`` uses): it
hears each completion, each gate's refusal and each policy verdict, and looks
the tags up only then, so an engine without ``--by`` runs exactly as before.
Its counts are plain data (``Grouped``), so the counts of workers and
partitions cross a process boundary and add up (``merge``).

Each ``--by`` is one grouping and one table: ``--by tags.region --by
tags.brand`` gives a table by region and one by brand (each adds up to the
totals); ``--by tags.region,tags.brand`` gives one table by the pair (the
cross product, for an operator who needs "gold customers in the north").
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import msgspec

from kairos._measure import WIDTH, reasons_text, wrap_reasons
from kairos.engine import Engine, Reference
from kairos.plan import Plan

#: how a tag's null (the subscriber has no such tag) is shown
NONE = "(none)"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READ = re.compile(r"\btags\.([A-Za-z_][A-Za-z0-9_]*)")
#: a comment to the end of its line, past any string on the line (a scenario's comment may name tags.SOMETHING)
_COMMENT = re.compile(r'^((?:[^"#\n]|"[^"\n]*")*)#[^\n]*', re.M)

Grouping = tuple[str, ...]  # the tag names of one --by, e.g. ("region",) or ("region", "brand")


class ByError(ValueError):
    """A ``--by`` that names no tag: the message says what to write."""


class Counts(msgspec.Struct):
    """One scenario's completions for one value of a grouping."""

    matched: int = 0
    sent: int = 0
    held: int = 0
    suppressed: dict[str, int] = msgspec.field(default_factory=dict)


class Grouped(msgspec.Struct):
    """Per grouping (in ``--by`` order): scenario name → value → counts."""

    groups: list[dict[str, dict[str, Counts]]]


def parse_by(texts: Sequence[str]) -> list[Grouping]:
    """The groupings of the ``--by`` options: ``tags.NAME`` each, or several joined by commas."""
    out: list[Grouping] = []
    for text in texts:
        names = []
        for part in text.split(","):
            part = part.strip()
            name = part[5:] if part.startswith("tags.") else None
            if name is None or not _NAME.fullmatch(name):
                shown = part or text
                hint = f" (did you mean --by tags.{shown}?)" if _NAME.fullmatch(shown) else ""
                raise ByError(
                    f"--by {shown}: group by a subscriber tag, written tags.NAME{hint}, e.g. --by tags.region; "
                    "repeat --by for one table per tag, or join tags with a comma (--by tags.region,tags.brand) "
                    "for one table by their combination")
            names.append(name)
        grouping = tuple(names)
        if grouping not in out:
            out.append(grouping)
    return out


def known_tags(plan: Plan, reference: Reference) -> set[str]:
    """The tag names a ``--by`` may name: those in the reference data and those the scenarios read or write."""
    known = {name for tags in reference.tags.values() for name in tags}
    for f in plan.files:
        try:
            known.update(_READ.findall(_COMMENT.sub(r"\1", Path(f).read_text(encoding="utf-8"))))
        except OSError:
            continue
    return known


def check_known(groupings: Iterable[Grouping], known: set[str]) -> None:
    """Refuse a tag nobody has and no scenario reads or writes (a typo would group everything under (none))."""
    for grouping in groupings:
        for name in grouping:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
                listed = ", ".join(sorted(known)[:12]) + (", …" if len(known) > 12 else "")
                offer = f"; the known tags are: {listed}" if known else "; there are none (no tags.jsonl?)"
                if close:
                    offer = f" (did you mean --by tags.{close[0]}?){offer}"
                raise ByError(f"--by tags.{name}: no subscriber has a tag '{name}' in the reference data "
                              f"(tags.jsonl) and no scenario reads or writes it{offer}")


def label(grouping: Grouping) -> str:
    """``tags.region`` or ``tags.region × tags.brand``."""
    return " × ".join(f"tags.{n}" for n in grouping)


def value_text(value: Any) -> str:
    """A tag value as a table shows it: text as it is, null as ``(none)``, anything else as JSON."""
    if value is None:
        return NONE
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


class Grouper:
    """The observer that counts an engine's completions by the ``--by`` tags (set ``engine`` after
    building it). A policy verdict comes after its completion, at once or (arbitration, capacity) later:
    a waiting trigger keeps the cells of its match until it is decided."""

    def __init__(self, plan: Plan, groupings: Sequence[Grouping]) -> None:
        self.names = [s.name for s in plan.scenarios]
        self.groupings = list(groupings)
        self.counts: list[dict[str, dict[str, Counts]]] = [{} for _ in self.groupings]
        self.engine: Engine | None = None
        self._current: tuple[int, str, list[Counts]] | None = None
        self._waiting: dict[str, list[Counts]] = {}

    def _cells(self, i: int, m: str) -> list[Counts]:
        """The counts the subscriber's tags put a match of scenario ``i`` in, one per grouping, now."""
        assert self.engine is not None, "Grouper.engine is set once the engine is built"
        tags = self.engine.reference.tags.get(m) or {}
        name = self.names[i]
        cells = []
        for grouping, counts in zip(self.groupings, self.counts, strict=True):
            value = " / ".join(value_text(tags.get(n)) for n in grouping)
            by = counts.setdefault(name, {})
            cell = by.get(value)
            if cell is None:
                cell = by[value] = Counts()
            cells.append(cell)
        return cells

    def _of(self, i: int, m: str) -> list[Counts]:
        cur = self._current
        if cur is not None and cur[0] == i and cur[1] == m:
            return cur[2]
        return self._cells(i, m)  # not reached: every verdict follows its own completion

    def completed(self, i: int, m: str, t: int, e: Any, a: tuple[Any, ...]) -> None:
        cells = self._cells(i, m)
        for c in cells:
            c.matched += 1
        self._current = (i, m, cells)

    def passed_over(self, i: int, m: str, t: int) -> None:
        """A schedule instant whose ``where`` was false for the subscriber: no match, nothing to count."""

    def wrote(self, i: int, m: str, t: int, tags: dict[str, Any]) -> None:
        """A trigger's ``set`` wrote tags: its match was counted under the values before the write."""

    def gated(self, i: int, m: str, t: int, reason: str) -> None:
        for c in self._of(i, m):
            c.suppressed[reason] = c.suppressed.get(reason, 0) + 1

    def policy(self, i: int, m: str, t: int, trigger_id: str, verdict: str, detail: str) -> None:
        cells = self._waiting.get(trigger_id)
        if cells is None:
            cells = self._of(i, m)
        if verdict == "wait":
            self._waiting[trigger_id] = cells
            return
        self._waiting.pop(trigger_id, None)
        for c in cells:
            if verdict == "sent":
                c.sent += 1
            elif verdict == "held":
                c.held += 1
            else:
                c.suppressed[verdict] = c.suppressed.get(verdict, 0) + 1

    def collected(self) -> Grouped:
        """The counts, as plain data (a worker sends them to the parent in its report)."""
        return Grouped(self.counts)


def merge(parts: Iterable[Any], groupings: int) -> Grouped:
    """Several engines' ``collected()`` (as Structs, or as decoded from a worker's report) added up."""
    total = Grouped([{} for _ in range(groupings)])
    for part in parts:
        grouped = msgspec.convert(part, Grouped)
        for into, counts in zip(total.groups, grouped.groups, strict=True):
            for scenario, by in counts.items():
                mine = into.setdefault(scenario, {})
                for value, c in by.items():
                    t = mine.setdefault(value, Counts())
                    t.matched += c.matched
                    t.sent += c.sent
                    t.held += c.held
                    for reason, n in c.suppressed.items():
                        t.suppressed[reason] = t.suppressed.get(reason, 0) + n
    return total


def ordered(by: dict[str, Counts]) -> list[tuple[str, Counts]]:
    """A scenario's values in a stable order: by text, ``(none)`` last."""
    return sorted(by.items(), key=lambda kv: (kv[0] == NONE, kv[0]))


def rows(counts: dict[str, dict[str, Counts]], scenarios: Sequence[str]) -> list[tuple[str, str, Counts]]:
    """(scenario, value, counts) in the plan's scenario order; scenarios that never matched are left out."""
    return [(s, v, c) for s in scenarios for v, c in ordered(counts.get(s, {}))]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def tables(grouped: Grouped, groupings: Sequence[Grouping], scenarios: Sequence[str]) -> str:
    """The ``--stats`` tables, one per grouping, each at most ``WIDTH`` columns (long reasons wrap)."""
    out = ["", f"Grouped by the subscriber's tags when the scenario matched ({NONE}: no such tag):"]
    for grouping, counts in zip(groupings, grouped.groups, strict=True):
        lines = rows(counts, scenarios)
        out.append(f"\nby {label(grouping)}")
        if not lines:
            out.append("no scenario matched")
            continue
        held = any(c.held for _, _, c in lines)
        head = ["scenario", label(grouping), "matched", "sent"] + (["held"] if held else [])
        cells = [[_cut(s, 26), _cut(v, 24), f"{c.matched:,}", f"{c.sent:,}"] + ([f"{c.held:,}" if c.held else ""] if held else [])
                 for s, v, c in lines]
        if len(head[1]) > 24:
            head[1] = "value"
        widths = [max(len(x[k]) for x in [head, *cells]) for k in range(len(head))]
        left = WIDTH - sum(widths) - 2 * len(widths)
        reasons_w = max(left, 16)
        header = "  ".join(h.ljust(w) if k < 2 else h.rjust(w) for k, (h, w) in enumerate(zip(head, widths, strict=True)))
        out.append(header + "  " + "suppressed (reason count)")
        out.append("  ".join("-" * w for w in widths) + "  " + "-" * reasons_w)
        previous = None
        for (s, _, c), cell in zip(lines, cells, strict=True):
            if s == previous:
                cell[0] = ""
            previous = s
            lead = "  ".join(x.ljust(w) if k < 2 else x.rjust(w) for k, (x, w) in enumerate(zip(cell, widths, strict=True)))
            wrapped = wrap_reasons(reasons_text(c.suppressed), reasons_w)
            out.append(f"{lead}  {wrapped[0]}".rstrip())
            pad = " " * (len(lead) + 2)
            out.extend(pad + more for more in wrapped[1:])
    return "\n".join(out) + "\n"
