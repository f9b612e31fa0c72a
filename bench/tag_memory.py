"""Bytes per written tag (LANGUAGE.md §9.3): a set-only scenario writing one int tag for N subscribers.

    python -m bench.tag_memory [N]      (default 1000000)

Measured with ``tracemalloc`` around the feed of one ``login`` per subscriber (the events and the
subscribers' numbers are made before, as the rest of the state would hold them), for a value shared
by every subscriber (a constant) and one of its own (an int), and for subscribers with and without
tags from ``tags.jsonl``. docs/performance.md ("Performance") quotes the figures.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

from kairos import dsl
from kairos.engine import Engine, Reference, event_schema, event_types

T0 = 1_795_363_200_000


def measure(text: str, n: int, with_file_tags: bool) -> float:
    """Bytes allocated per subscriber while ``text`` writes its tag for ``n`` subscribers."""
    numbers = [sys.intern(f"138{i:08d}") for i in range(n)]
    tags = {m: {"plan_type": "prepaid", "region": "north"} for m in numbers} if with_file_tags else {}
    reference = Reference(tags=tags)
    plan = dsl.compile_sources([("bench.kairos", text)], event_schema())
    engine = Engine(plan, reference, sink=lambda s: None)
    login = event_types()["login"]
    events = [login(ts=T0 + i, msisdn=m, channel="app") for i, m in enumerate(numbers)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine.feed(events)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(reference.written) == n
    return (after - before) / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for label, text in [("a shared value (constant)", "scenario w when login set tags.n = 1001 end"),
                        ("a value of its own (int)", "scenario w when login as l set tags.n = l.ts + 1 end")]:
        for file_tags in (False, True):
            print(f"{label:26s} subscribers {'with' if file_tags else 'without'} tags.jsonl tags: "
                  f"{measure(text, n, file_tags):6.1f} bytes per written tag ({n:,} subscribers)")


if __name__ == "__main__":
    main()
