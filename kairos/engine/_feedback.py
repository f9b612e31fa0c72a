"""What was decided for each trigger id, kept only as long as a ``feedback`` can still be joined to it.

Channels answer a send with ``feedback`` events naming its trigger id; the
policy stage joins them to what it decided (scenario, channel, template,
control or not) for measurement and ``no_repeat``. A daemon decides millions
of sends a week, so a record is kept for a retention after its send time —
``feedback within D`` in the policy, by default the ``no_repeat`` window or
30 days, whichever is longer — and dropped in event time through the engine's
``watch``: records are grouped by the hour their retention ends, one watch per
hour, so pruning costs one step per dropped record, whatever the number of
subscribers. A feedback after the retention (or for an id never decided) is
not joined; the stage counts it as ``unmatched_feedback``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from kairos.plan import Policy

#: the retention without a ``feedback within`` rule (or a longer ``no_repeat``)
DEFAULT_FEEDBACK_MS = 30 * 86_400_000

#: records whose retention ends in the same hour are dropped together
BUCKET_MS = 3_600_000


def feedback_retention(policy: Policy | None) -> int:
    """How long after its send a feedback can be joined: ``feedback within D``, else
    the ``no_repeat`` window or 30 days, whichever is longer.

    The default covers ``no_repeat``: an answer that comes late still blocks the
    template for as long as ``no_repeat`` would block it after an early one.
    """
    if policy is not None and policy.feedback_within_ms is not None:
        return policy.feedback_within_ms
    no_repeat = 0 if policy is None or policy.no_repeat is None else policy.no_repeat.for_ms
    return max(no_repeat, DEFAULT_FEEDBACK_MS)


class Record(msgspec.Struct, gc=False):
    """What was decided for a trigger id, for joining feedback.

    Scalar-only and long-lived (a month of sends), so ``gc=False``: the cyclic
    garbage collector never walks the records.
    """

    index: int
    channel: str
    template: str
    msisdn: str
    control: bool
    seen: int = 0  # bit per outcome already counted
    until: int = 0  # the last time (ms, inclusive) a feedback can be joined


class Records:
    """Trigger id → ``Record``, each dropped once its retention has passed.

    ``watch(when, owner, key)`` is the engine's: it calls ``owner.collect(key, now)``
    once event time has passed ``when``.
    """

    def __init__(self, retention_ms: int, watch: Callable[[int, Any, str], None]) -> None:
        self.retention_ms = retention_ms
        self.by_id: dict[str, Record] = {}
        self._due: dict[int, list[str]] = {}  # hour in which the retention ends → ids
        self._watch = watch

    def add(self, trigger_id: str, record: Record, sent_at: int) -> None:
        """Keep ``record`` until ``sent_at`` + the retention."""
        record.until = until = sent_at + self.retention_ms
        hour = until // BUCKET_MS
        ids = self._due.get(hour)
        if ids is None:
            ids = self._due[hour] = []
            self._watch((hour + 1) * BUCKET_MS - 1, self, str(hour))
        ids.append(trigger_id)
        self.by_id[trigger_id] = record

    def find(self, trigger_id: str, ts: int) -> Record | None:
        """The record a feedback at ``ts`` joins; None for an unknown or expired id."""
        record = self.by_id.get(trigger_id)
        if record is None or ts > record.until:
            return None
        return record

    def collect(self, hour: str, now: int) -> None:
        """The engine's watch: drop the records whose retention ended in ``hour``."""
        by_id = self.by_id
        for trigger_id in self._due.pop(int(hour), ()):
            record = by_id.get(trigger_id)
            if record is not None and record.until < now:
                del by_id[trigger_id]
