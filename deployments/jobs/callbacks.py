"""Callback delivery: POST the result to the client's URL, retrying transient failures."""

import asyncio
import logging
from dataclasses import dataclass, field

import httpx

from deployments.errors import CallbackDeliveryFailed

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class CallbackAttempt:
    status_code: int | None  # None when no HTTP answer came back
    error: str | None


@dataclass
class DeliveryReport:
    url: str
    delivered: bool
    attempts: list[CallbackAttempt] = field(default_factory=list)


class CallbackSender:
    """Sends one JSON payload with a bounded number of attempts and exponential backoff.

    3xx is not followed (a redirect could point anywhere); 4xx other than the throttling codes
    is final, since repeating the same body cannot change the answer.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float,
        max_attempts: int,
        backoff_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._transport = transport

    async def send(self, url: str, payload_json: bytes) -> DeliveryReport:
        report = DeliveryReport(url=url, delivered=False)
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, transport=self._transport
        ) as client:
            for attempt in range(self._max_attempts):
                if attempt:
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                try:
                    response = await client.post(
                        url, content=payload_json, headers={"content-type": "application/json"}
                    )
                except httpx.HTTPError as exc:
                    report.attempts.append(CallbackAttempt(None, f"{type(exc).__name__}: {exc}"))
                    continue
                report.attempts.append(CallbackAttempt(response.status_code, None))
                if response.is_success:
                    report.delivered = True
                    return report
                if response.status_code not in _RETRYABLE_STATUS:
                    break
        logger.warning("callback to %s not delivered after %d attempts", url, len(report.attempts))
        return report


def raise_if_undelivered(report: DeliveryReport) -> None:
    if not report.delivered:
        last = report.attempts[-1] if report.attempts else None
        reason = (last.error or f"HTTP {last.status_code}") if last else "no attempt made"
        raise CallbackDeliveryFailed(
            f"callback to {report.url} failed after {len(report.attempts)} attempt(s): {reason}"
        )
