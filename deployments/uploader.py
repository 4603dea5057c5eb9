"""The uploader deployment: writes a job's stems to storage and makes its callback attempts.

It is called with references to the engines' results as arguments: Ray resolves them here, from
the object store, so the audio never passes through the caller. It never writes job records:
the job's lifecycle, in the ingress, records what the uploader returns.
"""

import asyncio
import dataclasses
import time

from ray import serve

from stemforge.api.schemas import CallbackPayload
from stemforge.engines.base import EngineResult
from stemforge.jobs.callbacks import AttemptOutcome, callback_client
from stemforge.jobs.publisher import ResultPublisher
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import SAMPLE_RATE
from stemforge.observability.logs import log_event, route_library_logs_to_serve
from stemforge.quality.assessment import warm_up
from stemforge.quality.bounds import QualityConfig
from stemforge.reference.intake import ReferenceIntake, analyse_bytes, encode_reference
from stemforge.reference.intake import warm_up as warm_up_reference
from stemforge.settings import Settings
from stemforge.storage.factory import storage_from_settings
from stemforge.storage.timed import timed_storage

STORAGE_CHECK_TIMEOUT_SECONDS = 2.0


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Uploader:
    def __init__(self, settings: Settings) -> None:
        route_library_logs_to_serve()
        # Built here, at start-up: bad storage or signing settings fail the deployment, not a job.
        self._storage = timed_storage(storage_from_settings(settings))
        quality = QualityConfig.from_settings(settings)
        scorer = None
        if quality.enabled and settings.clap_model:
            from stemforge.quality.clap import ClapScorer

            scorer = ClapScorer.load(settings.clap_model)  # a bad checkpoint fails the deployment
        self._publisher = ResultPublisher(self._storage, settings.wav_subtype, quality, scorer)
        if quality.enabled:
            warm_up(SAMPLE_RATE)  # librosa's import and JIT now, not in the first callback
        warm_up_reference()  # the same for the first reference, analysed before its 202
        self._reference_max_seconds = settings.reference_max_seconds
        self._callbacks = callback_client(settings)

    async def store(self, ticket: JobTicket, *results: EngineResult) -> CallbackPayload:
        started = time.perf_counter()
        payload = await self._publisher.store(ticket, results)
        log_event(
            "stems.stored",
            generation_request_id=ticket.generation_request_id,
            stage="storing",
            status=payload.status,
            stems=",".join(ticket.stems),
            seconds=round(time.perf_counter() - started, 3),
        )
        return payload

    async def reference_intake(
        self,
        kind: str,
        data: bytes,
        mode: str,
        time_signature: str | None,
        target_bpm: float | None,
        path: str,
    ) -> ReferenceIntake:
        """A fetched reference decoded and analysed (CPU: here, not in the ingress), its audio
        stored at ``path`` for the engines that hear it. Raises ``InvalidRequest`` (a 422)."""
        intake = await asyncio.to_thread(
            analyse_bytes, kind, data, mode, time_signature, target_bpm, self._reference_max_seconds
        )
        if intake.mono is None:
            return intake
        flac = await asyncio.to_thread(encode_reference, intake.mono)
        await asyncio.to_thread(self._storage.put, path, flac, content_type="audio/flac")
        return dataclasses.replace(intake, mono=None, audio_path=path)

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        return await self._callbacks.attempt(url, webhook_id, body)

    async def storage_status(self) -> str:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._storage.check), timeout=STORAGE_CHECK_TIMEOUT_SECONDS
            )
        except TimeoutError:
            return f"unreachable: no answer within {STORAGE_CHECK_TIMEOUT_SECONDS:g} s"
