"""Turn engine results into stored blobs and a callback payload, then deliver it.

Runs inside the uploader replica; kept free of Ray so it can be tested on its own.
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from deployments.api.schemas import CallbackPayload, GeneratedStem
from deployments.dsp.wav import encode_wav
from deployments.engines.base import Attachment, EngineResult, RenderedStem
from deployments.errors import StemforgeError
from deployments.jobs.callbacks import CallbackSender, DeliveryReport
from deployments.jobs.ticket import JobTicket
from deployments.music.spec import CHANNELS, SAMPLE_RATE
from deployments.storage.base import Storage, StoredBlob, blob_path

logger = logging.getLogger(__name__)


class ResultPublisher:
    def __init__(self, storage: Storage, sender: CallbackSender, wav_subtype: str = "PCM_16") -> None:
        self._storage = storage
        self._sender = sender
        self._wav_subtype = wav_subtype

    async def publish(self, ticket: JobTicket, results: Sequence[EngineResult]) -> CallbackPayload:
        """Store every stem, then call back ``completed``; a storage failure calls back ``failed``."""
        try:
            payload = await self._store(ticket, results)
        except StemforgeError as exc:
            logger.error("job %s: storing stems failed: %s", ticket.generation_request_id, exc)
            payload = failed_payload(ticket, f"storing stems failed: {exc.message}")
        await self.deliver(ticket, payload)
        return payload

    async def fail(self, ticket: JobTicket, reason: str) -> CallbackPayload:
        payload = failed_payload(ticket, reason)
        await self.deliver(ticket, payload)
        return payload

    async def deliver(self, ticket: JobTicket, payload: CallbackPayload) -> DeliveryReport | None:
        if ticket.callback_url is None:
            logger.info("job %s finished %s (no callback_url)", ticket.generation_request_id, payload.status)
            return None
        return await self._sender.send(ticket.callback_url, payload.model_dump_json().encode())

    async def _store(self, ticket: JobTicket, results: Sequence[EngineResult]) -> CallbackPayload:
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
        prompts = {s: rendered[s].info["prompt"] for s in ticket.stems if "prompt" in rendered[s].info}
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
        extra: dict[str, Any] = {k: v for k, v in stem.info.items() if k != "prompt"}
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


def failed_payload(ticket: JobTicket, reason: str) -> CallbackPayload:
    return CallbackPayload(
        generation_request_id=ticket.generation_request_id,
        audio_file_id=ticket.audio_file_id,
        status="failed",
        processing_time_seconds=elapsed_since(ticket.accepted_at),
        generated_stems=[],
        parameters=dict(ticket.parameters),
        error=reason,
    )


def elapsed_since(accepted_at: float) -> float:
    return round(max(0.0, time.time() - accepted_at), 3)
