"""The runtime: events, per-subscriber state machines, time, the trigger pipeline, replay.

``Engine`` runs a compiled ``plan.Plan`` over events in event time — synchronous,
no I/O, one handler call per scenario that reads the event's type; each pattern
form's state machine is a module of ``engine.forms``. Around it:
the event family (msgspec Structs decoded from JSON lines), reference data,
local-time arithmetic, the calendar and recency terms of LANGUAGE.md §9.2
(``_periods``: per-subscriber period buckets as shared columns), the contact
policy stage every trigger passes when a policy is loaded, snapshots of all per-subscriber state, ``replay`` which
feeds a recorded file through an engine and writes its sends, and
``replay_workers`` which spreads that over one process per core by a stable
hash of msisdn, and ``replay_partitioned`` which replays a log already split
by subscriber (its partition files) one partition per engine. The engine
imports only ``plan``: delivery (the outbox, its journal and ledger, retries)
lives with the channels in ``adapters``, and the application hands the
engine's sends to it. A public name loads its module when it is first used
(``__getattr__``): what a command does not use, it does not import.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kairos.engine._calendar import duration_text, local_text, range_text
    from kairos.engine._catalogue import (CatalogueError, TypeDesc, builtin_description, catalogue_in_use,
                                          event_table, load_catalogue, use_catalogue)
    from kairos.engine._dedup import Dedup, DedupState
    from kairos.engine._engine import (MAX_TRIGGER_DEPTH, BindError, BuildError, Engine, ScenarioStats, Send, SinkError,
                                      TagValueError, TagWrite)
    from kairos.engine._events import Event, event_schema, event_types, event_union, register_event_type
    from kairos.engine._eventtime import EventTime
    from kairos.engine._faults import fault_place
    from kairos.engine._localtime import DEFAULT_TZ, LocalTime
    from kairos.engine._policy import PolicyStage, in_control
    from kairos.engine._partitioned import replay_partitioned
    from kairos.engine._reference import Reference, ReferenceError, ReferenceNames
    from kairos.engine._replay import (
        EventReader,
        InputProblem,
        Measures,
        OrderedWriter,
        ReplayReport,
        count_newlines,
        replay,
        stderr_problem_printer,
    )
    from kairos.engine._jump_defaults import DEFAULT_MAX_JUMP_MS, JUMP_CONFIRM
    from kairos.engine._settle import Settler, settle
    from kairos.engine._snapshot import RestoreReport, Snapshot, SnapshotError
    from kairos.engine._snapshot import decode as decode_snapshot
    from kairos.engine._snapshot import encode as encode_snapshot
    from kairos.engine._snapshot import restore as restore_snapshot
    from kairos.engine._snapshot import transfer as transfer_state
    from kairos.engine._workers import replay_workers, shard_of

#: each module's public names (``PUBLIC=NAME`` where its name there differs): a name's module is imported at
#: its first use, so ``kairos check`` (``from kairos.engine import Engine``) loads no replay workers or numpy
_MODULES = {
    "_calendar": "duration_text local_text range_text",
    "_catalogue": "CatalogueError TypeDesc builtin_description catalogue_in_use event_table load_catalogue "
                  "use_catalogue",
    "_dedup": "Dedup DedupState",
    "_engine": "MAX_TRIGGER_DEPTH BindError BuildError Engine ScenarioStats Send SinkError TagValueError TagWrite",
    "_events": "Event event_schema event_types event_union register_event_type",
    "_eventtime": "EventTime",
    "_faults": "fault_place",
    "_localtime": "DEFAULT_TZ LocalTime",
    "_policy": "PolicyStage in_control",
    "_partitioned": "replay_partitioned",
    "_reference": "Reference ReferenceError ReferenceNames",
    "_replay": "EventReader InputProblem Measures OrderedWriter ReplayReport count_newlines replay "
               "stderr_problem_printer",
    "_jump_defaults": "DEFAULT_MAX_JUMP_MS JUMP_CONFIRM",
    "_settle": "Settler settle",
    "_snapshot": "RestoreReport Snapshot SnapshotError decode_snapshot=decode encode_snapshot=encode "
                 "restore_snapshot=restore transfer_state=transfer",
    "_workers": "replay_workers shard_of",
}
_EXPORTS = {
    public.partition("=")[0]: (module, public.partition("=")[2] or public)
    for module, names in _MODULES.items()
    for public in names.split()
}


if not TYPE_CHECKING:  # type checkers read the imports above: a name they do not list stays an error

    def __getattr__(name: str) -> Any:
        """Import a public name's module at its first use (PEP 562) and keep the name here."""
        try:
            module, attr = _EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "DEFAULT_MAX_JUMP_MS",
    "DEFAULT_TZ",
    "JUMP_CONFIRM",
    "MAX_TRIGGER_DEPTH",
    "BindError",
    "BuildError",
    "Dedup",
    "DedupState",
    "Engine",
    "Event",
    "EventReader",
    "EventTime",
    "InputProblem",
    "Measures",
    "LocalTime",
    "OrderedWriter",
    "PolicyStage",
    "Reference",
    "ReferenceError",
    "ReferenceNames",
    "ReplayReport",
    "RestoreReport",
    "ScenarioStats",
    "TagValueError",
    "TagWrite",
    "Send",
    "SinkError",
    "Snapshot",
    "SnapshotError",
    "CatalogueError",
    "TypeDesc",
    "builtin_description",
    "catalogue_in_use",
    "event_table",
    "load_catalogue",
    "use_catalogue",
    "count_newlines",
    "decode_snapshot",
    "duration_text",
    "encode_snapshot",
    "event_schema",
    "event_types",
    "event_union",
    "fault_place",
    "in_control",
    "local_text",
    "range_text",
    "register_event_type",
    "replay",
    "settle",
    "Settler",
    "replay_partitioned",
    "replay_workers",
    "restore_snapshot",
    "shard_of",
    "stderr_problem_printer",
    "transfer_state",
]
