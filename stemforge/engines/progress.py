"""One job's progress inside an engine replica: the engine's worker thread records fractions,
the replica's event loop reads snapshots to stream them. Pure: no Ray."""

import threading
import time
from collections.abc import Callable, Sequence

from stemforge.engines.base import EngineProgress
from stemforge.errors import JobCancelled

# Below this much done, a rate says little (model loading, the first steps): no estimate yet.
MIN_FRACTION_FOR_ETA = 0.02


class ProgressTracker:
    def __init__(self, stems: Sequence[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._fractions = dict.fromkeys(stems, 0.0)
        self._started: float | None = None  # when the engine first reported: queueing excluded
        self._version = 0
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """The job was cancelled: the engine's next report raises ``JobCancelled``."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled("cancelled by the client")

    def __call__(self, stem: str, fraction: float) -> None:
        """The engine's ``progress`` callback: fractions only ever rise, and stay within 0..1.
        Raises ``JobCancelled`` once the job is cancelled, so engines stop at their next report."""
        self.check()
        with self._lock:
            if self._started is None:
                self._started = self._clock()
            value = min(1.0, max(0.0, float(fraction)))
            if stem in self._fractions and value > self._fractions[stem]:
                self._fractions[stem] = value
                self._version += 1

    @property
    def version(self) -> int:
        """Changes whenever a fraction rose: readers stream a snapshot only when it moved."""
        return self._version

    def snapshot(self) -> EngineProgress:
        with self._lock:
            fractions = dict(self._fractions)
            started = self._started
        done = sum(fractions.values()) / len(fractions) if fractions else 1.0
        eta = None
        if started is not None and MIN_FRACTION_FOR_ETA <= done < 1.0:
            elapsed = self._clock() - started
            eta = round(elapsed * (1.0 - done) / done, 1)
        return EngineProgress(fractions=fractions, eta_seconds=eta)
