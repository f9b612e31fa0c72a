"""The app pop-up channel: a signed JSON POST to the operator app's push gateway."""

from __future__ import annotations

import anyio.abc
import httpx
import msgspec

from kairos.adapters._channel import Channel, Outcome, SendContext
from kairos.adapters._http import post_signed, sign

__all__ = ["PopupChannel", "PopupConfig", "PopupMessage", "sign"]


class PopupConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the push gateway is and how long to wait for it."""

    url: str
    secret: str  #: shared HMAC-SHA256 key for ``X-Kairos-Signature``
    timeout_s: float = 5.0  #: read/write/pool timeout of one POST
    connect_timeout_s: float = 2.0


class PopupMessage(msgspec.Struct, frozen=True):
    """The JSON body the gateway receives."""

    id: str
    msisdn: str
    scenario: str
    template: str
    text: str
    params: dict[str, object]
    priority: int
    ts: int
    send_at: int


_ENCODE = msgspec.json.Encoder().encode


class PopupChannel(Channel):
    """Pop-ups in the operator's app; the gateway gets the trigger id as ``Idempotency-Key`` and drops repeats."""

    Config = PopupConfig
    idempotent = True
    config: PopupConfig

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        """Open the connection pool."""
        c = self.config
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(c.timeout_s, connect=c.connect_timeout_s))

    async def send(self, ctx: SendContext) -> Outcome:
        """POST the pop-up; 2xx delivered, 5xx and timeouts retry, 4xx failed."""
        body = _ENCODE(
            PopupMessage(
                ctx.id, ctx.msisdn, ctx.scenario, ctx.template, ctx.text, ctx.params, ctx.priority, ctx.ts, ctx.send_at
            )
        )
        return await post_signed(self._client, self.config.url, body, ctx, self.config.secret)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
