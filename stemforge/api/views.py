"""What ``GET /generate/{id}`` shows of a job record."""

import time

from stemforge.api.schemas import JobStatusResponse
from stemforge.jobs.records import JobRecord


def job_status_view(record: JobRecord) -> JobStatusResponse:
    """The callback payload once the job has one, else its progress so far."""
    callback = record.callback.model_dump() if record.callback else None
    progress = record.progress.model_dump() if record.progress else None
    if record.result is not None:
        return JobStatusResponse(
            **record.result.model_dump(),
            stage=record.stage,
            attempt=record.attempt,
            progress=progress,
            callback=callback,
        )
    ticket = record.job_ticket()
    return JobStatusResponse(
        generation_request_id=record.generation_request_id,
        audio_file_id=record.audio_file_id,
        status=record.status,
        processing_time_seconds=round(time.time() - record.created_at, 3),
        parameters=ticket.parameters,
        stage=record.stage,
        attempt=record.attempt,
        target_stems=list(ticket.stems),
        progress=progress,
        callback=callback,
    )
