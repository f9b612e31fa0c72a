"""SMS over SMPP 3.4, on aiosmpplib's ESME: bind, submit_sm, keep-alive, reconnect, receipts.

aiosmpplib (pure Python, asyncio, maintained) keeps the session: it binds as
transceiver or transmitter, sends ``enquire_link`` when the line is quiet,
reconnects with exponential backoff, splits long text into concatenated parts
with a UDH (UCS-2, data_coding 8, for Chinese) and correlates delivery
receipts with the message they report on. This module turns that callback
API into ``send(ctx) -> Outcome``: throttling answers (ESME_RTHROTTLED,
ESME_RMSGQFUL) and other temporary SMSC errors become ``retry``, and receipts
become ``feedback`` events. SMPP has no way to drop a repeated submit, so a
submit whose answer never came is *not* retried by default (``retry_unknown``):
an operator would rather dead-letter it than send one SMS twice.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Literal

import anyio
import anyio.abc
import msgspec
from aiosmpplib import (
    ESME,
    NPI,
    TON,
    AbstractBroker,
    AbstractHook,
    AbstractThrottleHandler,
    BindMode,
    BindTransceiverResp,
    BindTransmitterResp,
    DeliverSm,
    EnquireLink,
    OptionalParam,
    PhoneNumber,
    SmppCommandStatus,
    SmppMessage,
    SubmitSm,
    SubmitSmResp,
)
from aiosmpplib.correlator import SimpleCorrelator
from aiosmpplib.retrytimer import SimpleExponentialBackoff
from aiosmpplib.utils import detect_format

from kairos.adapters._channel import Channel, Feedback, Outcome, SendContext, wall_ms

__all__ = ["TRIGGER_TLV", "SmsChannel", "SmsConfig", "SmsStats"]

#: vendor-specific TLV (SMPP 3.4 §5.3.2: 0x1400–0x3FFF) carrying the trigger id, so an SMSC can trace or drop repeats
TRIGGER_TLV = 0x1400

#: SMSC answers that mean "not now, try again": the message was not accepted, so a retry cannot duplicate it
_TEMPORARY = frozenset(
    {
        SmppCommandStatus.ESME_RTHROTTLED,
        SmppCommandStatus.ESME_RMSGQFUL,
        SmppCommandStatus.ESME_RSYSERR,
        SmppCommandStatus.ESME_RX_T_APPN,
    }
)
#: receipt ``stat`` values that are final; ACCEPTD / ENROUTE are not
_RECEIPT_OUTCOME = {
    "DELIVRD": "delivered",
    "EXPIRED": "failed",
    "DELETED": "failed",
    "UNDELIV": "failed",
    "REJECTD": "failed",
    "UNKNOWN": "failed",
}


class SmsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to reach and bind to the SMSC, and how patient to be."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind: Literal["transceiver", "transmitter"] = "transceiver"  #: receipts arrive only on a transceiver bind
    source_addr: str = ""
    source_ton: int = 0
    source_npi: int = 0
    dest_ton: int = 1  #: international
    dest_npi: int = 1  #: E.164
    receipts: bool = True  #: ask for delivery receipts (registered_delivery = 1)
    enquire_link_s: float = 30.0  #: keep-alive when the line has been quiet this long
    reconnect_min_ms: int = 1000  #: first reconnect delay, doubled up to 2**reconnect_doublings times
    reconnect_doublings: int = 5
    socket_timeout_s: float = 10.0
    response_timeout_s: float = 10.0  #: how long to wait for submit_sm_resp
    throttle_retry_ms: int = 1000  #: how long to back off after ESME_RTHROTTLED / ESME_RMSGQFUL
    retry_unknown: bool = False  #: retry a submit whose answer was lost (may send it twice)
    state_dir: str = ""  #: where aiosmpplib persists receipt correlation (empty: memory only)
    trigger_tlv: bool = True  #: send the trigger id in TLV 0x1400
    log_level: str = "WARNING"  #: aiosmpplib's own log level

    def __post_init__(self) -> None:
        for field, limit in (("system_id", 15), ("password", 8), ("system_type", 12), ("source_addr", 20)):
            if len(getattr(self, field)) > limit:
                raise ValueError(f"{field} is longer than SMPP 3.4 allows ({limit})")


class SmsStats(msgspec.Struct):
    """What the SMS channel's session has done."""

    binds: int = 0  #: successful binds (the first, and every re-bind after a reconnect)
    submitted: int = 0  #: submit_sm PDUs written (one per part of a split message)
    keepalives: int = 0  #: enquire_link PDUs sent
    receipts: int = 0  #: delivery receipts received
    receipts_uncorrelated: int = 0  #: receipts whose message is not known (e.g. correlation not persisted)
    bound: bool = False


class _Waiter:
    """One send waiting for its submit_sm_resp."""

    __slots__ = ("done", "outcome", "written")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.outcome: Outcome | None = None
        self.written = False

    def resolve(self, outcome: Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self.done.set()


class _Broker(AbstractBroker):
    """aiosmpplib's outgoing queue, with withdrawal of a message not yet taken by the session."""

    def __init__(self) -> None:
        self._queue: deque[SmppMessage] = deque()
        self._ready = asyncio.Event()
        self._queued: set[str] = set()

    async def enqueue(self, message: SmppMessage) -> None:
        self._queue.append(message)
        self._queued.add(getattr(message, "log_id", ""))
        self._ready.set()

    async def dequeue(self) -> SmppMessage:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            message = self._queue.popleft()
            log_id = getattr(message, "log_id", "")
            if log_id in self._queued:
                self._queued.discard(log_id)
                return message

    def withdraw(self, log_id: str) -> bool:
        """Take a message back if the session has not dequeued it yet."""
        if log_id in self._queued:
            self._queued.discard(log_id)
            return True
        return False


class _AlwaysAllow(AbstractThrottleHandler):
    """The outbox, not the session, decides when to resend after throttling."""

    async def throttled(self) -> None: ...

    async def not_throttled(self) -> None: ...

    async def allow_request(self) -> bool:
        return True

    async def throttle_delay(self) -> float:
        return 0.0


class _Hook(AbstractHook):
    """aiosmpplib's callbacks, routed back to the channel."""

    def __init__(self, channel: SmsChannel) -> None:
        self.channel = channel

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm):
            self.channel._stats.submitted += 1
            waiter = self.channel._waiting.get(smpp_message.log_id)
            if waiter is not None:
                waiter.written = True
        elif isinstance(smpp_message, EnquireLink):
            self.channel._stats.keepalives += 1
            self.channel._notify()

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSmResp):
            self.channel._answered(smpp_message)
        elif isinstance(smpp_message, DeliverSm) and smpp_message.is_receipt():
            self.channel._receipt(smpp_message)
        elif isinstance(smpp_message, BindTransceiverResp | BindTransmitterResp):
            if smpp_message.command_status in (SmppCommandStatus.ESME_ROK, SmppCommandStatus.ESME_RALYBND):
                self.channel._stats.binds += 1
                self.channel._link_up = True
            self.channel._notify()

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        if isinstance(smpp_message, SubmitSm):
            waiter = self.channel._waiting.get(smpp_message.log_id)
            if waiter is None:
                return
            if isinstance(error, ValueError):
                waiter.resolve(Outcome.failed(f"cannot encode submit_sm: {error}"))
            elif not waiter.written:
                waiter.resolve(Outcome.retry(f"not sent: {type(error).__name__}: {error}"))
            else:
                waiter.resolve(self.channel._unknown(f"connection failed during submit_sm: {type(error).__name__}"))


class _Esme(ESME):
    """aiosmpplib's ESME, telling the channel the moment its receiver stops (the link is down)."""

    def __init__(self, *args: object, on_link_down: Callable[[], None], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._on_link_down = on_link_down

    async def _receive_data(self) -> bytes | None:
        try:
            return await super()._receive_data()
        finally:
            self._on_link_down()


class SmsChannel(Channel):
    """SMS through an SMSC over SMPP 3.4; delivery receipts come back as ``feedback`` events."""

    Config = SmsConfig
    idempotent = False
    config: SmsConfig

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Create the ESME and let it bind (and re-bind) in the background; sends before the bind answer ``retry``."""
        c = self.config
        self._waiting: dict[str, _Waiter] = {}
        self._changed = anyio.Event()
        self._stats = SmsStats()
        self._broker = _Broker()
        self._bind_mode = BindMode.TRANSCEIVER if c.bind == "transceiver" else BindMode.TRANSMITTER
        self._link_up = False
        self._esme = _Esme(
            on_link_down=self._link_down,
            smsc_host=c.host,
            smsc_port=c.port,
            system_id=c.system_id,
            password=c.password,
            system_type=c.system_type,
            bind_mode=self._bind_mode,
            enquire_link_interval=float(c.enquire_link_s),
            socket_timeout=float(c.socket_timeout_s),
            hook=_Hook(self),
            broker=self._broker,
            throttle_handler=_AlwaysAllow(),
            correlator=SimpleCorrelator(
                f"kairos-{c.system_id}", directory=c.state_dir, max_ttl_response=max(1.0, float(c.response_timeout_s))
            ),
            retry_timer=SimpleExponentialBackoff(
                min_delay=max(1, c.reconnect_min_ms), max_increases=c.reconnect_doublings
            ),
            log_level=c.log_level,
        )
        self._scope = anyio.CancelScope()
        task_group.start_soon(self._session)

    async def _session(self) -> None:
        """Run aiosmpplib's connect / bind / reconnect loop until closed."""
        with self._scope:
            await self._esme.start()

    @property
    def bound(self) -> bool:
        """Whether the session is bound right now."""
        return self._link_up and self._esme.session_state == self._bind_mode.session_state

    def _link_down(self) -> None:
        """The session lost its connection: a submit written on it will get no answer any more."""
        self._link_up = False
        for waiter in self._waiting.values():
            if waiter.written:
                waiter.resolve(self._unknown("connection lost before submit_sm_resp"))
        self._notify()

    def statistics(self) -> SmsStats:
        """A snapshot of the session's counts."""
        return msgspec.structs.replace(self._stats, bound=self.bound)

    async def wait_for(self, predicate: Callable[[SmsStats], bool]) -> SmsStats:
        """Wait until the counts satisfy ``predicate`` (e.g. bound again after a reconnect)."""
        while True:
            stats = self.statistics()
            if predicate(stats):
                return stats
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def send(self, ctx: SendContext) -> Outcome:
        """Submit one SMS and wait for the SMSC's answer (the receipt comes later, as feedback)."""
        c = self.config
        if not self.bound:
            return Outcome.retry("not bound to the SMSC", c.reconnect_min_ms)
        if not ctx.text:
            return Outcome.failed("empty message text")
        try:
            message = SubmitSm(
                short_message=ctx.text,
                source=PhoneNumber(c.source_addr, TON(c.source_ton), NPI(c.source_npi)),
                destination=PhoneNumber(ctx.msisdn, TON(c.dest_ton), NPI(c.dest_npi)),
                esm_class=0x40,  # UDHI: split long text into concatenated parts with a UDH
                auto_message_payload=False,
                encoding=detect_format(ctx.text),  # GSM 03.38 when it fits, else UCS-2 (data_coding 8)
                registered_delivery=1 if c.receipts else 0,
                optional_params=[OptionalParam(TRIGGER_TLV, ctx.id)] if c.trigger_tlv else [],
                log_id=ctx.id,
                extra_data=msgspec.json.encode({"s": ctx.scenario, "m": ctx.msisdn}).decode(),
            )
        except ValueError as exc:
            return Outcome.failed(f"cannot build submit_sm: {exc}")
        waiter = self._waiting[ctx.id] = _Waiter()
        try:
            await self._broker.enqueue(message)
            with anyio.move_on_after(c.response_timeout_s):
                await waiter.done.wait()
            if waiter.outcome is not None:
                return waiter.outcome
            if self._broker.withdraw(ctx.id) or not waiter.written:
                return Outcome.retry("not sent before the response timeout")
            return self._unknown(f"no submit_sm_resp within {c.response_timeout_s}s")
        finally:
            del self._waiting[ctx.id]

    def _unknown(self, reason: str) -> Outcome:
        """The SMSC may or may not have the message: retry only if configured to risk a duplicate."""
        if self.config.retry_unknown:
            return Outcome.retry(f"outcome unknown: {reason}")
        return Outcome.failed(f"outcome unknown, not retried to avoid a duplicate SMS: {reason}")

    def _answered(self, resp: SubmitSmResp) -> None:
        """A submit_sm_resp (for a split message: the last part's) settles the send."""
        waiter = self._waiting.get(resp.log_id)
        if waiter is None:
            return
        status = resp.command_status
        if status == SmppCommandStatus.ESME_ROK:
            waiter.resolve(Outcome.delivered(f"message_id {resp.message_id}"))
        elif status in _TEMPORARY:
            waiter.resolve(Outcome.retry(f"SMSC answered {status.name}", self.config.throttle_retry_ms))
        else:
            waiter.resolve(Outcome.failed(f"SMSC answered {getattr(status, 'name', status)}"))

    def _receipt(self, receipt: DeliverSm) -> None:
        """A delivery receipt becomes a ``feedback`` event."""
        self._stats.receipts += 1
        self._notify()
        stat = str(receipt.parse_receipt().get("stat", "")).upper()
        outcome = _RECEIPT_OUTCOME.get(stat)
        if outcome is None:
            return
        if not receipt.log_id:
            self._stats.receipts_uncorrelated += 1
            return
        try:
            extra = msgspec.json.decode(receipt.extra_data) if receipt.extra_data else {}
        except msgspec.DecodeError:
            extra = {}
        parts = receipt.log_id.split(":")
        self.feedback(
            Feedback(
                ts=wall_ms(),
                msisdn=extra.get("m") or (parts[1] if len(parts) > 1 else ""),
                trigger_id=receipt.log_id,
                scenario=extra.get("s") or parts[0],
                channel=self.name or "sms",
                outcome=outcome,
            )
        )

    async def close(self) -> None:
        """Unbind politely (bounded in time), then stop the reconnect loop."""
        with anyio.move_on_after(2.0):
            await self._esme.stop()
        self._scope.cancel()
        for waiter in self._waiting.values():
            waiter.resolve(Outcome.retry("channel closed"))
