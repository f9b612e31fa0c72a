"""Reading the ``kairos replay --stats`` text back into cells, as a person reads its tables.

The text holds a table of matched, sent and suppressed, then one (or, when it
does not fit 100 columns, several) of feedback and conversion, each with the
scenario and channel columns repeated. ``stats_cells`` cuts each line into
columns where the dashes under the heads are and joins a row's cells from all
the tables, so a test asks for ``cells[("data_90", "all")]["sent"]``.
"""

from __future__ import annotations

import re

#: the short heads of the feedback table, by the report's names for them
LONG = {"deliv": "delivered", "click": "clicked", "accept": "accepted", "reject": "rejected", "conv": "conversion"}
#: the head of the suppression reasons: a column of the first table, or a table of their own when it is wide
REASONS = "suppressed (reason count)"
#: the report's columns after scenario and channel, in its order (``--stats`` used to print them so)
REPORT_ORDER = ("matched", "sent", "delivered", "clicked", "accepted", "rejected", "conversion", "control",
                "ctl conv", "uplift", "held", REASONS)


def stats_cells(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """(scenario, channel) → head → cell, from every table whose second column is the channel (or the
    suppression reasons, for the channel ``all``)."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    lines = text.splitlines()
    for n, line in enumerate(lines[:-1]):
        if not (line.startswith("scenario ") and re.match(r"-+  -+", lines[n + 1])):
            continue
        spans = [m.span() for m in re.finditer(r"-+", lines[n + 1])]
        cut = [(a, b) for a, b in spans[:-1]] + [(spans[-1][0], None)]
        heads = [line[a:b].strip() for a, b in cut]
        if heads[1] not in ("channel", REASONS):  # a --by table
            continue
        first = 2 if heads[1] == "channel" else 1  # a table of reasons alone: one line per scenario
        scenario = ""
        key: tuple[str, str] | None = None
        for row in lines[n + 2:]:
            if not row.strip():
                break
            cells = [row[a:b].strip() for a, b in cut]
            if not any(cells[:-1]) and key is not None:  # the wrapped reasons of the row above
                rows[key][heads[-1]] += " " + cells[-1]
                continue
            scenario = cells[0] or scenario
            key = (scenario, cells[1] if first == 2 else "all")
            into = rows.setdefault(key, {})
            for head, cell in zip(heads[first:], cells[first:], strict=True):
                into[LONG.get(head, head)] = cell
    return rows


def in_report_order(cells: dict[str, str]) -> list[str]:
    """A row's non-empty cells in the order of the report's columns."""
    return [cells[h] for h in REPORT_ORDER if cells.get(h)]
