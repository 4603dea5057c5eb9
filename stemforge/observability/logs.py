"""One structured log line per job event, with ``generation_request_id``, engine, stage and
duration: one request can be followed across the ingress, the engines and the uploader.

Lines go through the ``stemforge.events`` logger with the fields as ``extra``: under Ray's JSON
log encoding (``logging_config.encoding: JSON`` in serve_config.yaml) each event is one JSON
object with those keys; under text encoding Ray appends them as ``key=value``.
"""

import logging
from collections.abc import Sequence
from typing import Any

from stemforge.jobs.ticket import JobTicket
from stemforge.observability.events import engines_of

EVENTS_LOGGER = "stemforge.events"
logger = logging.getLogger(EVENTS_LOGGER)


def log_event(event: str, **fields: Any) -> None:
    """``event`` ("job.accepted", "engine.generated", ...) with its fields, one line."""
    logger.info(event, extra={"event": event, **{k: v for k, v in fields.items() if v is not None}})


class EventLog:
    """The observer that logs (see the module docstring)."""

    def accepted(self, ticket: JobTicket) -> None:
        log_event(
            "job.accepted",
            generation_request_id=ticket.generation_request_id,
            engine=engines_of(ticket),
            stems=",".join(ticket.stems),
            duration_seconds=ticket.spec.duration_seconds,
        )

    def stage(self, ticket: JobTicket, stage: str, seconds_in_previous: float) -> None:
        log_event(
            "job.stage",
            generation_request_id=ticket.generation_request_id,
            engine=engines_of(ticket),
            stage=stage,
            seconds_in_previous=round(seconds_in_previous, 3),
        )

    def generated(self, ticket: JobTicket, engine: str, stems: Sequence[str], seconds: float) -> None:
        log_event(
            "engine.generated",
            generation_request_id=ticket.generation_request_id,
            engine=engine,
            stems=",".join(stems),
            seconds=round(seconds, 3),
        )

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        log_event(
            "job.finished",
            generation_request_id=ticket.generation_request_id,
            engine=engines_of(ticket),
            status=status,
            reason=reason,
            seconds=round(seconds, 3),
        )

    def callback_attempt(self, outcome: str) -> None:
        log_event("callback.attempt", outcome=outcome)

    def jobs_in_stages(self, counts: dict[str, int]) -> None:
        pass  # a gauge, not an event
