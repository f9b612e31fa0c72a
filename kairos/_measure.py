"""Measurement: per scenario and channel, from matched to converted, and the uplift over control.

Built from the engine's ``ScenarioStats`` after a replay. Definitions (also
in docs/policy.md):

- *matched*: the pattern completed; *triggered*: passed the scenario's own
  gates (cooldown, once, audience, during); *sent*: the contact policy let it
  through; *suppressed*: stopped, by reason; *control*: held out.
- *delivered / clicked / accepted / rejected*: sends with at least one
  ``feedback`` of that outcome (joined by trigger id, each outcome once).
- *conversion*: accepted ÷ sent. *Control conversion*: control triggers whose
  id a ``feedback`` reports as accepted (the order system saw the subscriber
  take the offer's product without being contacted) ÷ control triggers.
- *uplift*: conversion − control conversion, in percentage points; it is shown
  only where the scenario has a control group.
- *unmatched feedback* (one figure for the run): ``feedback`` events joined to
  no send — an unknown trigger id, or more than the policy's ``feedback within``
  retention after the send. They count nowhere else.
- Without any ``feedback`` event in the input, conversion and uplift are not
  0 %: they are unknown, and the table says so (``NO_FEEDBACK``).
"""

from __future__ import annotations

import textwrap
from typing import Sequence

import msgspec

from kairos.engine import ScenarioStats, duration_text
from kairos.plan import Plan

GATES = ("cooldown", "once", "audience", "during")
POLICY = ("exclude", "arbitration", "no_repeat", "exclusive", "quiet", "cap", "control")
FUNNEL = ("delivered", "clicked", "accepted", "rejected")


class Row(msgspec.Struct):
    """One line of the table: a scenario (channel ``all``) or one of its channels."""

    scenario: str
    channel: str
    title: str = ""
    matched: int | None = None
    triggered: int | None = None
    suppressed: dict[str, int] = {}
    held: int = 0
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    accepted: int = 0
    rejected: int = 0
    control: int = 0
    control_accepted: int = 0

    @property
    def conversion(self) -> float | None:
        """accepted ÷ sent."""
        return self.accepted / self.sent if self.sent else None

    @property
    def control_conversion(self) -> float | None:
        return self.control_accepted / self.control if self.control else None

    @property
    def uplift(self) -> float | None:
        """Conversion minus control conversion (a fraction; ×100 for percentage points)."""
        c, k = self.conversion, self.control_conversion
        return None if c is None or k is None else c - k


def measure(plan: Plan, stats: Sequence[ScenarioStats]) -> list[Row]:
    """The table's rows: per scenario a total, then one row per channel it sent on."""
    rows: list[Row] = []
    for scn, st in zip(plan.scenarios, stats):
        total = Row(scn.name, "all", scn.title, st.matched, st.triggered, dict(st.suppressed), st.held,
                    sum(st.sent.values()), control=st.suppressed.get("control", 0),
                    control_accepted=st.control_outcomes.get("accepted", 0))
        for outcome in FUNNEL:
            setattr(total, outcome, sum(by.get(outcome, 0) for by in st.outcomes.values()))
        rows.append(total)
        for channel in sorted(st.sent):
            by = st.outcomes.get(channel, {})
            rows.append(Row(scn.name, channel, sent=st.sent[channel],
                            **{o: by.get(o, 0) for o in FUNNEL}))
    return rows


#: what conversion, control conversion and uplift are when the input had no ``feedback`` event at all
NO_FEEDBACK = "no feedback in the input"
#: their cell in the ``--stats`` table then (a note under the table spells it out)
NO_FEEDBACK_CELL = "n/a"


def feedback_seen(stats: Sequence[ScenarioStats], unmatched: int) -> bool:
    """Whether the input had any ``feedback`` event: joined to a send or a control trigger, or unmatched.
    Without one, a conversion of 0 % would claim that nobody took the offer."""
    return unmatched > 0 or any(
        any(st.control_outcomes.values()) or any(n for by in st.outcomes.values() for n in by.values())
        for st in stats)


def _pct(x: float | None, feedback: bool = True) -> str:
    return "-" if x is None else NO_FEEDBACK_CELL if not feedback else f"{100 * x:.1f}%"


def _pp(x: float | None, feedback: bool = True) -> str:
    return "-" if x is None else NO_FEEDBACK_CELL if not feedback else f"{100 * x:+.1f} pp"


def reasons_text(suppressed: dict[str, int]) -> str:
    """``cooldown 3, cap 1`` in the order gates, then policy, then the rest."""
    order = {r: i for i, r in enumerate(GATES + POLICY)}
    items = sorted(suppressed.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
    return ", ".join(f"{k} {v:,}" for k, v in items) or "-"


def unmatched_text(count: int, retention_ms: int) -> str:
    """The line under the table: feedback events that joined no send, and why that happens."""
    return (f"unmatched feedback: {count:,} (no send with that trigger id, or more than "
            f"{duration_text(retention_ms)} after its send)")


#: the text ``--stats`` prints fits this many columns (a terminal's 100; wider tables split, long reasons wrap)
WIDTH = 100
#: the suppression reasons stand beside the counts when they have this many columns there, else in their own table
REASONS_MIN = 30
#: the feedback table's heads: short, so the table fits ``WIDTH`` beside the catalogue's long scenario names
FEEDBACK_HEAD = ("sent", "deliv", "click", "accept", "reject", "conv", "ctl conv", "uplift")
FEEDBACK_LEGEND = ("deliv, click, accept, reject: sends with a feedback of that outcome; conv: accept ÷ sent; "
                   "ctl conv: the same for the control group (held out, not sent); uplift: conv − ctl conv, "
                   "in percentage points")


def wrap_reasons(reasons: str, width: int) -> list[str]:
    """``cooldown 3, cap 1`` over lines of at most ``width``, never parting a reason from its count."""
    lines = [""]
    for item in reasons.split(", "):
        if lines[-1] and len(lines[-1]) + 2 + len(item) > width:
            lines[-1] += ","
            lines.append(item)
        else:
            lines[-1] = f"{lines[-1]}, {item}" if lines[-1] else item
    return lines


def table(rows: list[Row], unmatched: str | None = None, *, feedback: bool = True) -> str:
    """The ``--stats`` tables, each at most ``WIDTH`` columns: per scenario and channel what matched, was
    sent and why not; then the feedback and conversion; ``unmatched`` (``unmatched_text``) below them;
    ``feedback``: whether the input had any (``feedback_seen``), else conversion and uplift read n/a."""
    held = any(r.held for r in rows)
    head = ["scenario", "channel", "matched", "sent", "control"] + (["held"] if held else [])
    cells: list[list[str]] = []
    reasons: list[str] = []
    for r in rows:
        total = r.channel == "all"
        cells.append([r.scenario if total else "", r.channel, f"{r.matched:,}" if total else "", f"{r.sent:,}",
                      f"{r.control:,}" if total else ""] + ([f"{r.held:,}" if total and r.held else ""] if held else []))
        reasons.append(reasons_text(r.suppressed) if total else "")
    widths = [max(len(x[k]) for x in [head, *cells]) for k in range(len(head))]
    reasons_w = WIDTH - sum(widths) - 2 * len(widths)
    out = ["Matched, sent and suppressed, per scenario and per channel it sent on:"]
    if reasons_w >= REASONS_MIN:  # the reasons beside the counts, wrapped in their column
        out += [_join(head, widths) + "  suppressed (reason count)",
                "  ".join("-" * w for w in widths) + "  " + "-" * reasons_w]
        for cell, why in zip(cells, reasons, strict=True):
            lead = _join(cell, widths)
            wrapped = wrap_reasons(why, reasons_w) if why else [""]
            out.append(f"{lead}  {wrapped[0]}".rstrip())
            out.extend(" " * (len(lead) + 2) + more for more in wrapped[1:])
    else:  # no room beside them: the counts, then the reasons in a table of their own
        out += _split_table(head, cells)
        name_w = max(len(x[0]) for x in [head, *cells])
        reasons_w = max(WIDTH - name_w - 2, REASONS_MIN)
        out += ["", _join(["scenario", "suppressed (reason count)"], [name_w, 0]),
                "-" * name_w + "  " + "-" * reasons_w]
        for cell, why in zip(cells, reasons, strict=True):
            if cell[0]:
                wrapped = wrap_reasons(why, reasons_w)
                out.append(f"{cell[0].ljust(name_w)}  {wrapped[0]}")
                out.extend(" " * (name_w + 2) + more for more in wrapped[1:])
    answers = [[r.scenario if r.channel == "all" else "", r.channel, f"{r.sent:,}", f"{r.delivered:,}",
                f"{r.clicked:,}", f"{r.accepted:,}", f"{r.rejected:,}", _pct(r.conversion, feedback),
                _pct(r.control_conversion, feedback) if r.channel == "all" else "",
                _pp(r.uplift, feedback) if r.channel == "all" else ""] for r in rows]
    out += ["", "Feedback and conversion:"]
    out += _split_table(["scenario", "channel", *FEEDBACK_HEAD], answers)
    out += ["", *textwrap.wrap(FEEDBACK_LEGEND, WIDTH)]
    if not feedback:
        out += textwrap.wrap(f"conv, ctl conv, uplift: {NO_FEEDBACK_CELL}, {NO_FEEDBACK} (nothing says who took "
                             "the offer)", WIDTH)
    if unmatched is not None:
        out += ["", unmatched]
    return "\n".join(out) + "\n"


def _join(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One line of a table: the two name columns to the left, numbers to the right."""
    return "  ".join(c.ljust(w) if k < 2 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths, strict=True)))


def _split_table(head: list[str], lines: list[list[str]]) -> list[str]:
    """A table of at most ``WIDTH`` columns: when its columns do not fit, those after the two name
    columns go on in a second table (and a third…), each repeating the names."""
    widths = [max(len(x[k]) for x in [head, *lines]) for k in range(len(head))]
    groups: list[list[int]] = [[]]
    used = widths[0] + widths[1] + 2
    for k in range(2, len(head)):
        if groups[-1] and used + 2 + widths[k] > WIDTH:
            groups.append([])
            used = widths[0] + widths[1] + 2
        groups[-1].append(k)
        used += 2 + widths[k]
    out: list[str] = []
    for n, group in enumerate(groups):
        keep = [0, 1, *group]
        if n:
            out.append("")
        out.append(_join([head[k] for k in keep], [widths[k] for k in keep]).rstrip())
        out.append("  ".join("-" * widths[k] for k in keep))
        out.extend(_join([line[k] for k in keep], [widths[k] for k in keep]).rstrip() for line in lines)
    return out
