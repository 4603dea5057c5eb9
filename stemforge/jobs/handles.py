"""The lifecycle's ports over Ray Serve handles: engine replicas stream progress and hand back a
reference to their result; the uploader is called with those references, so the audio goes from
engine to uploader through Ray's object store and never through the ingress."""

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

from ray.exceptions import ActorUnavailableError, ObjectLostError, RayActorError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from stemforge.api.schemas import CallbackPayload
from stemforge.engines.base import EngineEvent, EngineJob
from stemforge.errors import EngineLost, ResultsLost
from stemforge.jobs.callbacks import AttemptOutcome
from stemforge.jobs.ticket import JobTicket

# A replica that died (Ray restarts it) or cannot be reached: worth another try elsewhere.
REPLICA_LOST = (RayActorError, ActorUnavailableError)


class EngineHandles:
    def __init__(self, handles: Mapping[str, DeploymentHandle]) -> None:
        self._streams = {name: handle.options(stream=True) for name, handle in handles.items()}

    async def stream(self, engine: str, job: EngineJob) -> AsyncIterator[EngineEvent]:
        try:
            events = cast(DeploymentResponseGenerator, self._streams[engine].generate.remote(job))
            async for event in events:
                yield event
        except REPLICA_LOST as exc:
            raise EngineLost(f"{engine} replica lost ({type(exc).__name__})") from exc


class UploaderHandle:
    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    async def store(self, ticket: JobTicket, results: Sequence[Any]) -> CallbackPayload:
        try:
            payload: CallbackPayload = await self._handle.store.remote(ticket, list(results))
        except ObjectLostError as exc:  # includes OwnerDiedError: the engine replica that held them
            raise ResultsLost(f"engine results lost before they were stored ({type(exc).__name__})") from exc
        return payload

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        outcome: AttemptOutcome = await self._handle.attempt.remote(url, webhook_id, body)
        return outcome
