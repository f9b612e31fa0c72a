"""The channel plugin interface: one typed context in, one outcome out.

A channel is a class: ``Config`` (a msgspec Struct) says what it is configured
with, ``start`` opens its connections, ``send`` delivers one message and says
what happened, ``close`` lets go. The outbox (``adapters._outbox``) calls it; it
owns retries, rate limits, de-duplication and the dead-letter file, so a
channel only has to answer one question per send: delivered, retry, or failed.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Self

import anyio.abc
import msgspec

__all__ = [
    "Channel",
    "ChannelConfigError",
    "Feedback",
    "FeedbackSink",
    "Outcome",
    "SendContext",
    "wall_ms",
]

#: the feedback outcomes DOMAIN.md lists for a ``feedback`` event
FEEDBACK_OUTCOMES = frozenset({"delivered", "clicked", "accepted", "rejected", "failed"})


def wall_ms() -> int:
    """Wall-clock now in epoch milliseconds (the one place adapters read the clock by default)."""
    return time.time_ns() // 1_000_000


class SendContext(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a channel gets for one send: the decided trigger plus the rendered text."""

    id: str  #: the trigger id ``SCENARIO:MSISDN:TS[:N]``: the same send always has the same id
    scenario: str
    msisdn: str
    ts: int  #: the trigger's time, epoch ms
    send_at: int  #: when it may be sent, epoch ms (``after`` / quiet-hour deferral)
    channel: str
    template: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: int = 50
    text: str = ""  #: the template rendered for this channel with ``params``
    attempt: int = 1  #: 1 for the first try, counted up by the outbox on retries


class Outcome(msgspec.Struct, frozen=True):
    """What a channel says about one send; the outbox acts on ``status``."""

    status: Literal["delivered", "retry", "failed"]
    reason: str = ""
    retry_after_ms: int | None = None  #: a peer's hint (Retry-After, throttling); the outbox waits at least this
    #: a retry of a send that may still arrive (handed over, no answer yet): its attempt stays "in doubt" in the
    #: ledger, so a crash or a handover before the answer never sends it again on a channel that keeps repeats
    in_doubt: bool = False

    @classmethod
    def delivered(cls, reason: str = "") -> Outcome:
        """The peer took the message: never send it again."""
        return cls("delivered", reason)

    @classmethod
    def retry(cls, reason: str, retry_after_ms: int | None = None, *, in_doubt: bool = False) -> Outcome:
        """A temporary failure: the outbox tries again with backoff. ``in_doubt``: the message may still
        arrive (the channel's next try must not send a second copy), so the ledger keeps the attempt open."""
        return cls("retry", reason, retry_after_ms, in_doubt)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        """A permanent failure: the outbox writes the send to the dead-letter file."""
        return cls("failed", reason)


class Feedback(msgspec.Struct, frozen=True, kw_only=True, tag="feedback", tag_field="type"):
    """A ``feedback`` event (DOMAIN.md): what happened to a sent message.

    ``msgspec.json.encode`` gives its JSON line.
    """

    ts: int
    msisdn: str
    trigger_id: str
    scenario: str
    channel: str
    outcome: str  #: delivered / clicked / accepted / rejected / failed


#: where channels and feedback sources hand their ``feedback`` events; must not block
FeedbackSink = Callable[[Feedback], None]


class ChannelConfigError(ValueError):
    """A channel's configuration mapping does not fit its ``Config``."""


class _NoConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The configuration of a channel that needs none."""


class Channel(abc.ABC):
    """Base class of every channel plugin; register the subclass under the ``kairos.channels`` entry point."""

    #: the channel's configuration schema; unknown keys are an error
    Config: ClassVar[type[msgspec.Struct]] = _NoConfig
    #: True if sending the same trigger id twice reaches the subscriber once (the peer de-duplicates
    #: by id); the outbox then retries sends whose outcome is unknown instead of dead-lettering them
    idempotent: ClassVar[bool] = False

    def __init__(self, config: Any, *, name: str = "", feedback: FeedbackSink | None = None) -> None:
        self.config = config
        self.name = name
        self.feedback: FeedbackSink = feedback or _drop_feedback

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any] | None = None, *, name: str = "", feedback: FeedbackSink | None = None
    ) -> Self:
        """Build the channel from a plain mapping (a TOML/JSON section), validated against ``Config``."""
        try:
            typed = msgspec.convert(dict(config or {}), cls.Config, str_keys=True)
        except msgspec.ValidationError as exc:
            raise ChannelConfigError(f"channel {name or cls.__name__}: {exc}") from None
        return cls(typed, name=name, feedback=feedback)

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:  # noqa: B027 - optional hook
        """Open connections; background work (keep-alive, receivers) goes into ``task_group``."""

    @abc.abstractmethod
    async def send(self, ctx: SendContext) -> Outcome:
        """Deliver one message; return an ``Outcome``. Raising means "outcome unknown"."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and close connections; called once, inside a shielded scope."""


def _drop_feedback(_: Feedback) -> None:
    """The default sink: a channel built without one drops its feedback."""
