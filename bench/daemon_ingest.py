"""The daemon's ingest path against the bare engine: decode, count by type, event time, engine, outbox submit.

    python -m bench.daemon_ingest [EVENTS] [--no-dedup]     (default 1000000; duplicate skipping on, as by default)

Same input, same machine, both in this process: blocks of 1 000 JSON lines
(W1-like DPI, 200 k subscribers, a count-with-cooldown scenario) through
``Daemon.ingest`` with the outbox's journal replaced by a counter, and
through ``decode_lines`` + ``Engine.feed`` alone. The ratio is what the daemon
adds per event.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from kairos.engine import Engine, Reference, event_union
from kairos._config import load_config
from kairos._daemon import Daemon

T0 = 1_795_363_200_000
SCENARIO = 'scenario video when count(dpi where category == "video") >= 20 within 10m cooldown 60m then sms "v" end\n'


def blocks(n: int) -> list[bytes]:
    rnd = random.Random(1)
    t = T0
    lines = []
    for _ in range(n):
        t += rnd.choice((0, 1, 2))
        lines.append(b'{"type":"dpi","ts":%d,"msisdn":"%d","host":"h.cn","category":"%s"}\n'
                     % (t, 13_800_000_000 + int(rnd.paretovariate(1.2)) % 200_000,
                        rnd.choice((b"video", b"news", b"music", b"shop"))))
    return [b"".join(lines[i:i + 1000]) for i in range(0, n, 1000)]


def main(n: int, dedup: bool = True) -> None:
    data = blocks(n)
    folder = Path(tempfile.mkdtemp())
    (folder / "s").mkdir()
    (folder / "s" / "a.kairos").write_text(SCENARIO)
    (folder / "kairos.toml").write_text('scenarios = "s"\nstate_dir = "st"\n[[sources]]\nkind = "stdin"\n'
                                        '[channels.sms]\nplugin = "file"\npath = "out.jsonl"\n'
                                        f'[dedup]\nenabled = {str(dedup).lower()}\n')
    daemon = Daemon(load_config(folder / "kairos.toml"))
    daemon.outbox.submit = lambda send, **_: True  # the outbox runs in its own task; here only the hot path counts
    started = time.perf_counter()
    for block in data:
        daemon.ingest("bench", block, None)
    ingest = n / (time.perf_counter() - started)
    decoder = msgspec.json.Decoder(event_union())
    engine = Engine(daemon.plan, Reference(), sink=lambda send: None)
    started = time.perf_counter()
    for block in data:
        engine.feed(decoder.decode_lines(block))
    bare = n / (time.perf_counter() - started)
    print(f"daemon ingest {ingest:,.0f} events/s; decode + engine alone {bare:,.0f} events/s; "
          f"ratio {ingest / bare:.2f}; sends {daemon.sends}; duplicate skipping {'on' if dedup else 'off'}")


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 1_000_000, dedup="--no-dedup" not in sys.argv[1:])
