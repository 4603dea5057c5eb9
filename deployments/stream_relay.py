"""The stream relay: one replica holding every running job's audio as it is made, so any
ingress replica can serve a listener and a cancel reaches the engines, whichever replicas
accepted the job and render it.

Engine replicas publish each stem's final audio here as it becomes final (``publish`` answers
whether the job was cancelled); ingress replicas stream it to listeners (``listen``); many
listeners of one stem read the same buffer (``stemforge.streaming.hub``). In memory by design:
a relay restart loses live streams, never a job (listeners of finished jobs are served from
storage by the ingress).
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from ray import serve

from stemforge.observability.logs import route_library_logs_to_serve
from stemforge.streaming.hub import StreamHub, StreamNotFound

# How long a listener may wait for a job's stream to open (the job queued behind others).
OPEN_WAIT_SECONDS = 600.0
OPEN_POLL_SECONDS = 0.1
# A cancel that arrives before the job's stream opened is kept this long.
EARLY_CANCEL_SECONDS = 3600.0
# A finished job's audio stays this long for listeners still catching up; later ones are served
# from storage by the ingress (the same samples). Running jobs hold about 350 KB per second of
# stem audio here.
RETAIN_SECONDS = 30.0


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.05}, max_ongoing_requests=1000)
class StreamRelay:
    def __init__(self) -> None:
        route_library_logs_to_serve()
        self._hub = StreamHub(retain_seconds=RETAIN_SECONDS)
        self._early_cancels: dict[str, float] = {}

    async def open(self, job_id: str, stems: Sequence[str]) -> bool:
        """Declare a job's stems (idempotent); whether it is cancelled already."""
        try:
            self._hub.open(job_id, stems)
        except ValueError:
            # Another attempt declared it differently (a resumed job): start afresh.
            self._hub.finish_job(job_id, "superseded")
            self._hub.reset(job_id)
        if self._early_cancels.pop(job_id, None) is not None:
            self._hub.cancel(job_id)
        return self._hub.is_cancelled(job_id)

    async def publish(self, job_id: str, stem: str, start_frame: int, chunk: np.ndarray) -> bool:
        """Append a stem's next audio; ``True``: the job was cancelled, stop."""
        return self._hub.publish(job_id, stem, start_frame, chunk)

    async def finish_stem(self, job_id: str, stem: str) -> None:
        self._hub.finish_stem(job_id, stem)

    async def finish_job(self, job_id: str, outcome: str) -> None:
        with contextlib.suppress(StreamNotFound):  # nothing streamed for it (refused, failed early)
            self._hub.finish_job(job_id, outcome)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: its engines stop at their next chunk or progress report."""
        if self._hub.cancel(job_id):
            return True
        if not self._hub.is_cancelled(job_id):
            now = time.monotonic()
            self._early_cancels = {
                j: t for j, t in self._early_cancels.items() if now - t < EARLY_CANCEL_SECONDS
            }
            self._early_cancels[job_id] = now  # not opened yet: applied when it opens
        return True

    async def is_cancelled(self, job_id: str) -> bool:
        return self._hub.is_cancelled(job_id) or job_id in self._early_cancels

    async def listen(
        self, job_id: str, stem: str, from_frame: int = 0, wait_seconds: float = OPEN_WAIT_SECONDS
    ) -> AsyncIterator[dict[str, Any] | np.ndarray]:
        """First ``{"sample_rate", "channels"}`` (or ``{"missing": True}`` when the job's stream
        did not open within ``wait_seconds``), then the audio chunks, then ``{"end": reason}``."""
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                listener = self._hub.listen(job_id, stem, from_frame)
                break
            except StreamNotFound:
                if time.monotonic() >= deadline:
                    yield {"missing": True}
                    return
                await asyncio.sleep(OPEN_POLL_SECONDS)
        yield {"sample_rate": listener.sample_rate, "channels": listener.channels}
        async for chunk in listener:
            yield np.asarray(chunk)
        end = listener.end
        yield {"end": end.reason if end is not None else "complete"}
