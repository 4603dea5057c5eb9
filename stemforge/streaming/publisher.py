"""An engine replica's side of streaming: the engine's worker thread hands stems' final audio to
``sink``; the replica's event loop sends it on to the relay in chunks (``flush``), and a
cancel the relay reports stops the engine at its next report (through its progress tracker).

A relay that fails never fails the job: streaming stops for it, the job goes on.
"""

import logging
import queue
import time
from typing import Any

import numpy as np

from stemforge.engines.base import StreamTarget
from stemforge.engines.progress import ProgressTracker

logger = logging.getLogger(__name__)

# At most this much audio in one call to the relay (10 s: 3.5 MB of float32 stereo).
MAX_CALL_FRAMES = 10 * 44_100
# How often a job with nothing to publish asks the relay whether it was cancelled.
CANCEL_POLL_SECONDS = 0.5


class StreamPublisher:
    def __init__(self, relay: Any, target: StreamTarget, tracker: ProgressTracker) -> None:
        self._relay = relay  # a handle to the StreamRelay deployment
        self._target = target
        self._tracker = tracker
        self._outbox: queue.SimpleQueue[tuple[str, int, np.ndarray]] = queue.SimpleQueue()
        self._frames: dict[str, int] = {}  # per stem, frames handed over so far (worker thread)
        self._working = True
        self._polled_at = 0.0

    def sink(self, stem: str, audio: np.ndarray) -> None:
        """The engine's ``AudioSink``, called from its worker thread: queue the audio in chunks."""
        self._tracker.check()
        start = self._frames.get(stem, 0)
        for offset in range(0, audio.shape[0], MAX_CALL_FRAMES):
            self._outbox.put((stem, start + offset, audio[offset : offset + MAX_CALL_FRAMES]))
        self._frames[stem] = start + audio.shape[0]

    async def open(self) -> None:
        if await self._call("open", self._target.job_id, list(self._target.stems)):
            self._tracker.cancel()

    async def flush(self) -> None:
        """Send what the engine has handed over, a stem's queued audio in as few calls as fit
        ``MAX_CALL_FRAMES`` (a call costs more than its bytes); learn of a cancel."""
        queued: list[tuple[str, int, np.ndarray]] = []
        while not self._outbox.empty():
            queued.append(self._outbox.get())
        for stem, start, audio in _grouped(queued):
            if not self._working:
                return
            if await self._call("publish", self._target.job_id, stem, start, audio):
                self._tracker.cancel()
                return
        sent = bool(queued)
        now = time.monotonic()
        if self._working and not sent and now - self._polled_at >= CANCEL_POLL_SECONDS:
            self._polled_at = now
            if await self._call("is_cancelled", self._target.job_id):
                self._tracker.cancel()

    async def finish(self, stems: tuple[str, ...]) -> None:
        await self.flush()
        for stem in stems:
            await self._call("finish_stem", self._target.job_id, stem)

    async def _call(self, method: str, *args: Any) -> Any:
        if not self._working:
            return False
        try:
            return await getattr(self._relay, method).remote(*args)
        except Exception as exc:
            self._working = False
            logger.warning(
                "job %s: streaming stopped, the relay's %s failed (%s); the job goes on",
                self._target.job_id,
                method,
                exc,
            )
            return False


def _grouped(queued: list[tuple[str, int, np.ndarray]]) -> list[tuple[str, int, np.ndarray]]:
    """Consecutive contiguous chunks of one stem joined, up to ``MAX_CALL_FRAMES`` each."""
    groups: list[tuple[str, int, list[np.ndarray]]] = []
    for stem, start, chunk in queued:
        if groups:
            last_stem, last_start, parts = groups[-1]
            frames = sum(part.shape[0] for part in parts)
            if (
                last_stem == stem
                and last_start + frames == start
                and frames + chunk.shape[0] <= MAX_CALL_FRAMES
            ):
                parts.append(chunk)
                continue
        groups.append((stem, start, [chunk]))
    return [
        (stem, start, parts[0] if len(parts) == 1 else np.concatenate(parts)) for stem, start, parts in groups
    ]
