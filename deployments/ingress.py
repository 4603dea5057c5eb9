"""The HTTP front door: FastAPI routes on a Ray Serve ingress deployment. Thin on purpose: it
validates, answers at once and hands the job to the graph.

No ``from __future__ import annotations`` here: FastAPI must see real annotations, or it reads
request bodies as query parameters.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import FileResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.api.errors import install_error_handlers
from deployments.api.requests import applied_parameters, check_limits, resolve_spec
from deployments.api.schemas import GenerateAccepted, GenerateRequest, HealthResponse, HealthServices
from deployments.errors import BlobNotFound
from deployments.jobs.pipeline import run_job
from deployments.jobs.ticket import JobTicket
from deployments.routing import RoutingTable
from deployments.settings import Settings
from deployments.storage.local import BLOB_ROUTE, LocalDiskStorage

logger = logging.getLogger(__name__)

STATUS_TIMEOUT_SECONDS = 2.0

app = FastAPI(
    title="stemforge",
    summary="Music stems from a prompt and musical conditioning.",
    version="0.1.0",
)
install_error_handlers(app)


async def _answer(response: Any, timeout: float) -> Any:
    """Await a handle call, giving up after ``timeout`` seconds (health must stay fast)."""

    async def wait() -> Any:
        return await response

    try:
        return await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        response.cancel()
        raise


def _media_type(suffix: str) -> str:
    return {".wav": "audio/wav", ".mid": "audio/midi", ".json": "application/json"}.get(
        suffix, "application/octet-stream"
    )


@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=256)
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        engines: dict[str, DeploymentHandle],
        uploader: DeploymentHandle,
        routing: RoutingTable,
        settings: Settings,
    ) -> None:
        self._engines = engines
        self._uploader = uploader
        self._routing = routing
        self._settings = settings
        self._local_storage = (
            None
            if settings.azure_storage_connection_string or settings.azure_storage_account_url
            else LocalDiskStorage(
                settings.local_storage_dir, settings.blob_container_name, settings.public_base_url
            )
        )

    @app.get("/health", response_model=HealthResponse)
    async def health(self) -> HealthResponse:
        names = ("procedural", "musicgen", "stable_audio")
        engine_reports, storage = await asyncio.gather(
            asyncio.gather(*(self._engine_report(name) for name in names)),
            self._storage_status(),
        )
        engines = dict(zip(names, engine_reports, strict=True))
        needed = self._routing.engines(self._settings.mode)
        healthy = storage == "connected" and all(engines[name]["status"] == "available" for name in needed)
        return HealthResponse(
            status="healthy" if healthy else "degraded",
            timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
            services=HealthServices(
                stable_audio=engines["stable_audio"]["status"],
                musicgen=engines["musicgen"]["status"],
                storage=storage,
                mode=self._settings.mode,
            ),
            gpu_available=any(report["device"].startswith("cuda") for report in engine_reports),
            engines={name: engines[name] for name in names if name in self._engines},
        )

    @app.post("/generate", status_code=202, response_model=GenerateAccepted)
    async def generate(self, request: GenerateRequest, background: BackgroundTasks) -> GenerateAccepted:
        check_limits(request, self._settings)
        spec = resolve_spec(request)
        stems = tuple(stem.value for stem in request.target_stems)
        ticket = JobTicket(
            generation_request_id=request.generation_request_id,
            audio_file_id=request.audio_file_id,
            callback_url=str(request.callback_url) if request.callback_url else None,
            accepted_at=time.time(),
            stems=stems,
            routes=self._routing.route(self._settings.mode, stems),
            spec=spec,
            parameters=applied_parameters(spec),
        )
        # A background task keeps the request "in flight" for Ray Serve, so a graceful shutdown
        # drains it instead of dropping it.
        background.add_task(run_job, ticket, self._engines, self._uploader)
        logger.info("job %s accepted: %s", ticket.generation_request_id, ticket.routes)
        return GenerateAccepted(generation_request_id=request.generation_request_id)

    @app.get(BLOB_ROUTE + "/{container}/{path:path}", include_in_schema=False)
    async def download(self, container: str, path: str) -> FileResponse:
        if self._local_storage is None or container != self._settings.blob_container_name:
            raise BlobNotFound(f"no blob at {container}/{path}")
        target = self._local_storage.resolve(path)
        if not target.is_file():
            raise BlobNotFound(f"no blob at {container}/{path}")
        return FileResponse(target, media_type=_media_type(target.suffix))

    async def _engine_report(self, name: str) -> dict[str, str]:
        handle = self._engines.get(name)
        if handle is None:
            return {"status": "not_configured", "device": "none"}
        try:
            report: dict[str, str] = await _answer(handle.describe.remote(), STATUS_TIMEOUT_SECONDS)
            return report
        except TimeoutError:
            return {"status": "busy: no answer within 2 s", "device": "unknown"}
        except Exception as exc:
            return {"status": f"unavailable: {type(exc).__name__}", "device": "unknown"}

    async def _storage_status(self) -> str:
        try:
            status: str = await _answer(self._uploader.storage_status.remote(), STATUS_TIMEOUT_SECONDS + 1)
            return status
        except TimeoutError:
            return "unreachable: the uploader did not answer"
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
