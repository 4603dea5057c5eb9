"""Callback delivery: one guarded, signed attempt at a time, on a bounded retry schedule.

Retried: connection errors, timeouts, 408/425/429 and 5xx, after the schedule's next delay or the
receiver's ``Retry-After`` if longer. Final: 2xx (delivered), 410 (the receiver wants no more),
other 4xx, and 3xx (redirects are not followed: one could point into the private network).
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol

import httpx

from stemforge.jobs.records import CallbackAttemptRecord, CallbackState
from stemforge.jobs.signing import CallbackSigner
from stemforge.jobs.ssrf import GuardedTransport

if TYPE_CHECKING:
    from stemforge.settings import Settings

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))
JITTER = 0.1  # +-10% on each scheduled delay, so retries from many jobs do not arrive together


@dataclass(frozen=True)
class AttemptOutcome:
    status_code: int | None  # None when no HTTP answer came back
    error: str | None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        return self.status_code is None or self.status_code in _RETRYABLE_STATUS


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def next_delay(
    schedule: Sequence[float], attempts_made: int, retry_after: float | None, rng: random.Random | None = None
) -> float | None:
    """Seconds until the next attempt, or ``None`` when the schedule is used up."""
    if attempts_made >= len(schedule):
        return None
    delay = schedule[attempts_made] * (1 + (rng or random).uniform(-JITTER, JITTER))
    return max(delay, retry_after or 0.0)


class CallbackClient:
    """Makes single attempts: SSRF-guarded at connection time, signed when a secret is set.

    One HTTP client (and connection pool) serves every attempt for the client's lifetime:
    attempts run concurrently, and closing a client per attempt would close the pool under the
    others' feet. It is made again only for a new event loop (pools are bound to their loop)."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        allowed_hosts: Collection[str],
        signer: CallbackSigner | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._signer = signer
        self._allowed_hosts = allowed_hosts
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is None or self._loop is not loop:
            self._http = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                transport=self._transport or GuardedTransport(self._allowed_hosts),
            )
            self._loop = loop
        return self._http

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        headers = {"content-type": "application/json", "user-agent": "stemforge-callback"}
        if self._signer is not None:
            headers |= self._signer.headers(webhook_id, body)
        try:
            response = await self._client().post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return AttemptOutcome(None, f"{type(exc).__name__}: {exc}".strip(": "))
        except Exception as exc:  # e.g. the SSRF guard refusing a re-resolved address
            return AttemptOutcome(None, f"{type(exc).__name__}: {exc}")
        return AttemptOutcome(
            response.status_code,
            None if response.is_success else f"HTTP {response.status_code}",
            parse_retry_after(response.headers.get("retry-after"), time.time()),
        )


def callback_client(settings: "Settings") -> CallbackClient:
    secret = settings.callback_signing_secret
    return CallbackClient(
        timeout_seconds=settings.callback_timeout_seconds,
        allowed_hosts=settings.callback_allowed_hosts,
        signer=CallbackSigner(secret.get_secret_value()) if secret else None,
    )


class CallbackSender(Protocol):
    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome: ...


class CallbackDelivery:
    """Runs the attempts that are due now; leaves later ones scheduled in the state."""

    def __init__(
        self,
        client: CallbackSender,
        schedule: Sequence[float],
        inline_wait_max_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_attempt: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._schedule = list(schedule)
        self._inline_max = inline_wait_max_seconds
        self._clock = clock
        self._sleep = sleep
        # Told each attempt's outcome: "delivered", "retry" (scheduled again) or "gave_up".
        self._on_attempt = on_attempt

    def new_state(self, url: str, webhook_id: str) -> CallbackState:
        return CallbackState(
            url=url, webhook_id=webhook_id, next_attempt_at=self._clock() + self._schedule[0]
        )

    async def run(
        self, state: CallbackState, body: bytes, persist: Callable[[CallbackState], Awaitable[None]]
    ) -> CallbackState:
        """Attempt while attempts are due within the inline window; ``persist`` after each."""
        while not state.finished and state.next_attempt_at is not None:
            wait = state.next_attempt_at - self._clock()
            if wait > self._inline_max:
                break
            if wait > 0:
                await self._sleep(wait)
            outcome = await self._client.attempt(state.url, state.webhook_id, body)
            self.record(state, outcome)
            await persist(state)
        return state

    def record(self, state: CallbackState, outcome: AttemptOutcome) -> None:
        now = self._clock()
        state.attempts.append(
            CallbackAttemptRecord(at=now, status_code=outcome.status_code, error=outcome.error)
        )
        state.next_attempt_at = None
        if outcome.delivered:
            state.delivered = True
        elif not outcome.retryable:
            state.gave_up = True
        else:
            delay = next_delay(self._schedule, len(state.attempts), outcome.retry_after)
            if delay is None:
                state.gave_up = True
            else:
                state.next_attempt_at = now + delay
        if state.gave_up:
            logger.warning("callback to %s given up after %d attempt(s)", state.url, len(state.attempts))
        if self._on_attempt is not None:
            self._on_attempt("delivered" if state.delivered else "gave_up" if state.gave_up else "retry")
