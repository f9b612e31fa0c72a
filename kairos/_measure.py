"""Measurement: per scenario and channel, from matched to converted, and the uplift over control.

Built from the engine's ``ScenarioStats`` after a replay. Definitions (also
in the README):

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


def table(rows: list[Row], unmatched: str | None = None, *, feedback: bool = True) -> str:
    """The ``--stats`` table, aligned for a terminal; ``unmatched`` (``unmatched_text``) below it;
    ``feedback``: whether the input had any (``feedback_seen``), else conversion and uplift read n/a."""
    head = ("scenario", "channel", "matched", "sent", "delivered", "clicked", "accepted", "rejected",
            "conversion", "control", "ctl conv", "uplift", "held", "suppressed (reason count)")
    lines = [head]
    for r in rows:
        total = r.channel == "all"
        lines.append((
            r.scenario if total else "", r.channel,
            f"{r.matched:,}" if total else "", f"{r.sent:,}", f"{r.delivered:,}", f"{r.clicked:,}",
            f"{r.accepted:,}", f"{r.rejected:,}", _pct(r.conversion, feedback),
            f"{r.control:,}" if total else "", _pct(r.control_conversion, feedback) if total else "",
            _pp(r.uplift, feedback) if total else "", f"{r.held:,}" if total and r.held else "",
            reasons_text(r.suppressed) if total else "",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [c.ljust(w) if i in (0, 1, len(head) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    if not feedback:
        out += ["", f"conversion, ctl conv, uplift: {NO_FEEDBACK_CELL}, {NO_FEEDBACK} (nothing says who took the offer)"]
    if unmatched is not None:
        out += ["", unmatched]
    return "\n".join(out) + "\n"
