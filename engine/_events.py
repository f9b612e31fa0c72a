"""The event family: one msgspec Struct per type, decoded straight from JSON lines.

Every event has ``type`` (the tag), ``ts`` (event time, epoch ms) and
``msisdn``. Fields a feed may omit have defaults (``None`` is the language's
``null``); extra fields are ignored. A new type is one more subclass passed to
``register_event_type``: the decoder, the checker's schema and the dispatch
index all derive from the registry, so the runtime needs no change.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

import msgspec

from plan import EventSchema, FieldSpec


#: A subscriber's number: an empty one names nobody, so such an event is malformed.
Msisdn = typing.Annotated[str, msgspec.Meta(min_length=1)]
#: Event time, epoch ms from 1970 to the end of 9999-12-30 UTC (as in _localtime): a corrupted
#: ts outside it is malformed, instead of moving the stream's clock millennia ahead or
#: breaking local-time rules.
Timestamp = typing.Annotated[int, msgspec.Meta(ge=0, le=253_402_214_399_999)]


class Event(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    """Fields every event has."""

    ts: Timestamp
    msisdn: Msisdn


Roaming = typing.Literal["none", "domestic", "international"]
Direction = typing.Literal["mo", "mt"]
Number = Union[int, float]


class Location(Event, tag="location"):
    cell: str
    roaming: Roaming = "none"


class Power(Event, tag="power"):
    state: typing.Literal["on", "off"]
    roaming: Roaming = "none"


class Call(Event, tag="call"):
    direction: Direction
    duration_s: Number = 0
    peer: str | None = None
    dropped: bool = False
    roaming: Roaming = "none"


class Sms(Event, tag="sms"):
    direction: Direction
    peer: str | None = None


class Attach(Event, tag="attach"):
    imei: str
    model: str | None = None
    os: str | None = None


class Dpi(Event, tag="dpi"):
    host: str
    app: str | None = None
    category: str | None = None
    bytes: Number = 0
    duration_s: Number = 0


class Usage(Event, tag="usage"):
    pct: Number
    used_mb: Number | None = None
    quota_mb: Number | None = None
    cycle: str | None = None


class Balance(Event, tag="balance"):
    amount: Number


class Topup(Event, tag="topup"):
    amount: Number
    channel: str | None = None


class Login(Event, tag="login"):
    channel: typing.Literal["app", "web", "sms_hall"]


class Profile(Event, tag="profile"):
    tags: dict[str, Any]


class Feedback(Event, tag="feedback"):
    trigger_id: str
    outcome: typing.Literal["delivered", "clicked", "accepted", "rejected", "failed"]
    scenario: str | None = None
    channel: str | None = None


class Trigger(Event, tag="trigger"):
    """A sent trigger re-entering the engine (LANGUAGE.md §5)."""

    id: str
    scenario: str
    channel: str
    template: str


_REGISTRY: dict[str, type[Event]] = {}


def register_event_type(cls: type[Event]) -> type[Event]:
    """Add an event type; returns it, so it can be used as a class decorator."""
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str) or not issubclass(cls, Event):
        raise TypeError(f"{cls.__name__} must subclass Event with a string tag")
    _REGISTRY[tag] = cls
    return cls


for _cls in (
    Location, Power, Call, Sms, Attach, Dpi, Usage, Balance, Topup, Login, Profile,
    Feedback, Trigger,
):
    register_event_type(_cls)


def event_types() -> dict[str, type[Event]]:
    """The registered types by name (a copy)."""
    return dict(_REGISTRY)


def event_union() -> Any:
    """The tagged union of every registered type, for a msgspec decoder."""
    return Union[tuple(_REGISTRY.values())]  # type: ignore[return-value]


def _field_spec(annotation: Any, required: bool) -> FieldSpec:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return FieldSpec("str", required, tuple(str(a) for a in args))
    if origin in (Union, types.UnionType):
        kinds = {_field_spec(a, required).type for a in args if a is not type(None)}
        kind = kinds.pop() if len(kinds) == 1 else "any"
        return FieldSpec(kind, required)
    if annotation is str:
        return FieldSpec("str", required)
    if annotation in (int, float):
        return FieldSpec("num", required)
    if annotation is bool:
        return FieldSpec("bool", required)
    if origin is dict or annotation is dict:
        return FieldSpec("dict", required)
    return FieldSpec("any", required)


def event_schema() -> EventSchema:
    """What the checker validates scenarios against, derived from the Structs."""
    out: dict[str, dict[str, FieldSpec]] = {}
    for name, cls in _REGISTRY.items():
        hints = typing.get_type_hints(cls)
        info = msgspec.structs.fields(cls)
        fields = {"type": FieldSpec("str", True)}
        for f in info:
            fields[f.name] = _field_spec(hints[f.name], f.required)
        out[name] = fields
    return EventSchema(out)
