"""The durable record of a job: a small JSON manifest per ``generation_request_id``, kept in the
configured storage so it survives restarts and every replica sees it."""

import hashlib
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from stemforge.api.schemas import CallbackPayload
from stemforge.jobs.ticket import JobTicket

JobStatus = Literal["processing", "completed", "failed"]

_TICKET = TypeAdapter(JobTicket)


class CallbackAttemptRecord(BaseModel):
    at: float
    status_code: int | None = None
    error: str | None = None


class CallbackState(BaseModel):
    url: str
    webhook_id: str  # the same on every retry, so receivers can de-duplicate
    attempts: list[CallbackAttemptRecord] = Field(default_factory=list)
    next_attempt_at: float | None = None  # None once delivered or given up
    delivered: bool = False
    gave_up: bool = False

    @property
    def finished(self) -> bool:
        return self.delivered or self.gave_up


class JobRecord(BaseModel):
    generation_request_id: str
    audio_file_id: str
    run_id: str  # one per accepted job (the ticket's)
    fingerprint: str  # of the request body: a same-id request with another body is a conflict
    status: JobStatus = "processing"
    stage: str = "queued"  # queued, generating, storing, calling back, done
    attempt: int = 1  # runs of this job: the first, then resumes after a crash
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    ticket: dict[str, Any]
    result: CallbackPayload | None = None
    callback: CallbackState | None = None
    error: str | None = None

    def job_ticket(self) -> JobTicket:
        return _TICKET.validate_python(self.ticket)

    @classmethod
    def for_ticket(cls, ticket: JobTicket, fingerprint: str) -> "JobRecord":
        return cls(
            run_id=ticket.run_id,
            generation_request_id=ticket.generation_request_id,
            audio_file_id=ticket.audio_file_id,
            fingerprint=fingerprint,
            ticket=_TICKET.dump_python(ticket, mode="json"),
        )


def fingerprint(body_json: str) -> str:
    return hashlib.sha256(body_json.encode()).hexdigest()


class OpenJobMarker(BaseModel):
    """One small blob per unfinished job (running, or with a callback still to deliver), so the
    janitor lists only what needs attention rather than every job ever made."""

    generation_request_id: str
    run_id: str
    attempt: int
    heartbeat_at: float
