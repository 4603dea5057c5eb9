"""The durable record of a job: a small JSON manifest per ``generation_request_id``, kept in the
configured storage so it survives restarts and every replica sees it."""

import hashlib
import time
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from stemforge.api.schemas import CallbackPayload
from stemforge.jobs.ticket import JobTicket

JobStatus = Literal["processing", "completed", "failed", "cancelled"]


class Stage(StrEnum):
    """Where a job is in its life (``stemforge.jobs.lifecycle`` moves it on)."""

    ACCEPTED = "accepted"  # recorded, 202 sent, not started (or waiting to be resumed)
    GENERATING = "generating"  # engines rendering its stems
    STORING = "storing"  # the uploader writing the stems
    CALLING_BACK = "calling back"  # outcome known, callback not yet delivered or given up
    COMPLETED = "completed"
    FAILED = "failed"


StemState = Literal["queued", "generating", "done", "failed"]


class StemProgress(BaseModel):
    engine: str
    state: StemState = "queued"
    fraction: float = 0.0  # of this stem's rendering done, 0..1


class JobProgress(BaseModel):
    stems: dict[str, StemProgress]
    fraction: float = 0.0  # of the whole job's rendering, 0..1 (the mean over stems)
    eta_seconds: float | None = None  # until the last stem is rendered, where engines can tell

    @classmethod
    def queued(cls, routes: dict[str, tuple[str, ...]], stems: tuple[str, ...]) -> "JobProgress":
        engine_of = {stem: engine for engine, group in routes.items() for stem in group}
        return cls(stems={stem: StemProgress(engine=engine_of[stem]) for stem in stems})


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
    stage: Stage = Stage.ACCEPTED
    attempt: int = 1  # runs of this job: the first, then resumes after a crash
    progress: JobProgress | None = None
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
            progress=JobProgress.queued(ticket.routes, ticket.stems),
        )


def fingerprint(body_json: str) -> str:
    return hashlib.sha256(body_json.encode()).hexdigest()


class OpenJobMarker(BaseModel):
    """One small blob per unfinished job (running, or with a callback still to deliver), so the
    sweeps list only what needs attention rather than every job ever made."""

    generation_request_id: str
    run_id: str
    attempt: int
    heartbeat_at: float
