"""One structured log line per job event, with ``generation_request_id``, engine, stage and
duration: one request can be followed across the ingress, the engines and the uploader.

Lines go through a child of Serve's ``ray.serve`` logger with the fields as ``extra``: in a
replica only that logger has handlers (the root logger drops INFO), and under Serve's JSON log
encoding (``logging_config.encoding: JSON`` in serve_config.yaml) each event is one JSON object
with those keys beside Serve's own (deployment, replica, request_id); under text encoding they
are appended as ``key=value``.
"""

import logging
from collections.abc import Sequence
from typing import Any

from stemforge.jobs.ticket import JobTicket
from stemforge.observability.events import engines_of

EVENTS_LOGGER = "ray.serve.stemforge.events"  # see the module docstring: under ray.serve
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


def route_library_logs_to_serve() -> None:
    """In a replica, send the library's own loggers (``stemforge.*``: warnings about retries,
    fallbacks, lost replicas) through Serve's handlers, in its format and files, rather than to
    the root logger, which drops INFO there. Call it from each deployment's ``__init__``."""
    serve_logger = logging.getLogger("ray.serve")
    library = logging.getLogger("stemforge")
    if not serve_logger.handlers or library.handlers:
        return
    for handler in serve_logger.handlers:
        library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
