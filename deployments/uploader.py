"""The uploader deployment: writes stems to storage and calls the client back."""

import asyncio

from ray import serve

from deployments.api.schemas import CallbackPayload
from deployments.engines.base import EngineResult
from deployments.jobs.callbacks import CallbackSender
from deployments.jobs.publisher import ResultPublisher
from deployments.jobs.ticket import JobTicket
from deployments.settings import Settings
from deployments.storage.factory import storage_from_settings

STORAGE_CHECK_TIMEOUT_SECONDS = 2.0


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Uploader:
    def __init__(self, settings: Settings) -> None:
        # Built here, at start-up: bad storage settings fail the deployment, not the first job.
        self._storage = storage_from_settings(settings)
        sender = CallbackSender(
            timeout_seconds=settings.callback_timeout_seconds,
            max_attempts=settings.callback_max_attempts,
            backoff_seconds=settings.callback_retry_backoff_seconds,
        )
        self._publisher = ResultPublisher(self._storage, sender, settings.wav_subtype)

    async def publish(self, ticket: JobTicket, *results: EngineResult) -> CallbackPayload:
        return await self._publisher.publish(ticket, results)

    async def fail(self, ticket: JobTicket, reason: str) -> CallbackPayload:
        return await self._publisher.fail(ticket, reason)

    async def storage_status(self) -> str:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._storage.check), timeout=STORAGE_CHECK_TIMEOUT_SECONDS
            )
        except TimeoutError:
            return f"unreachable: no answer within {STORAGE_CHECK_TIMEOUT_SECONDS:g} s"
