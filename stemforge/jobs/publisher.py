"""Turn engine results into stored blobs and a callback payload.

Runs inside the uploader replica; kept free of Ray so it can be tested on its own.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stemforge.api.schemas import CallbackPayload, GeneratedStem
from stemforge.dsp.wav import encode_wav
from stemforge.engines.base import Attachment, EngineResult, RenderedStem
from stemforge.errors import StemforgeError
from stemforge.jobs.lifecycle import failed_payload
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import CHANNELS, SAMPLE_RATE
from stemforge.quality.assessment import MIX_NAME, Assessment, summarize
from stemforge.quality.bounds import QualityConfig
from stemforge.quality.mix import MixInput, mix_stems
from stemforge.quality.report import RequestContext, StemQuality, analyse_stem
from stemforge.storage.base import Storage, StoredBlob, blob_path

logger = logging.getLogger(__name__)

# Adds metrics to a stem's quality from its rendered stem (text-audio similarity); blocking.
StemScorer = Callable[[StemQuality, RenderedStem], None]


class ResultPublisher:
    """Stores a job's stems and attachments and builds its callback payload. It writes blobs only:
    the job's record belongs to its lifecycle (``stemforge.jobs.lifecycle``)."""

    def __init__(
        self,
        storage: Storage,
        wav_subtype: str = "PCM_16",
        quality: QualityConfig | None = None,
        scorer: StemScorer | None = None,
    ) -> None:
        self._storage = storage
        self._wav_subtype = wav_subtype
        self._quality = quality or QualityConfig()
        self._scorer = scorer

    async def store(self, ticket: JobTicket, results: Sequence[EngineResult]) -> CallbackPayload:
        """Store every stem; the payload is ``completed``, or ``failed`` when storage refused."""
        try:
            return await self._store_results(ticket, results)
        except StemforgeError as exc:
            logger.error("job %s: storing stems failed: %s", ticket.generation_request_id, exc)
            return failed_payload(ticket, f"storing stems failed: {exc.message}", time.time())

    async def _store_results(self, ticket: JobTicket, results: Sequence[EngineResult]) -> CallbackPayload:
        rendered = {stem.stem_type: stem for result in results for stem in result.stems}
        missing = [stem for stem in ticket.stems if stem not in rendered]
        if missing:
            raise StemforgeError(f"engines returned no audio for {missing}")
        parameters = dict(ticket.parameters)
        for result in results:
            parameters.update(result.applied)
        stems = [rendered[s] for s in ticket.stems]
        # The analysis runs in worker threads while the stems are encoded and written: it delays
        # the callback only by what it takes beyond storing them (docs/quality.md).
        assessing = asyncio.ensure_future(self._assess(ticket, stems, parameters))
        try:
            entries = await asyncio.gather(*(self._store_stem(ticket, stem) for stem in stems))
            extra: dict[str, Any] = {}
            for result in results:
                for attachment in result.attachments:
                    blob = await self._put(ticket, f"{attachment.kind}.{attachment.extension}", attachment)
                    extra[f"{attachment.kind}_url"] = blob.url
            assessment = await assessing
        finally:
            if not assessing.done():
                assessing.cancel()
        if isinstance(assessment, Assessment):
            entries = [
                GeneratedStem(**(entry.model_dump() | {"quality": assessment.stems.get(entry.stem_type)}))
                for entry in entries
            ]
            extra["mix_url"] = (await self._store_mix(ticket, assessment)).url
            extra["quality"] = assessment.request
            extra["warnings"] = assessment.warnings
        elif isinstance(assessment, str):
            extra["warnings"] = [f"quality: not measured: {assessment}"]
        prompts = {s.stem_type: s.prompt for s in stems if s.prompt is not None}
        if prompts:
            parameters["prompts"] = prompts
        return CallbackPayload(
            generation_request_id=ticket.generation_request_id,
            audio_file_id=ticket.audio_file_id,
            status="completed",
            processing_time_seconds=elapsed_since(ticket.accepted_at),
            generated_stems=list(entries),
            parameters=parameters,
            **extra,
        )

    async def _assess(
        self, ticket: JobTicket, stems: Sequence[RenderedStem], parameters: Mapping[str, Any]
    ) -> Assessment | str | None:
        """Every stem's quality, the mix and the warnings; None when the analysis is off. A fault
        is logged and costs the callback its quality (the reason is returned), never its stems."""
        if not self._quality.enabled:
            return None
        try:
            return await self._assess_all(ticket, stems, parameters)
        except Exception as exc:
            logger.exception("job %s: quality analysis failed", ticket.generation_request_id)
            return repr(exc)

    async def _assess_all(
        self, ticket: JobTicket, stems: Sequence[RenderedStem], parameters: Mapping[str, Any]
    ) -> Assessment:
        started = time.perf_counter()
        context = RequestContext.from_parameters(parameters, ticket.spec.bpm, SAMPLE_RATE)
        qualities = asyncio.gather(*(asyncio.to_thread(self._analyse_stem, s, context) for s in stems))
        inputs = [MixInput(s.stem_type, s.audio, s.mix_gain_db) for s in stems]
        mix = await asyncio.to_thread(mix_stems, inputs, SAMPLE_RATE, self._quality.mix)
        mix_quality = await asyncio.to_thread(analyse_stem, MIX_NAME, mix.audio, context)
        analysed = await qualities
        return summarize(
            analysed, mix, mix_quality, context, self._quality.bounds, time.perf_counter() - started
        )

    def _analyse_stem(self, stem: RenderedStem, context: RequestContext) -> StemQuality:
        try:
            quality = analyse_stem(stem.stem_type, stem.audio, context)
        except Exception as exc:
            logger.exception("quality analysis of %s failed", stem.stem_type)
            length = round(stem.audio.shape[0] / SAMPLE_RATE, 6)
            quality = StemQuality(stem.stem_type, {"length_seconds": length})
            quality.missing.append(f"{stem.stem_type} not analysed: {exc!r}")
        if self._scorer is not None:
            try:
                self._scorer(quality, stem)
            except Exception as exc:
                logger.exception("text-audio similarity of %s failed", stem.stem_type)
                quality.missing.append(f"{stem.stem_type}: text-audio similarity not measured: {exc!r}")
        return quality

    async def _store_mix(self, ticket: JobTicket, assessment: Assessment) -> StoredBlob:
        wav = await asyncio.to_thread(encode_wav, assessment.mix.audio, SAMPLE_RATE, self._wav_subtype)
        return await asyncio.to_thread(
            self._storage.put,
            blob_path(ticket.audio_file_id, ticket.generation_request_id, f"{MIX_NAME}.wav"),
            wav,
            content_type="audio/wav",
            metadata={"generation_request_id": ticket.generation_request_id, "stem_type": MIX_NAME},
        )

    async def _store_stem(self, ticket: JobTicket, stem: RenderedStem) -> GeneratedStem:
        wav = await asyncio.to_thread(encode_wav, stem.audio, SAMPLE_RATE, self._wav_subtype)
        metadata = {
            "generation_request_id": ticket.generation_request_id,
            "stem_type": stem.stem_type,
            "engine": stem.engine,
            "seed": str(ticket.spec.seed),
        }
        blob = await asyncio.to_thread(
            self._storage.put,
            blob_path(ticket.audio_file_id, ticket.generation_request_id, f"{stem.stem_type}.wav"),
            wav,
            content_type="audio/wav",
            metadata=metadata,
        )
        extra: dict[str, Any] = dict(stem.info)
        for attachment in stem.attachments:
            stored = await self._put(ticket, f"{stem.stem_type}.{attachment.extension}", attachment)
            extra[f"{attachment.kind}_url"] = stored.url
        return GeneratedStem(
            stem_type=stem.stem_type,
            blob_url=blob.url,
            file_size_bytes=blob.size_bytes,
            format="wav",
            sample_rate=SAMPLE_RATE,
            channels=stem.audio.shape[1] if stem.audio.ndim == 2 else CHANNELS,
            engine=stem.engine,
            duration_seconds=round(stem.audio.shape[0] / SAMPLE_RATE, 6),
            **extra,
        )

    async def _put(self, ticket: JobTicket, filename: str, attachment: Attachment) -> StoredBlob:
        return await asyncio.to_thread(
            self._storage.put,
            blob_path(ticket.audio_file_id, ticket.generation_request_id, filename),
            attachment.data,
            content_type=attachment.content_type,
            metadata={"generation_request_id": ticket.generation_request_id},
        )


def elapsed_since(accepted_at: float) -> float:
    return round(max(0.0, time.time() - accepted_at), 3)
