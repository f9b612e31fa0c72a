"""Signed JSON POSTs and how their answers map to outcomes, shared by the pop-up and call-centre channels."""

from __future__ import annotations

import hashlib
import hmac
from email.utils import parsedate_to_datetime

import httpx

from kairos.adapters._channel import Outcome, SendContext, wall_ms

SIGNATURE_HEADER = "X-Kairos-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str | bytes, body: bytes) -> str:
    """HMAC-SHA256 of the raw body with the shared secret, lower-case hex: the ``X-Kairos-Signature`` value."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the body's signature (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), signature.strip().lower())


async def post_signed(client: httpx.AsyncClient, url: str, body: bytes, ctx: SendContext, secret: str) -> Outcome:
    """POST a JSON body with signature and idempotency key.

    2xx is delivered; 5xx, 408, 429 and timeouts retry; any other 4xx failed.
    """
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: ctx.id}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Outcome.retry(f"timeout: {type(exc).__name__}")
    except httpx.TransportError as exc:
        return Outcome.retry(f"transport: {type(exc).__name__}: {exc}")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome.delivered(f"http {status}")
    reason = f"http {status}: {response.text[:200]}"
    if status >= 500 or status in (408, 425, 429):
        return Outcome.retry(reason, _retry_after_ms(response.headers.get("Retry-After")))
    return Outcome.failed(reason)


def _retry_after_ms(value: str | None) -> int | None:
    """A Retry-After header (seconds or an HTTP date) in milliseconds from now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() * 1000) - wall_ms())
    except (TypeError, ValueError):
        return None
