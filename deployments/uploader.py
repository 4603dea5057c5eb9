"""The uploader deployment: writes stems to storage, records the outcome and calls the client back."""

import asyncio

from ray import serve

from stemforge.api.schemas import CallbackPayload
from stemforge.engines.base import EngineResult
from stemforge.jobs.callbacks import CallbackClient, CallbackDelivery
from stemforge.jobs.publisher import ResultPublisher
from stemforge.jobs.signing import CallbackSigner
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.settings import Settings
from stemforge.storage.factory import storage_from_settings

STORAGE_CHECK_TIMEOUT_SECONDS = 2.0


def callback_delivery(settings: Settings) -> CallbackDelivery:
    secret = settings.callback_signing_secret
    client = CallbackClient(
        timeout_seconds=settings.callback_timeout_seconds,
        allowed_hosts=settings.callback_allowed_hosts,
        signer=CallbackSigner(secret.get_secret_value()) if secret else None,
    )
    return CallbackDelivery(
        client, settings.callback_retry_schedule, settings.callback_inline_retry_max_seconds
    )


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Uploader:
    def __init__(self, settings: Settings) -> None:
        # Built here, at start-up: bad storage or signing settings fail the deployment, not a job.
        self._storage = storage_from_settings(settings)
        self._publisher = ResultPublisher(
            self._storage, JobStore(self._storage), callback_delivery(settings), settings.wav_subtype
        )

    async def publish(self, ticket: JobTicket, *results: EngineResult) -> CallbackPayload:
        return await self._publisher.publish(ticket, results)

    async def fail(self, ticket: JobTicket, reason: str) -> CallbackPayload:
        return await self._publisher.fail(ticket, reason)

    async def deliver_due(self, generation_request_id: str) -> None:
        await self._publisher.deliver_due(generation_request_id)

    async def storage_status(self) -> str:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._storage.check), timeout=STORAGE_CHECK_TIMEOUT_SECONDS
            )
        except TimeoutError:
            return f"unreachable: no answer within {STORAGE_CHECK_TIMEOUT_SECONDS:g} s"
