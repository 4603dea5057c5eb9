"""One job's path through the graph: fan the stems out to their engines, hand the results to the
uploader, and make sure the client hears back whatever happens."""

import logging
from collections.abc import Mapping

from ray.serve.handle import DeploymentHandle

from deployments.engines.base import EngineJob
from deployments.jobs.ticket import JobTicket

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for the callback: the engine's own exception, not Ray's wrapper."""
    cause = getattr(exc, "cause", None) or exc
    text = str(getattr(cause, "message", "") or cause).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(cause).__name__}: {first}"[:MAX_REASON_CHARS]


async def run_job(
    ticket: JobTicket, engines: Mapping[str, DeploymentHandle], uploader: DeploymentHandle
) -> None:
    try:
        # Responses go to the uploader unresolved: the audio moves engine -> uploader through the
        # object store without passing through this replica.
        responses = [
            engines[engine].generate.remote(EngineJob(ticket.spec, stems))
            for engine, stems in ticket.routes.items()
        ]
        await uploader.publish.remote(ticket, *responses)
    except Exception as exc:
        reason = f"generation failed: {describe_failure(exc)}"
        logger.error("job %s: %s", ticket.generation_request_id, reason)
        try:
            await uploader.fail.remote(ticket, reason)
        except Exception:
            logger.exception("job %s: the failure callback could not be sent", ticket.generation_request_id)
