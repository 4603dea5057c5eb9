"""The HTTP front door: FastAPI routes on a Ray Serve ingress deployment. Thin on purpose: it
validates, records the job, answers at once and hands the job to the graph.

No ``from __future__ import annotations`` here: FastAPI must see real annotations, or it reads
request bodies as query parameters. Module-level helpers the routes call must be defined above the
class (or imported): Serve ships the ingress class to replicas with the globals known at that point.
"""

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import BackgroundTasks, FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle

from stemforge.api.auth import ApiKeyGuard, check_api_key
from stemforge.api.errors import install_error_handlers
from stemforge.api.limits import BodySizeLimit
from stemforge.api.requests import (
    applied_parameters,
    check_engines,
    check_limits,
    reference_kind,
    reference_parameters,
    resolve_spec,
    route_request,
)
from stemforge.api.schemas import (
    CancelAccepted,
    GenerateAccepted,
    GenerateRequest,
    HealthResponse,
    HealthServices,
    JobStatusResponse,
)
from stemforge.api.views import job_status_view
from stemforge.engines.registry import ENGINES
from stemforge.errors import (
    BlobNotFound,
    InvalidRequest,
    JobConflict,
    JobNotFound,
    StemforgeError,
    StreamUnavailable,
)
from stemforge.jobs.callbacks import CallbackDelivery
from stemforge.jobs.handles import EngineHandles, UploaderHandle
from stemforge.jobs.lifecycle import Acceptance, JobLifecycle, LifecyclePolicy
from stemforge.jobs.records import JobRecord, Stage, fingerprint
from stemforge.jobs.ssrf import ascii_host, check_callback_url
from stemforge.jobs.store import JOBS_PREFIX, JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import CHANNELS, SAMPLE_RATE
from stemforge.observability.events import JobObserver, Observers
from stemforge.observability.logs import EventLog, route_library_logs_to_serve
from stemforge.observability.metrics import RayMetrics
from stemforge.playground import include_playground
from stemforge.reference.intake import ReferenceLimits, reference_path, take_reference
from stemforge.routing import RoutingTable
from stemforge.settings import Settings
from stemforge.storage.base import blob_path
from stemforge.storage.factory import storage_from_settings
from stemforge.storage.local import BLOB_ROUTE, LocalDiskStorage
from stemforge.storage.timed import timed_storage
from stemforge.streaming.bodies import live_body, stored_body
from stemforge.streaming.events import JobEvents
from stemforge.streaming.hub import MIX
from stemforge.streaming.observer import RelayObserver
from stemforge.streaming.pcm import pcm_of_wav
from stemforge.streaming.sse import comment, format_event

logger = logging.getLogger(__name__)

STATUS_TIMEOUT_SECONDS = 2.0
# Server-Sent Events: how often the job's record is looked at, and a comment line when nothing
# happened for this long (proxies close silent connections).
SSE_POLL_SECONDS = 0.5
SSE_KEEPALIVE_SECONDS = 15.0
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
        relay: DeploymentHandle | None = None,
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
        self._storage = timed_storage(storage)
        self._store = JobStore(self._storage)
        self._reference_limits = ReferenceLimits(
            max_bytes=settings.reference_max_bytes,
            max_seconds=settings.reference_max_seconds,
            timeout_seconds=settings.reference_timeout_seconds,
            allowed_hosts=settings.callback_allowed_hosts,
            allow_http=settings.reference_allow_http,
        )
        uploader_port = UploaderHandle(uploader)
        self._relay = relay
        self._listen = relay.options(stream=True) if relay is not None else None
        observers: list[JobObserver] = [EventLog(), RayMetrics()]  # a replica: Ray is up
        if relay is not None:
            observers.append(RelayObserver(relay))
        observer = Observers(*observers)
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
        p = body.parameters
        reference = reference_kind(p)
        if reference is not None:  # an engine that cannot use it: refused before anything is fetched
            check_engines(resolve_spec(body, engines=len(routes)), routes, reference)
        if body.callback_url is not None:
            url, allowed = str(body.callback_url), self._settings.callback_allowed_hosts
            if _needs_lookup(url, allowed):
                await asyncio.to_thread(check_callback_url, url, allowed)
            else:
                check_callback_url(url, allowed)  # no lookup: a thread hop would cost more
        body_fingerprint = fingerprint(body.model_dump_json())
        path = reference_path(body.generation_request_id, body_fingerprint)

        async def analyse(kind: str, data: bytes, mode: str, signature: str | None, bpm: float | None) -> Any:
            # In the uploader: librosa's CPU work stays off the ingress; it keeps the audio too.
            try:
                return await self._uploader.reference_intake.remote(kind, data, mode, signature, bpm, path)
            except RayTaskError as exc:
                raise (exc.cause if isinstance(exc.cause, StemforgeError) else exc) from None

        intake = await take_reference(
            p.reference_audio,
            p.midi,
            p.reference_mode,
            p.time_signature,
            p.target_bpm,
            self._storage,
            self._reference_limits,
            analyse,
        )
        spec = resolve_spec(
            body,
            engines=len(routes),
            reference=intake,
            max_duration_seconds=self._settings.max_duration_seconds,
        )
        check_engines(spec, routes)
        extra = reference_parameters(body, intake, spec) if intake is not None else None
        ticket = JobTicket(
            generation_request_id=body.generation_request_id,
            audio_file_id=body.audio_file_id,
            callback_url=str(body.callback_url) if body.callback_url else None,
            accepted_at=time.time(),
            stems=stems,
            routes=routes,
            spec=spec,
            parameters=applied_parameters(spec, routes, extra),
        )
        try:
            acceptance = await self._jobs.accept(ticket, body_fingerprint)
        except JobConflict:
            if spec.reference is not None and spec.reference.audio_path:  # stored for nothing
                with contextlib.suppress(StemforgeError):
                    await asyncio.to_thread(self._storage.delete, spec.reference.audio_path)
            raise
        if acceptance.job is None:
            if (
                spec.reference is not None
                and spec.reference.audio_path
                and acceptance.record.status != "processing"
            ):
                # A repeat of a finished job stored its reference again: nothing will read it.
                background.add_task(
                    asyncio.to_thread, self._store.drop_references, body.generation_request_id
                )
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

    @app.get("/generate/{generation_request_id}/stream")
    async def stream(
        self,
        generation_request_id: str = Path(max_length=128),
        stem: str = Query(description="A stem of the request, or mix: the running mix of all of them."),
        format: Literal["wav", "pcm"] = Query(
            default="wav", description="wav: 16-bit WAV of open length; pcm: raw s16le, interleaved."
        ),
    ) -> StreamingResponse:
        record = await self._record(generation_request_id)
        stems = list(record.job_ticket().stems)
        if stem != MIX and stem not in stems:
            raise InvalidRequest("stem", f"must be one of this job's stems {stems} or {MIX!r}; got {stem!r}")
        headers = {
            "Cache-Control": "no-store",
            "X-Sample-Rate": str(SAMPLE_RATE),
            "X-Channels": str(CHANNELS),
            "X-Sample-Format": "s16le",
        }
        media = "audio/wav" if format == "wav" else "application/octet-stream"
        if record.status == "completed":  # stored: the same audio, from storage
            body = await self._stored_pcm(record, stem)
            if body is not None:
                return StreamingResponse(stored_body(body, format), media_type=media, headers=headers)
        if record.status != "processing":
            raise JobConflict(f"job {generation_request_id!r} is {record.status}: it has no audio to stream")
        if self._listen is None:
            raise StreamUnavailable("streaming is not deployed here (no StreamRelay)")
        listen = self._listen.listen.remote(generation_request_id, stem)
        return StreamingResponse(live_body(listen, format), media_type=media, headers=headers)

    @app.get("/generate/{generation_request_id}/events")
    async def events(self, generation_request_id: str = Path(max_length=128)) -> StreamingResponse:
        record = await self._record(generation_request_id)
        return StreamingResponse(
            self._event_stream(generation_request_id, record),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.delete("/generate/{generation_request_id}", status_code=202, response_model=CancelAccepted)
    async def cancel(self, generation_request_id: str = Path(max_length=128)) -> CancelAccepted:
        record = await self._record(generation_request_id)
        if record.status != "processing" or record.stage not in (Stage.ACCEPTED, Stage.GENERATING):
            raise JobConflict(
                f"job {generation_request_id!r} is {record.status} ({record.stage}): too late to cancel"
            )
        if self._relay is None:
            raise StreamUnavailable("cancelling is not deployed here (no StreamRelay)")
        await self._relay.cancel.remote(generation_request_id)
        return CancelAccepted(generation_request_id=generation_request_id)

    @app.post("/generate/{generation_request_id}/cancel", status_code=202, response_model=CancelAccepted)
    async def cancel_post(self, generation_request_id: str = Path(max_length=128)) -> CancelAccepted:
        return await self.cancel(generation_request_id)

    async def _record(self, generation_request_id: str) -> JobRecord:
        record = await asyncio.to_thread(self._store.get, generation_request_id)
        if record is None:
            raise JobNotFound(f"no job with generation_request_id {generation_request_id!r}")
        return record

    async def _stored_pcm(self, record: JobRecord, stem: str) -> bytes | None:
        name = f"{MIX}.wav" if stem == MIX else f"{stem}.wav"
        path = blob_path(record.audio_file_id, record.generation_request_id, name)
        try:
            data: bytes = await asyncio.to_thread(self._storage.get, path)
        except BlobNotFound:
            return None
        return pcm_of_wav(data)

    async def _event_stream(self, generation_request_id: str, record: JobRecord) -> AsyncIterator[bytes]:
        events = JobEvents()
        number = 0
        quiet_since = time.monotonic()
        while True:
            for name, data in events.update(job_status_view(record).model_dump(mode="json")):
                number += 1
                quiet_since = time.monotonic()
                yield format_event(name, data, number)
            if events.done:
                return
            if time.monotonic() - quiet_since >= SSE_KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield comment("ping")
            await asyncio.sleep(SSE_POLL_SECONDS)
            record = await self._record(generation_request_id)

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
