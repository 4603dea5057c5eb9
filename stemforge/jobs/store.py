"""Job records and open-job markers on top of any ``Storage`` backend. Blocking: call it from a
thread when in an event loop."""

import contextlib
import time

from stemforge.errors import BlobNotFound, StorageError
from stemforge.jobs.records import JobRecord, OpenJobMarker
from stemforge.jobs.ticket import JobTicket
from stemforge.storage.base import Storage

# Ids start with a letter or digit, so this prefix never collides with an audio_file_id folder.
JOBS_PREFIX = "_jobs"
REFERENCES_PREFIX = f"{JOBS_PREFIX}/references"
_JSON = "application/json"


class JobStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @staticmethod
    def record_path(generation_request_id: str) -> str:
        return f"{JOBS_PREFIX}/records/{generation_request_id}.json"

    @staticmethod
    def marker_path(generation_request_id: str) -> str:
        return f"{JOBS_PREFIX}/open/{generation_request_id}.json"

    def create(self, record: JobRecord) -> bool:
        """Store a new record; ``False`` if one already exists for this id (it is left as is).

        The open marker is written first: a record never exists without one (else a job no sweep
        can see would answer "processing" for ever). A marker without a record is harmless (a
        sweep closes it); when the record cannot be written the marker is removed again."""
        self.beat(record)
        data = record.model_dump_json().encode()
        try:
            created = self._storage.create(
                self.record_path(record.generation_request_id), data, content_type=_JSON
            )
        except StorageError:
            self._close_quietly(record.generation_request_id)
            raise
        return created

    def replace(self, record: JobRecord) -> None:
        """Overwrite (an expired record reused by a new job); the marker first, as in ``create``."""
        self.beat(record)
        self.save(record)

    def _close_quietly(self, generation_request_id: str) -> None:
        with contextlib.suppress(StorageError):  # a marker without a record: the next sweep closes it
            self.close(generation_request_id)

    def get(self, generation_request_id: str) -> JobRecord | None:
        try:
            data = self._storage.get(self.record_path(generation_request_id))
        except BlobNotFound:
            return None
        return JobRecord.model_validate_json(data)

    def save(self, record: JobRecord) -> None:
        record.updated_at = time.time()
        self._storage.put(
            self.record_path(record.generation_request_id),
            record.model_dump_json().encode(),
            content_type=_JSON,
        )

    def beat(self, job: JobRecord | JobTicket, at: float | None = None) -> None:
        """Mark the job open and alive now (or at ``at``)."""
        marker = OpenJobMarker(
            generation_request_id=job.generation_request_id,
            run_id=job.run_id,
            attempt=job.attempt,
            heartbeat_at=time.time() if at is None else at,
        )
        self._storage.put(
            self.marker_path(job.generation_request_id), marker.model_dump_json().encode(), content_type=_JSON
        )

    def close(self, generation_request_id: str) -> None:
        """The job needs no more attention: its marker and claims go."""
        self._storage.delete(self.marker_path(generation_request_id))
        for path in self._storage.list(f"{JOBS_PREFIX}/claims/{generation_request_id}/"):
            self._storage.delete(path)
        self.drop_references(generation_request_id)

    def drop_references(self, generation_request_id: str) -> None:
        """The job's stored reference audio (``stemforge.reference.intake``): read only while it runs."""
        for path in self._storage.list(f"{REFERENCES_PREFIX}/{generation_request_id}/"):
            self._storage.delete(path)

    def open_markers(self) -> list[OpenJobMarker]:
        markers = []
        for path in self._storage.list(f"{JOBS_PREFIX}/open/"):
            try:
                markers.append(OpenJobMarker.model_validate_json(self._storage.get(path)))
            except BlobNotFound:
                continue  # closed meanwhile
        return markers

    def claim(self, record: JobRecord, what: str, now: float, ttl_seconds: float) -> bool:
        """Exactly one caller, across replicas, wins ``what`` (e.g. ``attempt-2``) for this run
        within a window of ``ttl_seconds``. Claims expire: a replica that dies holding one (during
        a callback attempt, say) blocks the work for one window, not for ever."""
        window = int(now // ttl_seconds)
        path = f"{JOBS_PREFIX}/claims/{record.generation_request_id}/{record.run_id}/{what}@{window}"
        return self._storage.create(path, b"", content_type="text/plain")
