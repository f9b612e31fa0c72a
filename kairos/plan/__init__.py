"""The plan: the frozen, versioned contract between the scenario language and the engine.

``dsl`` compiles scenario files into a ``Plan``; ``engine`` runs it. This package
imports nothing else of the project (a test keeps it so): plain msgspec Structs
for scenarios, patterns, actions and the policy, expressions already compiled to
Python functions, the event schema the checker validates against, the pure
helpers compiled expressions call, and ``define``, the one way generated
Python becomes a function (``places`` maps a traceback through it back to the
scenario's lines).
"""

from kairos.plan._model import (
    PLAN_VERSION,
    Absence,
    Action,
    Aggregate,
    Cap,
    Capacity,
    Comparison,
    Control,
    During,
    Dwell,
    EventSchema,
    Exclusive,
    Expr,
    FieldSpec,
    FieldType,
    Filter,
    Hours,
    LAST_DAY,
    NameUse,
    NoRepeat,
    Origin,
    PERIOD_LIMITS,
    Pattern,
    PeriodKind,
    Plan,
    Policy,
    Quiet,
    Scenario,
    Schedule,
    Sequence,
    Single,
    TagSet,
    Term,
    TimeRange,
)
from kairos.plan._generated import at, define, filename, lines_from, place, places
from kairos.plan._runtime import NAMESPACE, NOPREV, Context
from kairos.plan._runtime import eq as eq_values

__all__ = [
    "PLAN_VERSION",
    "NAMESPACE",
    "NOPREV",
    "Absence",
    "Action",
    "Aggregate",
    "Cap",
    "Capacity",
    "Comparison",
    "Context",
    "Control",
    "During",
    "Dwell",
    "EventSchema",
    "Exclusive",
    "Expr",
    "FieldSpec",
    "FieldType",
    "Filter",
    "Hours",
    "LAST_DAY",
    "NameUse",
    "NoRepeat",
    "Origin",
    "PERIOD_LIMITS",
    "Pattern",
    "PeriodKind",
    "Plan",
    "Policy",
    "Quiet",
    "Scenario",
    "Schedule",
    "Sequence",
    "Single",
    "TagSet",
    "Term",
    "TimeRange",
    "at",
    "define",
    "eq_values",
    "filename",
    "lines_from",
    "place",
    "places",
]
