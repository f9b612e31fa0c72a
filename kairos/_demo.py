"""``kairos demo``: a generated day, the bundled catalogue, what was sent and why.

Everything is embedded: the traffic generator writes a synthetic day and its
reference data into a temporary folder, the catalogue in ``scenarios/`` runs
over it, and the result is printed as a per-scenario table plus a few example
sends with the subscriber's events that led to them.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from engine import Engine, Reference, Send, replay
from engine._events import event_union
from engine._localtime import DEFAULT_TZ, LocalTime
from plan import Absence, Aggregate, Dwell, Plan, Scenario, Sequence

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEMO_DAY = "2026-11-23"


def run_demo(subscribers: int, hours: float, seed: int, examples: int) -> int:
    """Generate, replay, summarise; returns the exit status."""
    from bench import traffic
    from kairos._cli import compile_plan

    if not SCENARIOS.is_dir():
        print(f"kairos demo: the scenario catalogue is not at {SCENARIOS}; run it from a checkout")
        return 2
    clock = LocalTime(DEFAULT_TZ)
    start_ms = clock.to_utc(int(dt.datetime.fromisoformat(DEMO_DAY).replace(tzinfo=dt.timezone.utc).timestamp() * 1000))
    plan = compile_plan([p for p in sorted(SCENARIOS.glob("*.kairos")) if p.name != "policy.kairos"])
    with tempfile.TemporaryDirectory(prefix="kairos-demo-") as tmp:
        root = Path(tmp)
        print(f"Generating a day of traffic for {subscribers:,} subscribers (seed {seed}) ...")
        t0 = time.perf_counter()
        traffic.make_reference(root / "reference", subscribers, seed)
        traffic.write(root / "events.jsonl", subscribers=subscribers, hours=hours, seed=seed,
                      start_ms=start_ms, mix="province")
        gen_s = time.perf_counter() - t0
        reference = Reference.load(root / "reference")
        sends: list[Send] = []
        engines: list[Engine] = []

        def make(sink: Any) -> Engine:
            def both(send: Send) -> None:
                sends.append(send)
                sink(send)

            engines.append(Engine(plan, reference, sink=both))
            return engines[0]

        t1 = time.perf_counter()
        with open(root / "events.jsonl", "rb") as events, open(root / "sends.jsonl", "wb") as out:
            report = replay(make, events, out)
        run_s = time.perf_counter() - t1
        print(
            f"  {report.events:,} events generated in {gen_s:.1f} s, replayed in {run_s:.1f} s "
            f"({report.events / max(run_s, 1e-9):,.0f} events/s); {report.sends:,} sends\n"
        )
        _print_table(plan, engines[0])
        _print_examples(plan, sends, root / "events.jsonl", clock, examples)
    return 0


def _print_table(plan: Plan, engine: Engine) -> None:
    rows = [("scenario", "matched", "sent", "suppressed")]
    for scn, st in zip(plan.scenarios, engine.stats):
        why = ", ".join(f"{k} {v:,}" for k, v in sorted(st.suppressed.items())) or "-"
        rows.append((scn.name, f"{st.matched:,}", f"{st.triggered:,}", why))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for n, r in enumerate(rows):
        print(f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
        if n == 0:
            print("  " + "-" * (sum(widths) + 4 + 12))
    print()


def _window(scn: Scenario) -> int:
    p = scn.pattern
    if isinstance(p, (Sequence, Absence, Aggregate)):
        return p.within_ms
    if isinstance(p, Dwell):
        return p.for_ms
    return 0


def _print_examples(plan: Plan, sends: list[Send], events_path: Path, clock: LocalTime, n: int) -> None:
    by_name = {s.name: s for s in plan.scenarios}
    chosen: list[Send] = []
    seen: set[str] = set()
    for s in sends:
        if s.scenario not in seen:
            seen.add(s.scenario)
            chosen.append(s)
        if len(chosen) == n:
            break
    if not chosen:
        print("No sends: nothing in this day matched a scenario.")
        return
    wanted = {(s.msisdn) for s in chosen}
    history: dict[str, list[Any]] = {m: [] for m in wanted}
    decoder = msgspec.json.Decoder(event_union())
    with open(events_path, "rb") as f:
        for line in f:
            if any(m.encode() in line for m in wanted):
                ev = decoder.decode(line)
                if ev.msisdn in history:
                    history[ev.msisdn].append(ev)
    print("Example sends, with the subscriber's events that led to them:\n")
    for s in chosen:
        scn = by_name[s.scenario]
        when = _fmt(clock, s.ts)
        params = ", ".join(f"{k}={v}" for k, v in s.params.items())
        print(f"  {when}  {s.channel} \"{s.template}\" to {s.msisdn}  [{s.scenario}] {scn.title}")
        if params:
            print(f"      with {params}")
        types = scn.event_types
        lo = s.ts - _window(scn)
        cause = [e for e in history[s.msisdn] if lo <= e.ts <= s.ts and e.__struct_config__.tag in types]
        for e in cause[-6:]:
            print(f"      {_fmt(clock, e.ts)}  {_describe(e)}")
        if len(cause) > 6:
            print(f"      … and {len(cause) - 6} earlier events in the window")
        print()


def _fmt(clock: LocalTime, ts: int) -> str:
    local = clock.local_ms(ts)
    return dt.datetime.fromtimestamp(local / 1000, dt.timezone.utc).strftime("%H:%M:%S")


def _describe(e: Any) -> str:
    fields = msgspec.structs.asdict(e)
    fields.pop("ts")
    fields.pop("msisdn")
    tag = e.__struct_config__.tag
    body = " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, "none", False, 0))
    return f"{tag:<9} {body}"
