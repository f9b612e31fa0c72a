"""The event family: one msgspec Struct per type, decoded straight from JSON lines.

Every event has ``type`` (the tag), ``ts`` (event time, epoch ms) and
``msisdn``. Fields a feed may omit have defaults (``None`` is the language's
``null``); extra fields are ignored. A new type is one more subclass passed to
``register_event_type``: the decoder, the checker's schema and the dispatch
index all derive from the registry, so the runtime needs no change. A
scenario folder's ``events.toml`` declares types without code (``_catalogue``).
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, TypeAlias, Union

import msgspec
from msgspec import Meta

from kairos.plan import EventSchema, FieldSpec


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


# A JSON number (int or float) within bounds: outside them the line is malformed.
# Every bound is far beyond what a real feed sends and within what the snapshot
# format (msgpack: 64-bit ints) and exact float arithmetic (2**53) hold, so one
# corrupted value can neither drive sends nor make a snapshot unwritable. Each is
# spelled out (not built by a function) so that a type checker sees a type.

#: bytes of one DPI record: 10**15 is a petabyte, a 100 Gbit/s link for a day
Bytes: TypeAlias = Annotated[int, Meta(ge=0, le=10**15)] | Annotated[float, Meta(ge=0, le=10**15)]
#: seconds of one call or DPI session: 10**7 s is 115 days
Seconds: TypeAlias = Annotated[int, Meta(ge=0, le=10**7)] | Annotated[float, Meta(ge=0, le=10**7)]
#: percent of the allowance used: 0 to 10 000 (a plan used a hundred times over)
Percent: TypeAlias = Annotated[int, Meta(ge=0, le=10_000)] | Annotated[float, Meta(ge=0, le=10_000)]
#: megabytes used or in the allowance: 10**9 MB is a petabyte
Megabytes: TypeAlias = Annotated[int, Meta(ge=0, le=10**9)] | Annotated[float, Meta(ge=0, le=10**9)]
#: yuan of a balance or a payment, negative for a debt or a refund: a billion either way
Yuan: TypeAlias = Annotated[int, Meta(ge=-(10**9), le=10**9)] | Annotated[float, Meta(ge=-(10**9), le=10**9)]
#: a number in a tag value: within ±2**53, where every int is exact as a float too
TAG_NUMBER_LIMIT = 2**53
#: lists and objects in a tag value nest at most this deep (white-lists, small records; never a recursion limit)
TAG_DEPTH_LIMIT = 8


class Location(Event, tag="location"):
    cell: str
    roaming: Roaming = "none"


class Power(Event, tag="power"):
    state: typing.Literal["on", "off"]
    roaming: Roaming = "none"


class Call(Event, tag="call"):
    direction: Direction
    duration_s: Seconds = 0
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
    bytes: Bytes = 0
    duration_s: Seconds = 0


class Usage(Event, tag="usage"):
    pct: Percent
    used_mb: Megabytes | None = None
    quota_mb: Megabytes | None = None
    cycle: str | None = None


class Balance(Event, tag="balance"):
    amount: Yuan


class Topup(Event, tag="topup"):
    amount: Yuan
    channel: str | None = None


class Login(Event, tag="login"):
    channel: typing.Literal["app", "web", "sms_hall"]


class Profile(Event, tag="profile"):
    tags: dict[str, Any]

    def __post_init__(self) -> None:
        check_tags(self.tags)


def check_tags(tags: dict[str, Any]) -> None:
    """Refuse a tag value holding a number beyond ±``TAG_NUMBER_LIMIT``, or lists and objects nested
    deeper than ``TAG_DEPTH_LIMIT``: tags are snapshotted, and an int past 64 bits, or a value nested
    past the encoder's recursion limit, would make every snapshot fail.
    Raises ``ValueError``, which a msgspec decoder reports as a ``ValidationError``."""
    for name, value in tags.items():
        where = _out_of_range(value, TAG_DEPTH_LIMIT)
        if where is not None:
            raise ValueError(f"Expected {where} - at `$.tags.{name}`")


def tag_value_problem(value: Any) -> str | None:
    """What keeps ``value`` from being a tag value (``check_tags``' limits), or None: a ``set`` clause's
    value is judged so before it is written, since every snapshot after would fail on it."""
    return _out_of_range(value, TAG_DEPTH_LIMIT)


def _out_of_range(value: Any, depth: int) -> str | None:
    """What is wrong with ``value`` (None: nothing), looking at most ``depth`` levels down."""
    cls = value.__class__
    if cls is int or cls is float:
        if -TAG_NUMBER_LIMIT <= value <= TAG_NUMBER_LIMIT:
            return None
        return f"a tag number within ±2**53, got {repr(value)[:40]}"
    if cls is list or cls is dict:
        if depth == 0:
            return f"a tag value nested at most {TAG_DEPTH_LIMIT} lists or objects deep"
        for v in value if cls is list else value.values():
            where = _out_of_range(v, depth - 1)
            if where is not None:
                return where
    return None


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

#: the names of the types above: a catalogue (``_catalogue``) may not redefine them
BUILTIN_TYPES = frozenset(_REGISTRY)


def unregister_event_type(name: str) -> None:
    """Remove a type a catalogue registered (a built-in stays)."""
    if name not in BUILTIN_TYPES:
        _REGISTRY.pop(name, None)


def event_types() -> dict[str, type[Event]]:
    """The registered types by name (a copy)."""
    return dict(_REGISTRY)


def event_union() -> Any:
    """The tagged union of every registered type, for a msgspec decoder."""
    return Union[tuple(_REGISTRY.values())]  # noqa: UP007 (built from a tuple at run time: no X | Y spelling)


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
