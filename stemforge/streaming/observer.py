"""Tells the stream relay when a job's outcome is known, so its listeners end (a stem that will
never finish, say of a failed job, stops its listeners instead of holding them)."""

import asyncio
import logging
from typing import Any

from stemforge.jobs.ticket import JobTicket
from stemforge.observability.events import NullObserver

logger = logging.getLogger(__name__)


class RelayObserver(NullObserver):
    def __init__(self, relay: Any) -> None:
        self._relay = relay  # a handle to the StreamRelay deployment
        self._tasks: set[asyncio.Task[None]] = set()

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        # In the background: the job's callback never waits on the relay.
        task = asyncio.get_running_loop().create_task(self._finish(ticket.generation_request_id, status))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, job_id: str, status: str) -> None:
        try:
            await self._relay.finish_job.remote(job_id, status)
        except Exception as exc:
            logger.warning("job %s: the stream relay was not told it ended (%s)", job_id, exc)
