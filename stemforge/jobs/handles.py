"""The lifecycle's ports over Ray Serve handles: engine replicas stream progress, then their
result, which is read here only as a reference (the stream's items as ``ObjectRef``s, owned by
this caller); the uploader is called with those references as arguments, so Ray hands it the
audio from the object store and the ingress never holds it."""

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

from ray.exceptions import ActorUnavailableError, ObjectLostError, RayActorError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from stemforge.api.schemas import CallbackPayload
from stemforge.engines.base import EngineDone, EngineEvent, EngineJob
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
            response = cast(DeploymentResponseGenerator, self._streams[engine].generate.remote(job))
            items = await response._to_object_ref_gen()
            async for item in items:
                event = await item  # progress: a few numbers
                if isinstance(event, EngineDone):
                    # The next item is the result: its reference, unread.
                    yield EngineDone(result=await items.__anext__())
                    return
                yield event
        except REPLICA_LOST as exc:
            raise EngineLost(f"{engine} replica lost ({type(exc).__name__})") from exc
        raise EngineLost(f"the {engine} engine ended its stream without a result")


class UploaderHandle:
    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    async def store(self, ticket: JobTicket, results: Sequence[Any]) -> CallbackPayload:
        try:
            # As arguments of their own, Ray resolves the references for the uploader.
            payload: CallbackPayload = await self._handle.store.remote(ticket, *results)
        except ObjectLostError as exc:  # the node whose object store held them is gone
            raise ResultsLost(f"engine results lost before they were stored ({type(exc).__name__})") from exc
        except REPLICA_LOST as exc:  # the uploader died mid-store: generate again, store elsewhere
            raise ResultsLost(f"uploader replica lost while storing ({type(exc).__name__})") from exc
        return payload

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        outcome: AttemptOutcome = await self._handle.attempt.remote(url, webhook_id, body)
        return outcome
