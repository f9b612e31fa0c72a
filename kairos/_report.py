"""``kairos replay --report FILE.html``: one self-contained page for a marketing manager.

No network, no script: inline CSS, SVG for the sends over time, HTML bars for
the rest (they reflow on a phone). Three charts — sends over time per
scenario, the funnel from matched to converted, suppressions by reason — and
the per-scenario table with the same numbers as ``--stats``; with ``--by``, per
grouping a chart (matches per tag value, coloured by scenario) and a table.
Nothing misleads: without feedback, conversion is unknown, not 0 %; a scenario
colour is never reused; a long label is cut and kept whole in its title; a
funnel that falls by orders of magnitude is drawn on a log scale.
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from typing import IO, Sequence, cast

import msgspec

from kairos._groups import NONE, Counts, Grouped, Grouping, rows as grouped_rows
from kairos._groups import label as grouping_label
from kairos._measure import GATES, NO_FEEDBACK, POLICY, Row, reasons_text
from kairos.engine import LocalTime, duration_text

#: 30 colours, each at least 28 CIELAB ΔE from every other and from ``OTHERS`` (chosen greedily, farthest
#: first, from a grid of mid-light saturated colours): the first ones go to the scenarios that sent most
PALETTE = ("#2563eb", "#de2301", "#52d60e", "#f726a7", "#485000", "#ebb311", "#7e3241", "#05d4a4", "#0e6397",
           "#fda683", "#bc37f7", "#d69aed", "#a5c85e", "#7b2286", "#fe526e", "#954a04", "#10765b", "#05ccf4",
           "#038515", "#ec87a7", "#84b2fc", "#fb8725", "#a98e36", "#9a071d", "#805a8f", "#d462e1", "#a60161",
           "#4427cc", "#00d770", "#87be8a")
#: the one colour of the scenarios beyond the palette (those that sent least), grouped as "N other scenarios"
OTHERS = "#cbd5e1"
#: a label longer than this many characters is cut with an ellipsis; its element's title has it whole
LABEL_CHARS = 28
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


def cut(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` with at most ``limit`` characters, the last an ellipsis when it had more."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _name(text: str, limit: int = LABEL_CHARS) -> str:
    """A label as HTML: cut to ``limit`` characters, the whole text in its title (shown on hover)."""
    return f'<span class=name title="{escape(text)}">{escape(cut(text, limit))}</span>'


def scenario_colours(ranked: Sequence[str]) -> dict[str, str]:
    """A colour per scenario of ``ranked`` (most important first): the palette's in order, and when there are
    more scenarios than colours, the last colour is ``OTHERS``, shared by all the rest."""
    if len(ranked) <= len(PALETTE):
        return dict(zip(ranked, PALETTE))
    return {n: PALETTE[k] if k < len(PALETTE) - 1 else OTHERS for k, n in enumerate(ranked)}


def _legend(ranked: Sequence[str], colours: dict[str, str], amounts: dict[str, int], what: str) -> str:
    """The legend: a coloured square and the (cut) name per coloured scenario, then one for the others."""
    own = [n for n in ranked if colours[n] != OTHERS]
    rest = [n for n in ranked if colours[n] == OTHERS]
    items = [f'<span title="{escape(n)}: {amounts[n]:,} {what}"><i style="background:{colours[n]}"></i>'
             f'{escape(cut(n))}</span>' for n in own]
    if rest:
        names = ", ".join(f"{n} ({amounts[n]:,})" for n in rest)
        items.append(f'<span title="{escape(names)}"><i style="background:{OTHERS}"></i>'
                     f'{len(rest)} other scenarios ({sum(amounts[n] for n in rest):,} {what})</span>')
    return f'<div class=legend>{"".join(items)}</div>'


def grid_step(top: int) -> int:
    """The step of four grid lines reaching at least ``top``: a whole round number (1, 1.5, 2, 2.5, 3, 4, 5,
    6 or 8 × 10ⁿ), so the axis reads 0, 250, 500, 750, 1,000 rather than 0, 201, 402, 602, 803."""
    k = 1
    while True:
        for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
            if float(m * k).is_integer() and 4 * m * k >= top:
                return int(m * k)
        k *= 10


#: the time axis writes a label at most every this many units of the chart's 900 (a label is about 66)
LABEL_SPACING = 80


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
    sent = {n: sum(counts[n].values()) for n in names}
    ranked = sorted((n for n in names if sent[n]), key=lambda n: -sent[n])  # the biggest at the bottom
    colours = scenario_colours(ranked)
    hours = list(range(hours[0], hours[-1] + 1, size))
    totals = [sum(counts[n].get(h, 0) for n in names) for h in hours]
    top = 4 * grid_step(max(totals))
    w, h, left, bottom = 900, 260, 50, 40
    bw = (w - left - 10) / len(hours)
    step = max(1, math.ceil(LABEL_SPACING / bw))
    parts = [f'<div class="chart scroll"><svg viewBox="0 0 {w} {h + bottom}" role="img" aria-label="sends per hour">']
    for k in range(5):
        y = 10 + h - h * k / 4
        parts.append(f'<line x1="{left}" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" class=grid />'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class=axis text-anchor=end>{round(top * k / 4):,}</text>')
    for i, hour in enumerate(hours):
        y = 10 + h
        segments: list[tuple[str, str, int]] = []  # (what, colour, sends), bottom up
        for name in ranked:
            n = counts[name].get(hour, 0)
            if n and colours[name] == OTHERS and segments and segments[-1][1] == OTHERS:
                segments[-1] = ("other scenarios", OTHERS, segments[-1][2] + n)
            elif n:
                segments.append((name if colours[name] != OTHERS else "other scenarios", colours[name], n))
        for what, colour, n in segments:
            bh = h * n / top
            y -= bh
            parts.append(f'<rect x="{left + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" '
                         f'height="{bh:.1f}" fill="{colour}">'
                         f'<title>{escape(what)}: {n:,} at {_label(hour, size)}</title></rect>')
        if i % step == 0 and left + i * bw + bw / 2 + LABEL_SPACING / 2 <= w:  # a whole label, not cut at the edge
            parts.append(f'<text x="{left + i * bw + bw / 2:.1f}" y="{h + 28}" class=axis '
                         f'text-anchor=middle>{_label(hour, size)}</text>')
    parts.append("</svg></div>")
    return "".join(parts) + _legend(ranked, colours, sent, "sent")


#: bars whose largest value is this many times their smallest (above 0) or more are drawn on a log scale
LOG_RATIO = 100


def _lengths(values: Sequence[int], log: bool) -> tuple[list[float], bool]:
    """Each value's bar length as a fraction of the longest, and whether the scale is logarithmic: with
    ``log``, when the values differ by orders of magnitude (1,000,000 matched, 2 clicked) — a linear bar of
    the small ones would be invisible — a tenfold is the same length everywhere and 1 is a tenth of one."""
    top = max(values, default=0)
    if not top:
        return [0.0 for _ in values], False
    if not log or top < LOG_RATIO * min(v for v in values if v):
        return [v / top for v in values], False
    return [(1 + math.log10(v)) / (1 + math.log10(top)) if v else 0.0 for v in values], True


def _share(part: int, whole: int) -> str:
    """``part`` as a share of ``whole``, to two significant figures for small shares (0.03%)."""
    x = 100 * part / whole
    return f"{x:.0f}%" if x >= 10 or x == 0 else f"{x:.1f}%" if x >= 1 else f"{x:.2g}%"


class Bar(msgspec.Struct):
    """One bar of ``_bars``: its label, value and colour, and text after the value (or instead of the bar)."""

    label: str
    value: int
    colour: str
    after: str = ""
    unknown: str = ""  #: when set, no bar and no value: this text says why


def _bars(items: Sequence[Bar], what: str, log: bool = False) -> str:
    """Horizontal bars as HTML (they reflow on a phone: the label goes above its bar), the value written
    at the end of each; with ``log``, a log scale (said under the bars) when the values differ by orders
    of magnitude; on a linear scale a bar above 0 is at least a few pixels long."""
    if not items:
        return "<p class=empty>Nothing to show.</p>"
    lengths, log = _lengths([b.value for b in items if not b.unknown], log)
    out = [f'<div class="chart bars" role=img aria-label="{escape(what)}">']
    known = iter(lengths)
    for b in items:
        if b.unknown:
            track = f"<em>{escape(b.unknown)}</em>"
        else:
            after = f" <small>{escape(b.after)}</small>" if b.after else ""
            seen = " class=some" if b.value else ""
            track = f'<i{seen} style="--w:{next(known):.4f};background:{b.colour}"></i><b>{b.value:,}</b>{after}'
        out.append(f"<div class=bar>{_name(b.label)}<span class=track>{track}</span></div>")
    out.append("</div>")
    if log:
        out.append("<p class=note>Bar lengths on a logarithmic scale (the values differ by orders of magnitude, "
                   "each tenfold is the same length): read the numbers.</p>")
    return "".join(out)


def _funnel(rows: list[Row], feedback: bool) -> str:
    totals = [r for r in rows if r.channel == "all"]
    steps = [
        ("matched (pattern seen)", sum(r.matched or 0 for r in totals), False),
        ("passed the scenario's rules", sum(r.triggered or 0 for r in totals), False),
        ("sent", sum(r.sent for r in totals), False),
        ("delivered", sum(r.delivered for r in totals), True),
        ("clicked", sum(r.clicked for r in totals), True),
        ("accepted (converted)", sum(r.accepted for r in totals), True),
    ]
    colours = ("#94a3b8", "#64748b", "#2563eb", "#0891b2", "#0d9488", "#16a34a")
    bars = []
    previous: tuple[str, int] | None = None
    for (label, value, answered), colour in zip(steps, colours):
        if answered and not feedback:
            bars.append(Bar(label, 0, colour, unknown=NO_FEEDBACK))
            continue
        after = f"{_share(value, previous[1])} of {previous[0].split(' ')[0]}" if previous and previous[1] else ""
        bars.append(Bar(label, value, colour, after))
        previous = (label, value)
    return _bars(bars, "from match to conversion", log=True)


def _reasons(rows: list[Row]) -> str:
    totals: dict[str, int] = {}
    for r in rows:
        for reason, n in r.suppressed.items():
            totals[reason] = totals.get(reason, 0) + n
    order = {r: i for i, r in enumerate(GATES + POLICY)}
    items = sorted(totals.items(), key=lambda kv: (-kv[1], order.get(kv[0], 99)))
    return _bars([Bar(REASON_TEXT.get(k, k), v, "#f59e0b" if k in GATES else "#dc2626" if k != "control" else "#9333ea")
                  for k, v in items], "why matches were not sent")


def _pct(x: float | None, feedback: bool = True) -> str:
    """A share as a percentage; "–" where there is none (no sends, no control group); n/a without feedback."""
    if x is not None and not feedback:
        return f'<abbr title="{NO_FEEDBACK}">n/a</abbr>'
    return "–" if x is None else f"{100 * x:.1f}%"


def _unmatched(count: int, retention_ms: int) -> str:
    if not count:
        return ""
    return escape(f" {count:,} feedback event{'s' * (count != 1)} matched no send (an unknown message id, "
                  f"or an answer more than {duration_text(retention_ms)} after the message) and "
                  f"{'are' if count != 1 else 'is'} not counted above.")


def _table(rows: list[Row], feedback: bool) -> str:
    head = ("Scenario", "Channel", "Matched", "Sent", "Delivered", "Clicked", "Accepted", "Rejected",
            "Conversion", "Control", "Control conv.", "Uplift", "Held", "Suppressed (why)")
    out = ["<div class=scroll><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in rows:
        total = r.channel == "all"
        uplift = _pct(r.uplift, feedback) if r.uplift is None or not feedback else f"{100 * r.uplift:+.1f} pp"
        cells = [
            f"<b>{escape(r.scenario)}</b><br><small>{escape(r.title)}</small>" if total else "",
            "all" if total else escape(r.channel),
            f"{r.matched:,}" if total else "", f"{r.sent:,}", f"{r.delivered:,}", f"{r.clicked:,}",
            f"{r.accepted:,}", f"{r.rejected:,}", _pct(r.conversion, feedback),
            f"{r.control:,}" if total else "", _pct(r.control_conversion, feedback) if total else "",
            uplift if total else "",
            f"{r.held:,}" if total and r.held else "",
            escape(reasons_text(r.suppressed)) if total else "",
        ]
        out.append(f'<tr class="{"total" if total else "channel"}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _group_chart(lines: list[tuple[str, str, Counts]], names: Sequence[str], limit: int = 30) -> str:
    """Per tag value a bar of its matches, a colour per scenario (the scenarios with the most matches;
    beyond the palette the others grey), the matches and sends written at the end; the ``limit`` values
    with the most matches (the table has them all)."""
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
    colours = scenario_colours(ranked)
    values = sorted(matched, key=lambda v: (-sum(matched[v].values()), v == NONE, v))
    shown = values[:limit]
    top = max(sum(matched[v].values()) for v in shown) or 1
    parts = ['<div class="chart bars stacked" role=img aria-label="matches by value">']
    for value in shown:
        total = sum(matched[value].values())
        segments = []
        others = sum(matched[value].get(n, 0) for n in ranked if colours[n] == OTHERS)
        for name in ranked:
            n = matched[value].get(name, 0)
            if n and colours[name] != OTHERS:
                segments.append(f'<i style="flex:{n};background:{colours[name]}" '
                                f'title="{escape(name)}, {escape(value)}: {n:,} matched"></i>')
        if others:
            segments.append(f'<i style="flex:{others};background:{OTHERS}" '
                            f'title="other scenarios, {escape(value)}: {others:,} matched"></i>')
        parts.append(f'<div class=bar>{_name(value)}<span class=track><span class=stack style="--w:{total / top:.4f}">'
                     f'{"".join(segments)}</span><b>{total:,} matched · {sent[value]:,} sent</b></span></div>')
    parts.append("</div>")
    more = (f'<p class=note>The {limit} values with the most matches; the table below has all '
            f'{len(values):,}.</p>' if len(values) > limit else "")
    return "".join(parts) + _legend(ranked, colours, per_scenario, "matched") + more


def _group_table(grouping: Grouping, lines: list[tuple[str, str, Counts]]) -> str:
    held = any(c.held for _, _, c in lines)
    head = ["Scenario", escape(grouping_label(grouping)), "Matched", "Sent"] + (["Held"] if held else []) + ["Suppressed (why)"]
    out = ["<div class=scroll><table class=by><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    previous = None
    for scenario, value, c in lines:
        first = scenario != previous
        previous = scenario
        cells = [f"<b>{escape(scenario)}</b>" if first else "", escape(value), f"{c.matched:,}", f"{c.sent:,}"]
        cells += [f"{c.held:,}" if c.held else ""] if held else []
        cells.append(escape(reasons_text(c.suppressed)))
        out.append(f'<tr class="{"first" if first else "more"}">' + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    out.append("</tbody></table></div>")
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
.card b{display:block;font-size:24px} .card b.unknown{font-size:16px;padding:5px 0 4px} .card span{color:#4b5563;font-size:13px}
.scroll{overflow-x:auto} .chart.scroll svg{min-width:640px}
svg{width:100%;height:auto} .grid{stroke:#e5e7eb} .axis{font-size:12px;fill:#6b7280}
.bars{margin:8px 0 10px} .bar{display:grid;grid-template-columns:minmax(0,250px) 1fr;gap:10px;align-items:center;margin:5px 0}
.bar .name{text-align:right;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.track{display:flex;align-items:center;gap:8px;min-width:0;white-space:nowrap}
.track i{display:block;flex:none;height:22px;border-radius:3px;width:calc((100% - 13em) * var(--w))} .track i.some{min-width:3px}
.track small{color:#4b5563} .track em{color:#6b7280}
.stacked .stack{display:flex;flex:none;height:18px;width:calc((100% - 15em) * var(--w))}
.stacked .stack i{height:18px;border-radius:0;min-width:1px;width:auto;flex-shrink:1}
.stacked .track b{font-size:13px}
.legend span{display:inline-block;margin:4px 14px 0 0;font-size:13px;white-space:nowrap}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin-top:8px}
th,td{padding:4px 5px;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2),th:last-child,td:last-child{text-align:left}
td:first-child{min-width:13em;overflow-wrap:anywhere} td:last-child{min-width:10em}
td:nth-child(12),td:nth-child(9){white-space:nowrap} abbr{text-decoration:none;color:#6b7280}
tr.total{background:#f8fafc} tr.channel td{color:#4b5563} small{color:#6b7280}
.scroll td:first-child,.scroll th:first-child{position:sticky;left:0;background:#fff} .scroll tr.total td:first-child{background:#f8fafc}
table.by td:nth-child(2){white-space:nowrap} table.by tr.first td{border-top:1px solid #cbd5e1}
.empty{color:#6b7280}
@media (max-width:640px){body{margin:12px auto;padding:0 10px} .bar{grid-template-columns:1fr;gap:1px;margin:8px 0}
.bar .name{text-align:left;font-size:14px} .card{min-width:40%} .card b{font-size:20px}}
"""


def render(rows: list[Row], series: Series, *, title: str, subtitle: str, unmatched: int = 0,
           retention_ms: int = 0, groupings: Sequence[Grouping] = (), grouped: Grouped | None = None,
           feedback: bool = True) -> str:
    """The whole page; ``unmatched`` feedback events joined no send (kept ``retention_ms`` after it);
    ``grouped``: the ``--by`` counts of ``groupings``, a section each; ``feedback``: whether the input had
    any (``feedback_seen``): without, what subscribers did is unknown, not zero."""
    totals = [r for r in rows if r.channel == "all"]
    names = [r.scenario for r in totals]
    sent = sum(r.sent for r in totals)
    accepted = sum(r.accepted for r in totals)
    suppressed = sum(sum(r.suppressed.values()) for r in totals)
    unknown = f"<b class=unknown>{NO_FEEDBACK}</b>"
    cards = [
        (f"<b>{sum(r.matched or 0 for r in totals):,}</b>", "times a scenario matched"),
        (f"<b>{sent:,}</b>", "messages sent"),
        (f"<b>{suppressed:,}</b>", "held back (rules, policy, control)"),
        (f"<b>{accepted:,}</b>" if feedback else unknown, "offers accepted"),
        (f"<b>{_pct(accepted / sent if sent else None)}</b>" if feedback else unknown, "conversion (accepted ÷ sent)"),
    ]
    card_html = "".join(f"<div class=card>{v}<span>{escape(k)}</span></div>" for v, k in cards)
    answers = ("what subscribers did with them (from the channels' feedback)." if feedback else
               f"what subscribers did with them: unknown, {NO_FEEDBACK} (no <code>feedback</code> event from "
               "the channels or the order system).")
    conversion = ("" if feedback else f" Conversion, control conversion and uplift read n/a: {NO_FEEDBACK}, "
                  "so nothing says who took the offer.")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width,initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head><body>
<h1>{escape(title)}</h1><p class=note>{escape(subtitle)}</p>
<div class=cards>{card_html}</div>
<h2>Messages sent per {"hour" if bucket_hours(series) == 1 else "day"}, by scenario</h2>
<p class=note>Each bar is one {"hour" if bucket_hours(series) == 1 else "day"} of local time (when the message goes
out); colours are scenarios, the one that sent most at the bottom. Hover a bar for the numbers.</p>
{_sends_chart(series, names)}
<h2>From match to conversion</h2>
<p class=note>How many times scenarios matched, how many passed their own rules and the contact policy and were
sent, and {answers}{_unmatched(unmatched, retention_ms)}</p>
{_funnel(rows, feedback)}
<h2>Why matches were not sent</h2>
<p class=note>Amber: the scenario's own rules. Red: the contact policy protecting the subscriber. Purple: the
control group, held out on purpose to measure the real effect.</p>
{_reasons(rows)}
<h2>Per scenario and channel</h2>
<p class=note>Conversion = accepted ÷ sent. Uplift = conversion minus the control group's conversion (control
subscribers who took the offer without being contacted), in percentage points. Held = still waiting for the
policy when the recording ended.{conversion}</p>
{_table(rows, feedback)}
{_groups(groupings, grouped, names)}
</body></html>
"""
