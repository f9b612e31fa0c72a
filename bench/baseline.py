"""W1 written by hand, without Kairos: what the engine is measured against.

The program a competent engineer writes for the one scenario of W1

    when count(dpi where category == "video") >= 20 within 10m
    cooldown 60m

with the exact semantics of LANGUAGE.md: the window is [t − 10m, t], both
ends included, this event counted; after a send at t, completions before
t + 60m are suppressed. Per subscriber a deque of the newest 20 video
timestamps (only those can decide ``>= 20``) and the time of the last send.

Two decoders, the same loop: ``json.loads`` into dicts (what most code does)
and a typed msgspec Struct decoded block-wise with one reused decoder (what a
performance-minded engineer does). Both return the sends as (msisdn, ts).

As a whole process, as the bench times it against ``kairos replay``:
``python -m bench.baseline msgspec --events FILE --out SENDS`` writes one JSON
line ``{"msisdn": …, "ts": …}`` per send and, on standard error, the seconds
its loop took (start-up and exit left out).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import IO

import msgspec

THRESHOLD = 20
WINDOW_MS = 10 * 60_000
COOLDOWN_MS = 60 * 60_000
BLOCK_BYTES = 64 * 1024

#: the same scenario in the Kairos language, for the engine's side of the comparison
W1_SCENARIO = """\
scenario video_burst
  title "W1: a burst of video sessions"
  when count(dpi where category == "video") >= 20 within 10m
  cooldown 60m
  then sms "offer.video_pack"
end
"""

Sends = list[tuple[str, int]]


def run_json(lines: Iterable[bytes]) -> Sends:
    """W1 over JSON lines decoded with ``json.loads`` into dicts."""
    windows: dict[str, deque[int]] = {}
    last_send: dict[str, int] = {}
    sends: Sends = []
    loads = json.loads
    for line in lines:
        ev = loads(line)
        if ev.get("type") != "dpi" or ev.get("category") != "video":
            continue
        m = ev["msisdn"]
        t = ev["ts"]
        window = windows.get(m)
        if window is None:
            window = windows[m] = deque(maxlen=THRESHOLD)
        window.append(t)
        if len(window) == THRESHOLD and window[0] >= t - WINDOW_MS:
            last = last_send.get(m)
            if last is None or t >= last + COOLDOWN_MS:
                last_send[m] = t
                sends.append((m, t))
    return sends


class Dpi(msgspec.Struct, tag_field="type", tag="dpi"):
    """The fields W1 reads of a DPI event (others are skipped by the decoder)."""

    ts: int
    msisdn: str
    category: str | None = None


class Other(msgspec.Struct, tag_field="type"):
    """Any other event type: decoded to nothing but its tag."""


def _other_types() -> list[type]:
    names = ("location", "power", "call", "sms", "attach", "usage", "balance", "topup", "login",
             "profile", "feedback", "trigger")
    return [msgspec.defstruct(f"Other_{n}", [], bases=(Other,), tag=n) for n in names]


def run_msgspec(stream: IO[bytes]) -> Sends:
    """W1 over JSON lines decoded block-wise into typed Structs with one reused decoder."""
    decoder = msgspec.json.Decoder(Dpi | _union(_other_types()))  # type: ignore[operator]
    decode_lines = decoder.decode_lines
    windows: dict[str, deque[int]] = {}
    last_send: dict[str, int] = {}
    sends: Sends = []
    while True:
        block = stream.readlines(BLOCK_BYTES)
        if not block:
            return sends
        for ev in decode_lines(b"".join(block)):
            if ev.__class__ is not Dpi or ev.category != "video":
                continue
            m = ev.msisdn
            t = ev.ts
            window = windows.get(m)
            if window is None:
                window = windows[m] = deque(maxlen=THRESHOLD)
            window.append(t)
            if len(window) == THRESHOLD and window[0] >= t - WINDOW_MS:
                last = last_send.get(m)
                if last is None or t >= last + COOLDOWN_MS:
                    last_send[m] = t
                    sends.append((m, t))


def _union(types: list[type]) -> object:
    out: object = types[0]
    for t in types[1:]:
        out = out | t  # type: ignore[operator]
    return out


def checksum(sends: Iterable[tuple[str, int]]) -> str:
    """An order-independent fingerprint of a set of sends: BLAKE2b over the sorted pairs."""
    h = hashlib.blake2b(digest_size=12)
    for m, t in sorted(sends):
        h.update(f"{m}:{t}\n".encode())
    return h.hexdigest()


class SendLine(msgspec.Struct, frozen=True):
    """What the checksum reads of a send line, a hand-written loop's or ``kairos replay``'s."""

    msisdn: str
    ts: int


def read_sends(data: bytes) -> Sends:
    """The (msisdn, ts) of every send in a JSON-lines sends file (other fields are skipped)."""
    return [(s.msisdn, s.ts) for s in msgspec.json.Decoder(SendLine).decode_lines(data)]


def main(argv: Sequence[str] | None = None) -> int:
    """W1 by hand as a whole process: read ``--events``, write the sends to ``--out`` as JSON lines."""
    p = argparse.ArgumentParser(prog="python -m bench.baseline", description=main.__doc__)
    p.add_argument("loop", choices=("json", "msgspec"))
    p.add_argument("--events", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    with open(a.events, "rb") as f:
        sends = run_json(f) if a.loop == "json" else run_msgspec(f)
    encode = msgspec.json.Encoder().encode
    with open(a.out, "wb") as out:
        out.writelines(encode(SendLine(m, t)) + b"\n" for m, t in sends)
    print(f"bench.baseline {a.loop}: {len(sends):,} sends ({time.perf_counter() - t0:.3f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
