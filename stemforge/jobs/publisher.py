"""Turn engine results into stored blobs and a callback payload.

Runs inside the uploader replica; kept free of Ray so it can be tested on its own.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from stemforge.api.schemas import CallbackPayload, GeneratedStem
from stemforge.dsp.wav import encode_wav
from stemforge.engines.base import Attachment, EngineResult, RenderedStem
from stemforge.errors import StemforgeError
from stemforge.jobs.lifecycle import failed_payload
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import CHANNELS, SAMPLE_RATE
from stemforge.storage.base import Storage, StoredBlob, blob_path

logger = logging.getLogger(__name__)


class ResultPublisher:
    """Stores a job's stems and attachments and builds its callback payload. It writes blobs only:
    the job's record belongs to its lifecycle (``stemforge.jobs.lifecycle``)."""

    def __init__(self, storage: Storage, wav_subtype: str = "PCM_16") -> None:
        self._storage = storage
        self._wav_subtype = wav_subtype

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
        entries = await asyncio.gather(*(self._store_stem(ticket, rendered[s]) for s in ticket.stems))
        parameters = dict(ticket.parameters)
        extra_urls: dict[str, str] = {}
        for result in results:
            parameters.update(result.applied)
            for attachment in result.attachments:
                blob = await self._put(ticket, f"{attachment.kind}.{attachment.extension}", attachment)
                extra_urls[f"{attachment.kind}_url"] = blob.url
        prompts = {s: rendered[s].prompt for s in ticket.stems if rendered[s].prompt is not None}
        if prompts:
            parameters["prompts"] = prompts
        return CallbackPayload(
            generation_request_id=ticket.generation_request_id,
            audio_file_id=ticket.audio_file_id,
            status="completed",
            processing_time_seconds=elapsed_since(ticket.accepted_at),
            generated_stems=list(entries),
            parameters=parameters,
            **extra_urls,
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
