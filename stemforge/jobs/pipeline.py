"""Running jobs inside an ingress replica: fan the stems out to their engines, hand the results to
the uploader, keep the job's heartbeat while it runs, and make sure the client hears back
whatever happens."""

import asyncio
import logging
from collections.abc import Mapping

from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.handle import DeploymentHandle

from stemforge.engines.base import EngineJob, EngineResult
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500
# A replica that died (Ray restarts it) or cannot be reached: worth another try elsewhere.
REPLICA_LOST = (RayActorError, ActorUnavailableError)


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for the callback: the engine's own exception, not Ray's wrapper."""
    cause = getattr(exc, "cause", None) or exc
    text = str(getattr(cause, "message", "") or cause).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(cause).__name__}: {first}"[:MAX_REASON_CHARS]


class JobRunner:
    def __init__(
        self,
        engines: Mapping[str, DeploymentHandle],
        uploader: DeploymentHandle,
        store: JobStore,
        *,
        heartbeat_seconds: float,
        engine_max_attempts: int,
    ) -> None:
        self._engines = engines
        self._uploader = uploader
        self._store = store
        self._heartbeat_seconds = heartbeat_seconds
        self._engine_max_attempts = engine_max_attempts
        self._active: set[str] = set()

    @property
    def active(self) -> int:
        return len(self._active)

    def is_running(self, generation_request_id: str) -> bool:
        return generation_request_id in self._active

    async def run(self, ticket: JobTicket) -> None:
        self._active.add(ticket.generation_request_id)
        heartbeat = asyncio.create_task(self._beat(ticket))
        try:
            try:
                results = await asyncio.gather(
                    *(self._generate(ticket, engine, stems) for engine, stems in ticket.routes.items())
                )
            finally:
                heartbeat.cancel()
            await self._uploader.publish.remote(ticket, *results)
        except Exception as exc:
            reason = f"generation failed: {describe_failure(exc)}"
            logger.error("job %s: %s", ticket.generation_request_id, reason)
            try:
                await self._uploader.fail.remote(ticket, reason)
            except Exception:
                # The record stays open: the janitor will retry the job or its failure callback.
                logger.exception(
                    "job %s: the failure callback could not be sent", ticket.generation_request_id
                )
        finally:
            self._active.discard(ticket.generation_request_id)

    async def _generate(self, ticket: JobTicket, engine: str, stems: tuple[str, ...]) -> EngineResult:
        job = EngineJob(ticket.spec, stems)
        for _ in range(self._engine_max_attempts - 1):
            try:
                result: EngineResult = await self._engines[engine].generate.remote(job)
                return result
            except REPLICA_LOST as exc:
                logger.warning(
                    "job %s: %s replica lost (%s); retrying on another replica",
                    ticket.generation_request_id,
                    engine,
                    type(exc).__name__,
                )
        last: EngineResult = await self._engines[engine].generate.remote(job)
        return last

    async def _beat(self, ticket: JobTicket) -> None:
        # The marker was written when the job was accepted; refresh it so no janitor takes over.
        while True:
            await asyncio.sleep(self._heartbeat_seconds)
            try:
                await asyncio.to_thread(self._store.beat, ticket)
            except Exception as exc:
                logger.warning("job %s: heartbeat not written: %s", ticket.generation_request_id, exc)
