"""A real storage check for ``/health`` that is cached and never slow.

The probe (a real request to the account) runs in a background thread. A caller waits for it
until the probe is ``wait_seconds`` old; if storage hangs, the caller gets "no answer" as the
reason while the probe keeps running, and a later call picks up its result. At most one probe
runs at a time, so a flood of health checks against a dead account costs one request, not one
each.
"""

import threading
import time
from collections.abc import Callable


class CachedProbe:
    def __init__(
        self,
        probe: Callable[[], str],
        *,
        ttl_seconds: float = 5.0,
        wait_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._ttl = ttl_seconds
        self._wait = wait_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._result: str | None = None
        self._result_at = float("-inf")
        self._running: threading.Event | None = None  # set when the running probe finishes
        self._running_since = 0.0

    def status(self) -> str:
        with self._lock:
            if self._result is not None and self._clock() - self._result_at < self._ttl:
                return self._result
            done = self._running or self._start_probe()
            started = self._running_since
        # A probe already running longer than the wait gets no more of this caller's time.
        if done.wait(max(0.0, self._wait - (self._clock() - started))):
            with self._lock:
                if self._result is not None:
                    return self._result
        return f"no answer from storage after {self._clock() - started:.1f} s"

    def _start_probe(self) -> threading.Event:
        done = threading.Event()
        self._running = done
        self._running_since = self._clock()
        threading.Thread(target=self._run, args=(done,), name="azure-blob: health probe", daemon=True).start()
        return done

    def _run(self, done: threading.Event) -> None:
        try:
            result = self._probe()
        except Exception as exc:  # the probe should map its errors; this keeps the thread alive
            result = f"health probe failed: {type(exc).__name__}: {exc}"
        with self._lock:
            self._result = result
            self._result_at = self._clock()
            self._running = None
        done.set()
