"""``kairos demo``: generated days, the bundled catalogue, what was sent and why.

Everything is embedded: the traffic generator (``kairos.traffic``) writes
synthetic days (``--days``, from Monday 23 November 2026) and their reference
data into a temporary folder, the catalogue in
``scenarios/`` runs over it, and the result is printed as a per-scenario table
plus a few example sends — rendered from ``scenarios/templates.toml`` — with
the subscriber's events that led to them (``kairos._demo_report``).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kairos import dsl, traffic
from kairos._compile import compile_plan
from kairos._demo_report import print_examples, print_table, print_tag_writes
from kairos._progress import progress
from kairos._words import count
from kairos.adapters import TemplateCatalog, TemplateError
from kairos.engine import DEFAULT_TZ, Engine, LocalTime, Reference, Send, TagWrite, replay

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEMO_DAY = "2026-11-23"


def run_demo(subscribers: int, hours: float, seed: int, examples: int) -> int:
    """Generate, replay, summarise; returns the exit status."""
    if not SCENARIOS.is_dir():
        print(f"kairos demo: the scenario catalogue is not at {SCENARIOS}; run it from a checkout", file=sys.stderr)
        return 2
    if subscribers < 1 or hours <= 0:
        print("kairos demo: --subscribers and --hours must be positive", file=sys.stderr)
        return 2
    clock = LocalTime(DEFAULT_TZ)
    start_ms = clock.to_utc(int(dt.datetime.fromisoformat(DEMO_DAY).replace(tzinfo=dt.timezone.utc).timestamp() * 1000))
    files = sorted(SCENARIOS.glob("*.kairos"))  # the scenarios and the operator's contact policy
    try:
        plan = compile_plan(files)
    except dsl.CheckError as e:
        print(str(e), file=sys.stderr)
        return 1
    catalog = None
    if (SCENARIOS / "templates.toml").is_file():
        try:
            catalog = TemplateCatalog.load(SCENARIOS / "templates.toml")
        except TemplateError as e:
            print(f"kairos demo: {e}; example sends are shown without their text", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="kairos-demo-") as tmp:
        root = Path(tmp)
        days = hours / 24 if hours % 24 == 0 else None
        span = ("a day" if days == 1 else f"{days:g} days" if days is not None
                else f"{hours:g} hour{'s' * (hours != 1)}")
        whom = count(subscribers, "subscriber")
        print(f"Generating {span} of traffic for {whom} (seed {seed}) ...")
        t0 = time.perf_counter()
        traffic.make_reference(root / "reference", subscribers, seed, start_ms)
        traffic.write(root / "events.jsonl", subscribers=subscribers, hours=hours, seed=seed,
                      start_ms=start_ms, mix="province")
        gen_s = time.perf_counter() - t0
        reference = Reference.load(root / "reference")
        sends: list[Send] = []
        writes: list[TagWrite] = []  # a few per subscriber and week: the weekly life-circle tags
        engines: list[Engine] = []

        def make(sink: Any) -> Engine:
            def both(send: Send) -> None:
                sends.append(send)
                sink(send)

            engines.append(Engine(plan, reference, sink=both, measure=True, tag_sink=writes.append))
            return engines[0]

        policy = " under the contact policy" if plan.policy is not None else ""
        print(f"Running the {count(len(plan.scenarios), 'scenario')} of {SCENARIOS.name}/ over it{policy} ...")
        t1 = time.perf_counter()
        with open(root / "events.jsonl", "rb") as events, open(root / "sends.jsonl", "wb") as out:
            bar = progress("demo", events)  # a progress line on standard error, if it is a terminal
            try:
                report = replay(make, events, out, progress=bar)
            finally:
                if bar is not None:
                    bar.close()
        run_s = time.perf_counter() - t1
        print(
            f"  {count(report.events, 'event')} generated in {gen_s:.1f} s, replayed in {run_s:.1f} s "
            f"({report.events / max(run_s, 1e-9):,.0f} events/s); {count(report.sends, 'send')}\n"
        )
        print_table(plan, engines[0], sends, subscribers, int(hours * 3_600_000), start_ms, clock)
        print_tag_writes(writes, clock)
        print_examples(plan, sends, root / "events.jsonl", Reference.load(root / "reference"), clock,
                       examples, catalog)
    print("The same traffic, to replay yourself (a changed scenario, another seed):")
    length = f"--days {hours // 24:g}" if hours % 24 == 0 else f"--hours {hours:g}"
    print(f"  python -m kairos.traffic --mix province --subscribers {subscribers} {length} --seed {seed} "
          "--out day.jsonl --reference ref/")
    print("  kairos replay --scenarios scenarios --events day.jsonl --reference ref/ --out sends.jsonl")
    return 0
