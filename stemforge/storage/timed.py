"""A storage backend whose calls are timed: each call's seconds go to ``observe(operation,
backend, seconds)`` (the ``stemforge_storage_seconds`` histogram in a replica). Everything else
about the backend (local disk's file serving, signing) passes through unchanged."""

import time
from collections.abc import Callable
from typing import Any

from stemforge.storage.base import Storage

TIMED_OPERATIONS = frozenset({"put", "create", "delete", "list", "get", "check"})
Observe = Callable[[str, str, float], None]


class TimedStorage:
    def __init__(self, inner: Storage, observe: Observe) -> None:
        self._inner = inner
        self._observe = observe
        self._backend = type(inner).__name__

    @property
    def inner(self) -> Storage:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in TIMED_OPERATIONS:
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self._observe(name, self._backend, time.perf_counter() - started)

        return timed


def timed_storage(storage: Storage) -> Storage | TimedStorage:
    """``storage`` timed where Ray's metrics can be recorded (a replica); as is elsewhere."""
    from stemforge.observability.metrics import StorageMetrics, maybe

    metrics = maybe(StorageMetrics)
    if metrics is None:
        return storage
    return TimedStorage(storage, metrics.observe)
