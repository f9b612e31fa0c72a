"""The collector and the engine's state: what lived through some events is long-lived, out of its walk."""

from __future__ import annotations

import gc

#: events between two ``settle()`` calls (``Settler``)
SETTLE_EVENTS = 20_000


def settle() -> None:
    """What is alive now is long-lived: move it out of the garbage collector's walk.

    The engine keeps its state in objects that reference counting frees and
    that form no cycles (tests/bench/test_live.py checks the catalogue), so a
    full collection over a million subscribers' state and tags finds nothing
    and costs a tenth of a replay. ``gc.freeze()`` takes what exists out of
    every later collection (it is still freed when unreferenced); replays and
    the daemon call it after loading and then every ``SETTLE_EVENTS`` events (``Settler``).
    """
    gc.freeze()


class Settler:
    """Calls ``settle()`` once every ``every`` events it is told of: a full collection
    then walks at most the state those events made, not a million subscribers'."""

    __slots__ = ("_every", "_left")

    def __init__(self, every: int = SETTLE_EVENTS) -> None:
        self._every = every
        self._left = every

    def tick(self, events: int) -> None:
        self._left -= events
        if self._left <= 0:
            self._left = self._every
            settle()
