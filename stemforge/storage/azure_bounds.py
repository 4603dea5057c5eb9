"""Time bounds for Azure Blob calls, so a storage outage ends a job instead of hanging it.

The SDK's own defaults (15 s backoff growing by powers of 3, 20 s connect and 60 s read
timeouts) take about 85 s to give up on a refused connection and minutes on a server that accepts
and never answers. Here every attempt has a connect and a read timeout, retries are few and
short, and on top of that each operation runs against a hard deadline: a server that trickles a
byte now and then, or an upload split into many requests, still cannot outlast it.
"""

import random
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.storage.blob import ExponentialRetry

from stemforge.errors import StorageError
from stemforge.settings import Settings

T = TypeVar("T")

# Backoffs vary by up to this fraction, so replicas that failed together do not retry together.
_JITTER = 0.2


class BoundedRetry(ExponentialRetry):
    """The storage SDK's retry rules (which errors and statuses to retry), with our backoff:
    ``backoff * 2 ** (n - 1)`` before retry ``n``, jittered by at most ±20 %."""

    def __init__(self, retry_total: int, backoff_seconds: float) -> None:
        super().__init__(
            retry_total=retry_total,
            retry_connect=retry_total,
            retry_read=retry_total,
            retry_status=retry_total,
            retry_to_secondary=False,
        )
        self._backoff_seconds = backoff_seconds

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        # The policy has already counted the failed attempt, so the first retry sees count == 1.
        nominal = self._backoff_seconds * 2 ** max(settings["count"] - 1, 0)
        return nominal * random.uniform(1 - _JITTER, 1 + _JITTER)


@dataclass(frozen=True)
class StorageBounds:
    timeout_seconds: float  # connect timeout and read timeout of one HTTP attempt
    max_retries: int
    backoff_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "StorageBounds":
        return cls(
            timeout_seconds=settings.storage_timeout_seconds,
            max_retries=settings.storage_max_retries,
            backoff_seconds=settings.storage_retry_backoff_seconds,
        )

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    @property
    def deadline_seconds(self) -> float:
        """The most one operation may take, retries included: every attempt may use its whole
        timeout and every backoff its longest jitter."""
        backoffs = sum(self.backoff_seconds * 2**n for n in range(self.max_retries)) * (1 + _JITTER)
        return round(self.attempts * self.timeout_seconds + backoffs, 3)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's client constructors."""
        return {
            "connection_timeout": self.timeout_seconds,
            "read_timeout": self.timeout_seconds,
            "retry_policy": BoundedRetry(self.max_retries, self.backoff_seconds),
        }

    def describe(self) -> str:
        return (
            f"{self.attempts} attempt(s) of at most {self.timeout_seconds:g} s each, "
            f"deadline {self.deadline_seconds:g} s"
        )


def call_with_deadline(call: Callable[[], T], deadline_seconds: float, what: str) -> T:
    """Run ``call`` in a thread of its own and wait at most ``deadline_seconds`` for it; past
    that, raise ``StorageError`` saying ``what`` did not finish.

    On timeout the thread is left behind, not killed (Python cannot); the SDK's per-attempt
    timeouts end it soon after. A fresh daemon thread per call, rather than a pool, means calls
    stuck on a dead server can never use up the threads that later calls need.
    """
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=f"azure-blob: {what}", daemon=True).start()
    try:
        return future.result(timeout=deadline_seconds)
    except TimeoutError:
        raise StorageError(f"{what} did not finish within its {deadline_seconds:g} s deadline") from None
