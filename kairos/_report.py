"""``kairos replay --report FILE.html``: one self-contained page for a marketing manager.

No network, no script: inline CSS and SVG. Three charts — sends over time per
scenario, the funnel from matched to converted, suppressions by reason — and
the per-scenario table with the same numbers as ``--stats``; with ``--by``, per
grouping a chart (matches per tag value, coloured by scenario) and a table.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import IO, Sequence, cast

import msgspec

from kairos._groups import NONE, Counts, Grouped, Grouping, rows as grouped_rows
from kairos._groups import label as grouping_label
from kairos._measure import GATES, POLICY, Row, reasons_text
from kairos.engine import LocalTime, duration_text

PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
           "#4b5563", "#65a30d", "#7c3aed", "#0d9488")
REASON_TEXT = {
    "cooldown": "cool-down (sent recently)", "once": "once (already had it)",
    "audience": "not in the audience", "during": "outside the scenario's hours",
    "exclude": "excluded list (DND, blacklist…)", "arbitration": "lost to a higher-priority offer",
    "no_repeat": "already answered this offer", "exclusive": "exclusion group",
    "quiet": "quiet hours (dropped)", "cap": "frequency cap", "control": "control group (held out)",
}


class Series:
    """Sends per scenario per local hour (hour = epoch ms of the hour's start)."""

    def __init__(self, clock: LocalTime) -> None:
        self.clock = clock
        self.counts: dict[str, dict[int, int]] = {}

    def add(self, scenario: str, send_at: int) -> None:
        hour = self.clock.local_ms(send_at) // 3_600_000
        by = self.counts.setdefault(scenario, {})
        by[hour] = by.get(hour, 0) + 1


class _SendAt(msgspec.Struct):
    scenario: str
    send_at: int


class _Tee:
    """Writes the merged sends of workers through to ``out``, adding each to ``series`` on the way."""

    def __init__(self, out: IO[bytes], series: Series) -> None:
        self.out = out
        self.series = series
        self.rest = b""
        self.decode = msgspec.json.Decoder(_SendAt).decode

    def write(self, data: bytes) -> int:
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if line:
                send = self.decode(line)
                self.series.add(send.scenario, send.send_at)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def sends_tee(out: IO[bytes], series: Series) -> IO[bytes]:
    """``out``, counting in ``series`` each send line written to it (the workers' sends, once merged)."""
    return cast(IO[bytes], _Tee(out, series))


def _label(hour: int, size: int) -> str:
    when = dt.datetime.fromtimestamp(hour * 3600, dt.timezone.utc)
    return when.strftime("%a %d %b" if size == 24 else "%a %H:00")


def bucket_hours(series: Series) -> int:
    """Bars of one hour for up to three days of sends, of one day beyond."""
    hours = [h for by in series.counts.values() for h in by]
    return 1 if not hours or max(hours) - min(hours) <= 72 else 24


def _sends_chart(series: Series, names: Sequence[str]) -> str:
    size = bucket_hours(series)
    counts = {n: {} for n in names}  # type: dict[str, dict[int, int]]
    for n in names:
        for h, k in series.counts.get(n, {}).items():
            b = h - h % size
            counts[n][b] = counts[n].get(b, 0) + k
    hours = sorted({h for by in counts.values() for h in by})
    if not hours:
        return "<p class=empty>No sends.</p>"
    hours = list(range(hours[0], hours[-1] + 1, size))
    totals = [sum(counts[n].get(h, 0) for n in names) for h in hours]
    top = max(totals) or 1
    w, h, left, bottom = 900, 260, 50, 40
    bw = (w - left - 10) / len(hours)
    parts = [f'<svg viewBox="0 0 {w} {h + bottom}" role="img" aria-label="sends per hour">']
    for k in range(5):
        y = 10 + h - h * k / 4
        parts.append(f'<line x1="{left}" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" class=grid />'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class=axis text-anchor=end>{round(top * k / 4):,}</text>')
    for i, hour in enumerate(hours):
        y = 10 + h
        for j, name in enumerate(names):
            n = counts[name].get(hour, 0)
            if not n:
                continue
            bh = h * n / top
            y -= bh
            parts.append(f'<rect x="{left + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" '
                         f'height="{bh:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                         f'<title>{escape(name)}: {n:,} at {_label(hour, size)}</title></rect>')
        step = max(1, len(hours) // 12)
        if i % step == 0:
            parts.append(f'<text x="{left + i * bw + bw / 2:.1f}" y="{h + 28}" class=axis '
                         f'text-anchor=middle>{_label(hour, size)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{PALETTE[j % len(PALETTE)]}"></i>{escape(n)}</span>'
                     for j, n in enumerate(names) if series.counts.get(n))
    return "".join(parts) + f'<div class=legend>{legend}</div>'


def _hbars(items: list[tuple[str, int, str]], width: int = 900) -> str:
    """Horizontal bars: (label, value, colour) with the value written at the end."""
    if not items:
        return "<p class=empty>Nothing to show.</p>"
    top = max(v for _, v, _ in items) or 1
    row, label_w = 34, 260
    parts = [f'<svg viewBox="0 0 {width} {row * len(items) + 6}" role="img">']
    for i, (label, value, colour) in enumerate(items):
        y = i * row + 4
        bw = (width - label_w - 90) * value / top
        parts.append(f'<text x="{label_w - 10}" y="{y + 19}" text-anchor=end class=label>{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{max(bw, 1):.1f}" height="{row - 10}" rx=3 fill="{colour}" />'
                     f'<text x="{label_w + bw + 8:.1f}" y="{y + 19}" class=value>{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _funnel(rows: list[Row]) -> str:
    totals = [r for r in rows if r.channel == "all"]
    steps = [
        ("matched (pattern seen)", sum(r.matched or 0 for r in totals)),
        ("passed the scenario's rules", sum(r.triggered or 0 for r in totals)),
        ("sent", sum(r.sent for r in totals)),
        ("delivered", sum(r.delivered for r in totals)),
        ("clicked", sum(r.clicked for r in totals)),
        ("accepted (converted)", sum(r.accepted for r in totals)),
    ]
    colours = ("#94a3b8", "#64748b", "#2563eb", "#0891b2", "#0d9488", "#16a34a")
    return _hbars([(label, value, c) for (label, value), c in zip(steps, colours)])


def _reasons(rows: list[Row]) -> str:
    totals: dict[str, int] = {}
    for r in rows:
        for reason, n in r.suppressed.items():
            totals[reason] = totals.get(reason, 0) + n
    order = {r: i for i, r in enumerate(GATES + POLICY)}
    items = sorted(totals.items(), key=lambda kv: (-kv[1], order.get(kv[0], 99)))
    return _hbars([(REASON_TEXT.get(k, k), v, "#f59e0b" if k in GATES else "#dc2626" if k != "control" else "#9333ea")
                   for k, v in items])


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _unmatched(count: int, retention_ms: int) -> str:
    if not count:
        return ""
    return escape(f" {count:,} feedback event{'s' * (count != 1)} matched no send (an unknown message id, "
                  f"or an answer more than {duration_text(retention_ms)} after the message) and "
                  f"{'are' if count != 1 else 'is'} not counted above.")


def _table(rows: list[Row]) -> str:
    head = ("Scenario", "Channel", "Matched", "Sent", "Delivered", "Clicked", "Accepted", "Rejected",
            "Conversion", "Control", "Control conv.", "Uplift", "Held", "Suppressed (why)")
    out = ["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in rows:
        total = r.channel == "all"
        cells = [
            f"<b>{escape(r.scenario)}</b><br><small>{escape(r.title)}</small>" if total else "",
            "all" if total else escape(r.channel),
            f"{r.matched:,}" if total else "", f"{r.sent:,}", f"{r.delivered:,}", f"{r.clicked:,}",
            f"{r.accepted:,}", f"{r.rejected:,}", _pct(r.conversion),
            f"{r.control:,}" if total else "", _pct(r.control_conversion) if total else "",
            ("–" if r.uplift is None else f"{100 * r.uplift:+.1f} pp") if total else "",
            f"{r.held:,}" if total and r.held else "",
            escape(reasons_text(r.suppressed)) if total else "",
        ]
        out.append(f'<tr class="{"total" if total else "channel"}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


#: the grouping chart colours this many scenarios (those with the most matches); the rest are one grey
GROUP_COLOURS = len(PALETTE) - 1
OTHERS = "#cbd5e1"


def _group_chart(lines: list[tuple[str, str, Counts]], names: Sequence[str], limit: int = 30) -> str:
    """Per tag value a bar of its matches, a colour per scenario (the scenarios with the most matches;
    the others grey), the matches and sends written at the end; the ``limit`` values with the most
    matches (the table has them all)."""
    matched: dict[str, dict[str, int]] = {}
    sent: dict[str, int] = {}
    per_scenario: dict[str, int] = {}
    for scenario, value, c in lines:
        by = matched.setdefault(value, {})
        by[scenario] = by.get(scenario, 0) + c.matched
        sent[value] = sent.get(value, 0) + c.sent
        per_scenario[scenario] = per_scenario.get(scenario, 0) + c.matched
    if not any(per_scenario.values()):
        return "<p class=empty>No scenario matched.</p>"
    ranked = sorted((n for n in names if per_scenario.get(n)), key=lambda n: -per_scenario[n])
    colours = {n: PALETTE[k] for k, n in enumerate(ranked[:GROUP_COLOURS])}
    rest = ranked[GROUP_COLOURS:]
    values = sorted(matched, key=lambda v: (-sum(matched[v].values()), v == NONE, v))
    shown = values[:limit]
    top = max(sum(matched[v].values()) for v in shown) or 1
    width, row, label_w, room = 900, 28, 200, 230
    parts = [f'<svg viewBox="0 0 {width} {row * len(shown) + 6}" role="img" aria-label="matches by value">']
    for i, value in enumerate(shown):
        y = i * row + 4
        x = float(label_w)
        parts.append(f'<text x="{label_w - 10}" y="{y + 15}" text-anchor=end class=label>{escape(value)}</text>')
        segments = [(n, colours[n]) for n in ranked[:GROUP_COLOURS]]
        others = sum(matched[value].get(n, 0) for n in rest)
        for name, colour in segments + ([(f"{len(rest)} other scenarios", OTHERS)] if rest else []):
            n = others if colour == OTHERS else matched[value].get(name, 0)
            if not n:
                continue
            bw = (width - label_w - room) * n / top
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{max(bw, 1):.1f}" height="{row - 9}" '
                         f'fill="{colour}"><title>{escape(name)}, {escape(value)}: {n:,} matched</title></rect>')
            x += bw
        total = sum(matched[value].values())
        parts.append(f'<text x="{x + 8:.1f}" y="{y + 15}" class=small>{total:,} matched · {sent[value]:,} sent</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{colours[n]}"></i>{escape(n)}</span>' for n in ranked[:GROUP_COLOURS])
    if rest:
        legend += f'<span><i style="background:{OTHERS}"></i>{len(rest)} other scenarios</span>'
    more = (f'<p class=note>The {limit} values with the most matches; the table below has all '
            f'{len(values):,}.</p>' if len(values) > limit else "")
    return "".join(parts) + f"<div class=legend>{legend}</div>{more}"


def _group_table(grouping: Grouping, lines: list[tuple[str, str, Counts]]) -> str:
    held = any(c.held for _, _, c in lines)
    head = ["Scenario", escape(grouping_label(grouping)), "Matched", "Sent"] + (["Held"] if held else []) + ["Suppressed (why)"]
    out = ["<table class=by><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    previous = None
    for scenario, value, c in lines:
        first = scenario != previous
        previous = scenario
        cells = [f"<b>{escape(scenario)}</b>" if first else "", escape(value), f"{c.matched:,}", f"{c.sent:,}"]
        cells += [f"{c.held:,}" if c.held else ""] if held else []
        cells.append(escape(reasons_text(c.suppressed)))
        out.append(f'<tr class="{"first" if first else "more"}">' + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _groups(groupings: Sequence[Grouping], grouped: Grouped | None, names: Sequence[str]) -> str:
    """The ``--by`` sections: per grouping a heading, a chart and a table."""
    if grouped is None:
        return ""
    out = []
    for grouping, counts in zip(groupings, grouped.groups, strict=True):
        lines = grouped_rows(counts, names)
        out.append(f"<h2>By {escape(grouping_label(grouping))}</h2>"
                   f"<p class=note>Each scenario's matches, sends and suppressions by the value of "
                   f"{escape(grouping_label(grouping))} the subscriber had when the scenario matched; {NONE}: the subscriber "
                   "had no such tag. Each scenario's rows add up to its line in the table above. Bars: matches per "
                   "value, coloured by scenario.</p>")
        out.append(_group_chart(lines, names))
        out.append(_group_table(grouping, lines))
    return "\n".join(out)


CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;margin:24px auto;max-width:1200px;padding:0 16px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 4px} p.note{color:#4b5563;margin:0 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{flex:1;min-width:130px;background:#f8fafc;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px}
.card b{display:block;font-size:24px} .card span{color:#4b5563;font-size:13px}
svg{width:100%;height:auto} .grid{stroke:#e5e7eb} .axis{font-size:11px;fill:#6b7280}
.label{font-size:14px;fill:#1f2937} .value{font-size:14px;fill:#1f2937;font-weight:600}
.small{font-size:12.5px;fill:#1f2937;font-weight:600}
.legend span{display:inline-block;margin:4px 14px 0 0;font-size:13px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin-top:8px}
th,td{padding:4px 5px;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2),th:last-child,td:last-child{text-align:left}
td:nth-child(12),td:nth-child(9){white-space:nowrap}
tr.total{background:#f8fafc} tr.channel td{color:#4b5563} small{color:#6b7280}
table.by td:nth-child(2){white-space:nowrap} table.by tr.first td{border-top:1px solid #cbd5e1}
.empty{color:#6b7280}
"""


def render(rows: list[Row], series: Series, *, title: str, subtitle: str, unmatched: int = 0,
           retention_ms: int = 0, groupings: Sequence[Grouping] = (), grouped: Grouped | None = None) -> str:
    """The whole page; ``unmatched`` feedback events joined no send (kept ``retention_ms`` after it);
    ``grouped``: the ``--by`` counts of ``groupings``, a section each."""
    totals = [r for r in rows if r.channel == "all"]
    names = [r.scenario for r in totals]
    sent = sum(r.sent for r in totals)
    accepted = sum(r.accepted for r in totals)
    suppressed = sum(sum(r.suppressed.values()) for r in totals)
    cards = [
        (f"{sum(r.matched or 0 for r in totals):,}", "times a scenario matched"),
        (f"{sent:,}", "messages sent"),
        (f"{suppressed:,}", "held back (rules, policy, control)"),
        (f"{accepted:,}", "offers accepted"),
        (_pct(accepted / sent if sent else None), "conversion (accepted ÷ sent)"),
    ]
    card_html = "".join(f"<div class=card><b>{v}</b><span>{escape(k)}</span></div>" for v, k in cards)
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>{escape(title)}</title><style>{CSS}</style></head><body>
<h1>{escape(title)}</h1><p class=note>{escape(subtitle)}</p>
<div class=cards>{card_html}</div>
<h2>Messages sent per {"hour" if bucket_hours(series) == 1 else "day"}, by scenario</h2>
<p class=note>Each bar is one {"hour" if bucket_hours(series) == 1 else "day"} of local time (when the message goes
out); colours are scenarios. Hover a bar for the numbers.</p>
{_sends_chart(series, names)}
<h2>From match to conversion</h2>
<p class=note>How many times scenarios matched, how many passed their own rules and the contact policy and were
sent, and what subscribers did with them (from the channels' feedback).{_unmatched(unmatched, retention_ms)}</p>
{_funnel(rows)}
<h2>Why matches were not sent</h2>
<p class=note>Amber: the scenario's own rules. Red: the contact policy protecting the subscriber. Purple: the
control group, held out on purpose to measure the real effect.</p>
{_reasons(rows)}
<h2>Per scenario and channel</h2>
<p class=note>Conversion = accepted ÷ sent. Uplift = conversion minus the control group's conversion (control
subscribers who took the offer without being contacted), in percentage points. Held = still waiting for the
policy when the recording ended.</p>
{_table(rows)}
{_groups(groupings, grouped, names)}
</body></html>
"""
