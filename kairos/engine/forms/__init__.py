"""The pattern forms of LANGUAGE.md §2, one module each: the per-subscriber state machines.

Each form's module owns everything about it: the runtime built once per scenario
from its compiled ``plan`` pattern (shared by every subscriber), the compact
per-subscriber state it keeps, the form a snapshot stores that state in, and its
fast path (text a route pastes in place of a call). ``filter`` is the single-event
form, then ``sequence``, ``absence``, ``aggregate`` (count, sum, distinct),
``dwell`` and ``schedule`` (LANGUAGE.md §9.1); ``base`` holds what they share
(``PatternRuntime``, the ``Host`` they call back, kept state made small). A new form is a module here and a line in
``build_runtime``.
"""

from __future__ import annotations

from kairos.engine.forms.absence import AbsenceRuntime, PackedWaits, Waiting, kept_fields
from kairos.engine.forms.aggregate import AggregateRuntime
from kairos.engine.forms.base import Host, PatternRuntime
from kairos.engine.forms.dwell import DwellRuntime
from kairos.engine.forms.filter import FilterRuntime
from kairos.engine.forms.schedule import ScheduleRuntime, Sweep
from kairos.engine.forms.sequence import SequenceRuntime
from kairos.plan import Absence, Aggregate, Dwell, Pattern, Scenario, Schedule, Sequence, Single

__all__ = [
    "AbsenceRuntime",
    "AggregateRuntime",
    "DwellRuntime",
    "FilterRuntime",
    "Host",
    "PackedWaits",
    "PatternRuntime",
    "ScheduleRuntime",
    "SequenceRuntime",
    "Sweep",
    "Waiting",
    "build_runtime",
    "kept_fields",
]


def build_runtime(index: int, host: Host, pattern: Pattern, scenario: Scenario | None = None) -> PatternRuntime:
    """The state machine for a compiled pattern; ``scenario`` names the generated code and (its
    other expressions) lets an absence keep only what they read of its first event."""
    name = "" if scenario is None else scenario.name
    if isinstance(pattern, Single):
        return FilterRuntime(index, host, pattern)
    if isinstance(pattern, Sequence):
        return SequenceRuntime(index, host, pattern)
    if isinstance(pattern, Absence):
        return AbsenceRuntime(index, host, pattern, None if scenario is None else kept_fields(scenario), name)
    if isinstance(pattern, Aggregate):
        return AggregateRuntime(index, host, pattern, name)
    if isinstance(pattern, Dwell):
        return DwellRuntime(index, host, pattern)
    if isinstance(pattern, Schedule):
        return ScheduleRuntime(index, host, pattern)
    raise TypeError(f"unknown pattern {type(pattern).__name__}")
