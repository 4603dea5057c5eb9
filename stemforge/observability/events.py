"""The observer port: what happens to jobs, as calls. The lifecycle and the callback delivery
call it; implementations count (``metrics``), log (``logs``), or do nothing (tests, scripts)."""

from collections.abc import Sequence
from typing import Protocol

from stemforge.jobs.ticket import JobTicket


class JobObserver(Protocol):
    def accepted(self, ticket: JobTicket) -> None:
        """A new job was recorded (repeats are not new jobs)."""

    def stage(self, ticket: JobTicket, stage: str, seconds_in_previous: float) -> None:
        """The job moved to ``stage`` after ``seconds_in_previous`` in the stage before."""

    def generated(self, ticket: JobTicket, engine: str, stems: Sequence[str], seconds: float) -> None:
        """``engine`` finished its stems of the job in ``seconds`` (queueing included)."""

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        """The job's outcome is known (``completed`` or ``failed`` and why), ``seconds`` after it
        was accepted; its callback may still be on its way."""

    def callback_attempt(self, outcome: str) -> None:
        """One callback attempt: ``delivered``, ``retry`` or ``gave_up``."""

    def jobs_in_stages(self, counts: dict[str, int]) -> None:
        """How many of this replica's jobs are in each stage now."""


class NullObserver:
    """Observes nothing: the default where no one is watching."""

    def accepted(self, ticket: JobTicket) -> None:
        pass

    def stage(self, ticket: JobTicket, stage: str, seconds_in_previous: float) -> None:
        pass

    def generated(self, ticket: JobTicket, engine: str, stems: Sequence[str], seconds: float) -> None:
        pass

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        pass

    def callback_attempt(self, outcome: str) -> None:
        pass

    def jobs_in_stages(self, counts: dict[str, int]) -> None:
        pass


class Observers:
    """Several observers as one; one that raises never disturbs the job or the others."""

    def __init__(self, *observers: JobObserver) -> None:
        self._observers = observers

    def _each(self, method: str, *args: object) -> None:
        for observer in self._observers:
            try:
                getattr(observer, method)(*args)
            except Exception:  # pragma: no cover - an observer's bug must not fail a job
                import logging

                logging.getLogger(__name__).exception("observer %r failed in %s", observer, method)

    def accepted(self, ticket: JobTicket) -> None:
        self._each("accepted", ticket)

    def stage(self, ticket: JobTicket, stage: str, seconds_in_previous: float) -> None:
        self._each("stage", ticket, stage, seconds_in_previous)

    def generated(self, ticket: JobTicket, engine: str, stems: Sequence[str], seconds: float) -> None:
        self._each("generated", ticket, engine, stems, seconds)

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        self._each("finished", ticket, status, reason, seconds)

    def callback_attempt(self, outcome: str) -> None:
        self._each("callback_attempt", outcome)

    def jobs_in_stages(self, counts: dict[str, int]) -> None:
        self._each("jobs_in_stages", counts)


def failure_reason(error: str | None) -> str | None:
    """A failure's category, fit for a metric label: the error's text before its first colon
    ("generation failed", "storing stems failed"); the detail stays in the log and the callback."""
    if not error:
        return None
    return error.split(":", 1)[0].strip()[:64] or "unknown"


def engines_of(ticket: JobTicket) -> str:
    """The engines a job's stems went to, as one label value ("musicgen+procedural")."""
    return "+".join(sorted(ticket.routes))
