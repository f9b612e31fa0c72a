"""How counts read in what Kairos prints for a person: ``1 send``, ``2 sends``, ``1,234,567 events``, ``12.5%``.

One convention for every command's human text (the replay summary, ``--stats``,
the demo, ``explain``): counts with thousands separators and their noun in the
right number, shares as a percentage with one decimal. Machine output (JSON
lines, metrics, log fields) keeps plain numbers.
"""

from __future__ import annotations


def count(n: int, noun: str, plural: str = "") -> str:
    """``n`` with thousands separators and ``noun``, plural (``plural``, or ``noun`` + s) unless ``n`` is 1."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def percent(share: float) -> str:
    """A share (0.125) as a percentage with one decimal (``12.5%``); below 0.1% but not zero, ``<0.1%``."""
    if 0 < share < 0.0005:
        return "<0.1%"
    return f"{100 * share:.1f}%"
