"""The HTTP front door: FastAPI routes on a Ray Serve ingress deployment. Thin on purpose: it
validates, records the job, answers at once and hands the job to the graph.

No ``from __future__ import annotations`` here: FastAPI must see real annotations, or it reads
request bodies as query parameters. Module-level helpers the routes call must be defined above the
class (or imported): Serve ships the ingress class to replicas with the globals known at that point.
"""

import asyncio
import ipaddress
import logging
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import BackgroundTasks, FastAPI, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from stemforge.api.auth import ApiKeyGuard, check_api_key
from stemforge.api.errors import install_error_handlers
from stemforge.api.limits import BodySizeLimit
from stemforge.api.requests import (
    applied_parameters,
    check_engines,
    check_limits,
    resolve_spec,
    route_request,
)
from stemforge.api.schemas import (
    GenerateAccepted,
    GenerateRequest,
    HealthResponse,
    HealthServices,
    JobStatusResponse,
)
from stemforge.api.views import job_status_view
from stemforge.engines.registry import ENGINES
from stemforge.errors import BlobNotFound, JobNotFound
from stemforge.jobs.callbacks import CallbackDelivery
from stemforge.jobs.handles import EngineHandles, UploaderHandle
from stemforge.jobs.lifecycle import Acceptance, JobLifecycle, LifecyclePolicy
from stemforge.jobs.records import fingerprint
from stemforge.jobs.ssrf import ascii_host, check_callback_url
from stemforge.jobs.store import JOBS_PREFIX, JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.observability.events import Observers
from stemforge.observability.logs import EventLog, route_library_logs_to_serve
from stemforge.observability.metrics import RayMetrics
from stemforge.playground import include_playground
from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from stemforge.storage.factory import storage_from_settings
from stemforge.storage.local import BLOB_ROUTE, LocalDiskStorage
from stemforge.storage.timed import timed_storage

logger = logging.getLogger(__name__)

STATUS_TIMEOUT_SECONDS = 2.0
STORAGE_THREADS = 32
# Fields of the seed's /health ``services``: engines it names, whether or not they exist here.
SEED_SERVICE_ENGINES = ("musicgen", "stable_audio")

app = FastAPI(
    title="stemforge",
    summary="Music stems from a prompt and musical conditioning.",
    version="0.1.0",
)
install_error_handlers(app)
include_playground(app)  # static page at /playground, outside the API key guard
# The limit is per replica process: each Ingress replica sets it from its settings at start-up.
app.state.max_request_bytes = 64 * 1024
app.state.api_key = None
app.add_middleware(BodySizeLimit, limit=lambda: int(app.state.max_request_bytes))
# Outermost: an unauthenticated request to /generate is a 401 before its body is even read.
app.add_middleware(
    ApiKeyGuard,
    expected=lambda: app.state.api_key,
    guarded=lambda path: path == "/generate" or path.startswith("/generate/"),
)


async def _answer(response: Any, timeout: float) -> Any:
    """Await a handle call, giving up after ``timeout`` seconds (health must stay fast)."""

    async def wait() -> Any:
        return await response

    try:
        return await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        response.cancel()
        raise


def _needs_lookup(url: str, allowed_hosts: Collection[str]) -> bool:
    """Whether checking ``url`` may resolve a name (a DNS lookup, so in a thread); ``False`` when
    the URL alone decides: an exempt host, an IP literal, or a URL refused as it is."""
    try:
        host = ascii_host(httpx.URL(url)).lower().strip("[]")
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return False
    if host in allowed_hosts:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


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
        route_library_logs_to_serve()
        self._engines = engines
        self._uploader = uploader
        self._routing = routing
        self._settings = settings
        app.state.max_request_bytes = settings.max_request_bytes
        app.state.api_key = settings.api_key
        storage = storage_from_settings(settings)
        self._local_storage = storage if isinstance(storage, LocalDiskStorage) else None
        self._store = JobStore(timed_storage(storage))
        uploader_port = UploaderHandle(uploader)
        observer = Observers(EventLog(), RayMetrics())  # a replica: Ray is up
        self._jobs = JobLifecycle(
            self._store,
            EngineHandles(engines),
            uploader_port,
            CallbackDelivery(
                uploader_port,
                settings.callback_retry_schedule,
                settings.callback_inline_retry_max_seconds,
                on_attempt=observer.callback_attempt,
            ),
            LifecyclePolicy(
                heartbeat_seconds=settings.job_heartbeat_seconds,
                lease_seconds=settings.job_lease_seconds,
                engine_max_attempts=settings.engine_max_attempts,
                max_job_attempts=settings.max_job_attempts,
                max_active_jobs=settings.max_active_jobs,
                idempotency_window_seconds=settings.idempotency_window_seconds,
                engine_stall_seconds=settings.engine_stall_seconds,
            ),
            observer=observer,
        )
        loop = asyncio.get_event_loop()
        # Storage calls run in threads; the default pool (cores + 4) is too small for many jobs'
        # heartbeats and records at once.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=STORAGE_THREADS))
        # Held for the replica's life: the event loop keeps only a weak reference to its tasks.
        self._sweeps = loop.create_task(self._jobs.run_sweeps(settings.janitor_interval_seconds))

    @app.get("/health", response_model=HealthResponse)
    async def health(self) -> HealthResponse:
        names = list(dict.fromkeys([*ENGINES, *SEED_SERVICE_ENGINES, *self._engines]))
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

    @app.post(
        "/generate",
        status_code=202,
        response_model=GenerateAccepted,
        responses={200: {"model": GenerateAccepted, "description": "A repeat of a finished job"}},
    )
    async def generate(self, body: GenerateRequest, background: BackgroundTasks) -> Any:
        stems = tuple(stem.value for stem in body.target_stems)
        routes = route_request(body, self._routing, self._settings.mode, self._engines)
        check_limits(body, self._settings)
        spec = resolve_spec(body, engines=len(routes))
        check_engines(spec, routes)
        if body.callback_url is not None:
            url, allowed = str(body.callback_url), self._settings.callback_allowed_hosts
            if _needs_lookup(url, allowed):
                await asyncio.to_thread(check_callback_url, url, allowed)
            else:
                check_callback_url(url, allowed)  # no lookup: a thread hop would cost more
        ticket = JobTicket(
            generation_request_id=body.generation_request_id,
            audio_file_id=body.audio_file_id,
            callback_url=str(body.callback_url) if body.callback_url else None,
            accepted_at=time.time(),
            stems=stems,
            routes=routes,
            spec=spec,
            parameters=applied_parameters(spec, routes),
        )
        acceptance = await self._jobs.accept(ticket, fingerprint(body.model_dump_json()))
        if acceptance.job is None:
            return self._repeat(acceptance)
        # A background task keeps the request "in flight" for Ray Serve, so a graceful shutdown
        # drains it; the durable record covers a crash.
        background.add_task(self._jobs.run, acceptance.job)
        logger.info("job %s accepted: %s", ticket.generation_request_id, ticket.routes)
        return GenerateAccepted(generation_request_id=body.generation_request_id)

    @app.get("/generate/{generation_request_id}", response_model=JobStatusResponse)
    async def job_status(self, generation_request_id: str = Path(max_length=128)) -> JobStatusResponse:
        record = await asyncio.to_thread(self._store.get, generation_request_id)
        if record is None:
            raise JobNotFound(f"no job with generation_request_id {generation_request_id!r}")
        return job_status_view(record)

    @app.get(BLOB_ROUTE + "/{container}/{path:path}", include_in_schema=False)
    async def download(self, container: str, path: str, request: Request) -> FileResponse:
        storage = self._local_storage
        if storage is None or container != self._settings.blob_container_name:
            raise BlobNotFound(f"no blob at {container}/{path}")
        # With an API key, a blob is read with the key or by the signed URL the callback gave.
        if self._settings.api_key is not None and not storage.signed_for(path, request.query_params):
            check_api_key(request.headers, self._settings.api_key)
        # Checked on the resolved path: job records are served only through GET /generate/{id}.
        target = storage.public_file(path, hidden_prefixes=(JOBS_PREFIX,))
        return FileResponse(target, media_type=_media_type(target.suffix))

    @staticmethod
    def _repeat(acceptance: Acceptance) -> JSONResponse:
        record = acceptance.record
        answer = GenerateAccepted(
            generation_request_id=record.generation_request_id,
            status=record.status,
            message=f"Already accepted: this generation is {record.status}.",
        )
        return JSONResponse(answer.model_dump(), status_code=202 if record.status == "processing" else 200)

    async def _engine_report(self, name: str) -> dict[str, Any]:
        handle = self._engines.get(name)
        if handle is None:
            return {"status": "not_configured", "device": "none"}
        try:
            report: dict[str, Any] = await _answer(handle.describe.remote(), STATUS_TIMEOUT_SECONDS)
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
