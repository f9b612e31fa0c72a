"""The traffic generator: synthetic operator events as JSON lines, deterministic from a seed.

Two mixes. ``province`` is a realistic day of mixed traffic for N subscribers
(commuting, dwell in named areas, DPI, calls, SMS, billing, logins, device
changes, tag changes), shaped so every catalogue scenario finds a few
subscribers who really do what it looks for and many who nearly do. ``w1`` is
the benchmark workload W1: DPI only, Zipf 1.2 subscriber activity, about a
quarter video. ``make_reference`` writes the matching reference folder.
Province days follow one another: billing carries over, the value-added
services' use changes from month to month and bills fall due
(``kairos.traffic._accounts``), so a span of months feeds the calendar
scenarios (the monthly silent / low-use model reads three calendar months).

Everything is numpy columns written by a vectorised JSON-lines formatter, so
10 M events take seconds, not minutes. Usage::

    python -m kairos.traffic --mix province --subscribers 3000 --hours 24 --seed 7 \\
        --out day.jsonl --reference ref/
    python -m kairos.traffic --mix province --subscribers 3000 --days 72 --start 2026-09-21 \\
        --out months.jsonl --reference ref/
    python -m kairos.traffic --mix w1 --subscribers 1000000 --events 10000000 --out w1.jsonl
    python -m kairos.traffic --subscribers 500 --hours 24 --start now --out events.jsonl --reference ref/
    python -m kairos.traffic --subscribers 500 --hours 1 --live --out events.jsonl   # as its time comes
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import orjson

from kairos.traffic._columns import NUMS, TEXTS, Columns, EventBuilder
from kairos.traffic._jsonl import Table
from kairos.traffic._live import wall_ms, write_paced
from kairos.traffic._population import DEFAULT_START_MS, LISTS, LOCAL, REFERENCE, Population, check_subscribers, msisdn
from kairos.traffic._province import generate
from kairos.traffic._texts import HOST_PREFIXES, kb_rows

__all__ = ["DEFAULT_START_MS", "MIXES", "make_reference", "write", "main"]

MIXES = ("province", "w1")
HOUR_MS = 3_600_000
W1_BLOCK = 1 << 19  # W1 events drawn per slice of time (part of what the seed determines)

#: share of DPI records per category (before the subscriber's own taste)
CATEGORY_MIX = {
    "social": 0.22, "short_video": 0.20, "video": 0.13, "news": 0.08, "shopping": 0.08,
    "search": 0.07, "music": 0.06, "game": 0.05, "navigation": 0.04, "sports": 0.02,
    "travel": 0.012, "handset_news": 0.01, "operator": 0.008,
}
# --- reference ---------------------------------------------------------------


def make_reference(folder: str | Path, subscribers: int, seed: int, start_ms: int = DEFAULT_START_MS) -> None:
    """Write the reference folder of the generated subscribers (LANGUAGE.md §7).

    The city map, knowledge base and peer-number lists are copied from
    ``scenarios/reference``; ``tags.jsonl`` and the subscriber lists are
    generated for ``subscribers`` subscribers from ``seed``, as the traffic is.
    Date tags (``contract_end``, ``bill_due``) are as of ``start_ms``, the
    traffic's first day: pass the traffic's own.
    """
    root = Path(folder)
    (root / "lists").mkdir(parents=True, exist_ok=True)
    for name in ("cells.csv", "kb.csv"):
        shutil.copyfile(REFERENCE / name, root / name)
    for name in ("customer_service", "competitor_hotlines"):
        shutil.copyfile(REFERENCE / "lists" / f"{name}.txt", root / "lists" / f"{name}.txt")
    pop = Population(subscribers, seed, start_ms)
    with open(root / "tags.jsonl", "wb") as f:
        f.writelines(
            orjson.dumps({"msisdn": msisdn(i), "tags": pop.tags(i)}, option=orjson.OPT_APPEND_NEWLINE)
            for i in range(pop.n)
        )
    for name in LISTS:
        members = np.flatnonzero(pop.lists[name])
        with open(root / "lists" / f"{name}.txt", "w", encoding="utf-8") as f:
            f.writelines(f"{msisdn(int(i))}\n" for i in members)


# --- W1 ----------------------------------------------------------------------


def zipf_ranks(rng: np.random.Generator, subscribers: int, size: int, exponent: float) -> np.ndarray:
    """``size`` draws of a rank 0…subscribers-1 with P(rank r) ∝ (r + 1) ** -exponent."""
    weights = np.arange(1, subscribers + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), subscribers - 1)


def _w1_chunks(
    subscribers: int, events: int, hours: float, seed: int, start_ms: int, video_share: float,
    exponent: float,
) -> Iterator[Columns]:
    rng = np.random.default_rng([seed, 3])
    table = Table()
    empty = table.code(b"")
    rows = kb_rows()
    video = [r for r in rows if r[2] == "video"]
    other = [r for r in rows if r[2] != "video" and r[2] in CATEGORY_MIX]

    def hosts(group: list[tuple[str, str, str]]) -> tuple[np.ndarray, np.ndarray]:
        codes, weights = [], []
        share = {c: CATEGORY_MIX[c] / sum(1 for r in group if r[2] == c) for _, _, c in group}
        for pattern, app, category in group:
            for prefix in HOST_PREFIXES:
                codes.append(table.code(
                    f'","host":"{prefix}{pattern}","app":"{app}","category":"{category}","bytes":'
                ))
                weights.append(share[category])
        w = np.array(weights)
        return np.array(codes, dtype=np.int32), np.cumsum(w / w.sum())

    video_codes, video_cdf = hosts(video)
    other_codes, other_cdf = hosts(other)
    dur = table.code(',"duration_s":')
    end = table.code("}\n")
    perm = rng.permutation(subscribers)  # the heaviest users are not simply the first numbers
    span = max(1, int(hours * HOUR_MS))
    parts = max(1, math.ceil(events / W1_BLOCK))
    for k in range(parts):
        n = events // parts + (1 if k < events % parts else 0)
        lo = start_ms + span * k // parts
        hi = start_ms + span * (k + 1) // parts
        ts = np.sort(rng.integers(lo, max(hi, lo + 1), n))
        sub = perm[zipf_ranks(rng, subscribers, n, exponent)]
        is_video = rng.random(n) < video_share
        text = np.where(
            is_video,
            video_codes[np.minimum(np.searchsorted(video_cdf, rng.random(n)), len(video_codes) - 1)],
            other_codes[np.minimum(np.searchsorted(other_cdf, rng.random(n)), len(other_codes) - 1)],
        )
        size = np.where(is_video, rng.lognormal(np.log(3e6), 0.8, n), rng.lognormal(np.log(4e4), 1.2, n))
        secs = np.where(is_video, rng.integers(10, 300, n), rng.integers(1, 60, n))
        kind = np.full(n, table.code('{"type":"dpi","ts":'), dtype=np.int32)
        texts: list[np.ndarray | int] = [text, dur, end] + [empty] * (TEXTS - 3)
        nums: list[np.ndarray | int] = [size.astype(np.int64), secs.astype(np.int64)] + [-1] * (NUMS - 2)
        yield Columns(table, ts, sub.astype(np.int64), kind, texts, nums)


# --- province ----------------------------------------------------------------


def _province(subscribers: int, hours: float, seed: int, start_ms: int, from_hour: float) -> Columns:
    table = Table()
    lo = start_ms + int(from_hour * HOUR_MS)
    builder = EventBuilder(table, lo, lo + int(hours * HOUR_MS))
    population = Population(subscribers, seed, start_ms)
    generate(builder, population, np.random.default_rng([seed, 2]), start_ms, from_hour + hours)
    return builder.sorted_columns()


# --- writing -----------------------------------------------------------------


def write(
    path: str | Path,
    *,
    subscribers: int,
    hours: float = 24.0,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
    mix: str = "province",
    events: int | None = None,
    video_share: float = 0.25,
    zipf: float = 1.2,
    from_hour: float = 0.0,
    live: bool = False,
) -> int:
    """Generate a mix and write it as JSON lines sorted by ts; returns the number of events.

    ``live``: append to ``path`` and write each event only once the wall clock reaches its ts
    (``kairos.traffic._live``), as a live feed would bring it.

    ``events`` is the number of events of ``w1`` (default 10 per subscriber);
    ``province`` produces what ``subscribers`` do in ``hours`` from ``start_ms``
    (local midnight, for the daily rhythm) plus ``from_hour`` — e.g.
    ``from_hour=20, hours=1`` is the evening peak.
    """
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}: choose one of {', '.join(MIXES)}")
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    if from_hour < 0:
        raise ValueError(f"from_hour must be >= 0, got {from_hour}")
    check_subscribers(subscribers)
    to_stdout = str(path) == "-"
    out = sys.stdout.buffer if to_stdout else open(path, "ab" if live else "wb")
    try:
        if mix == "w1":
            total = events if events is not None else 10 * subscribers
            if total < 0:
                raise ValueError(f"events must be >= 0, got {total}")
            parts: Iterable[Columns] = _w1_chunks(subscribers, total, hours, seed, start_ms + int(from_hour * HOUR_MS),
                                                  video_share, zipf)
        else:
            parts = [_province(subscribers, hours, seed, start_ms, from_hour)]
        if live:
            return write_paced(parts, out)
        n = 0
        for cols in parts:
            cols.write(out)
            n += len(cols)
        return n
    finally:
        if to_stdout:
            out.flush()
        else:
            out.close()


NOW = "now"  #: ``--start now``: the span ends at the current time (see ``span_ending_now``)


def _start(text: str) -> int | str:
    """``--start``: a local (UTC+8) day's midnight in epoch ms, or ``now``."""
    if text.strip().lower() == NOW:
        return NOW
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as e:
        why = "" if str(e).startswith("Invalid isoformat") else f" ({e})"
        raise argparse.ArgumentTypeError(
            f"expected a date YYYY-MM-DD (e.g. 2026-11-23) or 'now', got {text!r}{why}") from None
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL)
    return int(midnight.timestamp() * 1000)


def local_span(begin_ms: int) -> tuple[int, float]:
    """(start_ms, from_hour) of a span that begins at ``begin_ms``, as ``write`` takes them: the local
    midnight of its first day (the province mix's daily rhythm and the reference's dates hang on it) and
    the hours from that midnight."""
    day = dt.datetime.fromtimestamp(begin_ms / 1000, LOCAL).date()
    midnight = int(dt.datetime(day.year, day.month, day.day, tzinfo=LOCAL).timestamp() * 1000)
    return midnight, (begin_ms - midnight) / HOUR_MS


def span_ending_now(hours: float, now_ms: int | None = None) -> tuple[int, float]:
    """(start_ms, from_hour) of a span of ``hours`` that ends at ``now_ms`` (default: the wall clock).

    Traffic that ends now is what a daemon started next can read: its time follows the wall clock once
    its input is idle, so nothing in it is late, and nothing is ahead of the wall clock.
    """
    now = wall_ms() if now_ms is None else now_ms
    return local_span(now - int(hours * HOUR_MS))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kairos.traffic``: write a mix (and its reference folder)."""
    p = argparse.ArgumentParser(
        prog="python -m kairos.traffic",
        description="Write synthetic operator events as JSON lines, deterministic from --seed.",
    )
    p.add_argument("--mix", choices=MIXES, default="province")
    p.add_argument("--subscribers", type=int, default=3000)
    span = p.add_mutually_exclusive_group()
    span.add_argument("--hours", type=float, default=None,
                      help="time span (default: 24 for province, 1 for w1)")
    span.add_argument("--days", type=int, default=None,
                      help="time span in whole days from --start's midnight (province: e.g. --days 72 --start "
                      "2026-09-21 reaches 1 December with the three calendar months before it, which the "
                      "monthly silent / low-use model reads); with --start now, whole days ending now")
    p.add_argument("--events", type=int, default=None, help="w1: number of events (default 10 per subscriber)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", type=_start, default=None, metavar="YYYY-MM-DD|now",
                   help="the local (UTC+8) day the traffic starts at midnight (default 2026-11-23); 'now': the "
                   "span (--hours, --days) ends at the current time instead, so a daemon started next reads "
                   "it as recent history, none of it late or ahead of the wall clock (not byte-reproducible; a daemon "
                   "already running calls past events late: feed it --live)")
    p.add_argument("--from-hour", type=float, default=None,
                   help="province: start this many hours after midnight (20: the evening peak)")
    p.add_argument("--video-share", type=float, default=0.25, help="w1: share of video DPI")
    p.add_argument("--zipf", type=float, default=1.2, help="w1: Zipf exponent of subscriber activity")
    p.add_argument("--live", action="store_true",
                   help="the span starts now and each event is written (appended to --out, flushed) once the "
                   "wall clock reaches its ts, so a daemon following the file receives a live feed; Ctrl-C stops")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="events file ('-': standard output); --live appends to it")
    p.add_argument("--reference", metavar="DIR", help="also write the reference folder here")
    args = p.parse_args(argv)
    if args.events is not None and args.mix != "w1":
        p.error("--events applies to --mix w1 only (province traffic follows from --subscribers and --hours)")
    if args.days is not None and args.days < 1:
        p.error(f"--days must be 1 or more, got {args.days}")
    hours = (24.0 * args.days if args.days is not None else args.hours if args.hours is not None
             else 1.0 if args.mix == "w1" else 24.0)
    from_hour = 0.0 if args.from_hour is None else args.from_hour
    start = DEFAULT_START_MS if args.start is None else args.start
    if args.live and args.start is not None:
        p.error("--live starts the span at the current time: leave out --start")
    if start == NOW or args.live:
        if args.from_hour is not None:
            p.error(f"--from-hour does not apply with {'--live' if args.live else '--start now'} "
                    "(the span is placed at the current time)")
        if hours <= 0:
            p.error(f"--hours must be positive, got {hours:g}")
        start, from_hour = local_span(wall_ms()) if args.live else span_ending_now(hours)
    assert isinstance(start, int)
    t0 = time.perf_counter()
    if args.live:
        print(f"writing {hours:g} h of {args.mix} traffic for {args.subscribers:,} subscribers to {args.out} as "
              "its time comes (Ctrl-C to stop)", file=sys.stderr)
    try:
        if args.reference:
            make_reference(args.reference, args.subscribers, args.seed, start)
        n = write(args.out, subscribers=args.subscribers, hours=hours, seed=args.seed, start_ms=start,
                  mix=args.mix, events=args.events, video_share=args.video_share, zipf=args.zipf,
                  from_hour=from_hour, live=args.live)
    except ValueError as e:
        p.error(str(e))
    except KeyboardInterrupt:
        print("stopped (Ctrl-C): the events written so far are whole lines", file=sys.stderr)
        return 130
    took = time.perf_counter() - t0
    whom = f"{args.subscribers:,} subscriber{'s' * (args.subscribers != 1)}"
    print(f"{n:,} {args.mix} event{'s' * (n != 1)} for {whom} over {hours:g} h "
          f"in {took:.1f} s ({n / max(took, 1e-9):,.0f} events/s)", file=sys.stderr)
    return 0
