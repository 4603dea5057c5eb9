"""Recorded outcomes a replica remembers, so a repeated request is answered without storage.

A recorded outcome (``completed`` or ``failed``) cannot change while its idempotency window
lasts: only a finished job past its window is replaced. Any replica may therefore keep one and
answer repeats from it until shortly before the window ends.
"""

from collections import OrderedDict
from dataclasses import dataclass

from stemforge.jobs.records import JobRecord, JobStatus

# Recorded outcomes kept per replica to answer repeats from memory (about 500 bytes each).
KNOWN_OUTCOMES = 4096
# An outcome known from memory stops answering this long before its idempotency window ends, so
# clocks that differ a little between replicas never let it outlive a replacement made elsewhere.
CLOCK_SKEW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class KnownOutcome:
    """What a repeated request's answer needs of a job whose outcome was recorded."""

    generation_request_id: str
    run_id: str
    fingerprint: str
    status: JobStatus
    created_at: float


class KnownOutcomes:
    """The most recently seen recorded outcomes (``completed`` or ``failed``), at most
    ``capacity``, each for as long as its record cannot be replaced: ``window_seconds`` after the
    job was accepted, less ``CLOCK_SKEW_SECONDS``."""

    def __init__(self, capacity: int, window_seconds: float) -> None:
        self._capacity = capacity
        self._lifetime = window_seconds - CLOCK_SKEW_SECONDS
        self._entries: OrderedDict[str, KnownOutcome] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, record: JobRecord) -> None:
        """``record`` as recorded in storage (written or read back); one still processing is
        ignored, since another replica may move it on."""
        if record.status == "processing":
            return
        job_id = record.generation_request_id
        self._entries[job_id] = KnownOutcome(
            job_id, record.run_id, record.fingerprint, record.status, record.created_at
        )
        self._entries.move_to_end(job_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def get(self, generation_request_id: str, now: float) -> KnownOutcome | None:
        known = self._entries.get(generation_request_id)
        if known is None:
            return None
        if now - known.created_at > self._lifetime:
            del self._entries[generation_request_id]  # replaceable soon: storage decides
            return None
        self._entries.move_to_end(generation_request_id)
        return known
