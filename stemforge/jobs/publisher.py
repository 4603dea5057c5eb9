"""Turn engine results into stored blobs and a callback payload, then deliver it.

Runs inside the uploader replica; kept free of Ray so it can be tested on its own.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from stemforge.api.schemas import CallbackPayload, GeneratedStem
from stemforge.dsp.wav import encode_wav
from stemforge.engines.base import Attachment, EngineResult, RenderedStem
from stemforge.errors import StemforgeError
from stemforge.jobs.callbacks import CallbackDelivery
from stemforge.jobs.records import CallbackState, JobRecord
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import CHANNELS, SAMPLE_RATE
from stemforge.storage.base import Storage, StoredBlob, blob_path

logger = logging.getLogger(__name__)


class ResultPublisher:
    """Stores stems, records the outcome on the job, then delivers the callback. A job always ends
    in a callback (when it has a URL), even when storage itself is down."""

    def __init__(
        self, storage: Storage, store: JobStore, delivery: CallbackDelivery, wav_subtype: str = "PCM_16"
    ) -> None:
        self._storage = storage
        self._jobs = store
        self._delivery = delivery
        self._wav_subtype = wav_subtype

    async def publish(self, ticket: JobTicket, results: Sequence[EngineResult]) -> CallbackPayload:
        """Store every stem, then call back ``completed``; a storage failure calls back ``failed``."""
        try:
            payload = await self._store_results(ticket, results)
        except StemforgeError as exc:
            logger.error("job %s: storing stems failed: %s", ticket.generation_request_id, exc)
            payload = failed_payload(ticket, f"storing stems failed: {exc.message}")
        return await self.finish(ticket, payload)

    async def fail(self, ticket: JobTicket, reason: str) -> CallbackPayload:
        return await self.finish(ticket, failed_payload(ticket, reason))

    async def finish(self, ticket: JobTicket, payload: CallbackPayload) -> CallbackPayload:
        record, owned = await self._load(ticket)
        record.status = payload.status
        record.stage = "calling back" if ticket.callback_url else "done"
        record.result = payload
        record.error = payload.error
        if ticket.callback_url:
            record.callback = self._delivery.new_state(ticket.callback_url, ticket.webhook_id)
        await self._save(record, owned)
        await self._deliver(record, owned)
        return payload

    async def deliver_due(self, generation_request_id: str) -> None:
        """Attempt a scheduled callback whose time has come (the janitor calls this)."""
        record = await asyncio.to_thread(self._jobs.get, generation_request_id)
        if record is not None and record.result is not None:
            await self._deliver(record, owned=True)

    async def _deliver(self, record: JobRecord, owned: bool) -> None:
        state, payload = record.callback, record.result
        if state is not None and payload is not None and not state.finished:
            body = payload.model_dump_json().encode()

            async def persist(_: CallbackState) -> None:
                await self._save(record, owned)

            await self._delivery.run(state, body, persist)
        if (state is None or state.finished) and owned:
            record.stage = "done"
            await self._save(record, owned)
            await self._quietly(self._jobs.close, record.generation_request_id)

    async def _load(self, ticket: JobTicket) -> tuple[JobRecord, bool]:
        """The job's record and whether this run owns it (``False`` when a newer job with the same
        id replaced it: this run must not overwrite that one's record)."""
        try:
            record = await asyncio.to_thread(self._jobs.get, ticket.generation_request_id)
        except StemforgeError as exc:
            logger.error("job %s: cannot read its record: %s", ticket.generation_request_id, exc)
            record = None
        if record is None:
            # Unreadable or lost: carry on from the ticket so the client still hears back.
            return JobRecord.for_ticket(ticket, fingerprint=""), True
        if record.run_id != ticket.run_id:
            return JobRecord.for_ticket(ticket, fingerprint=""), False
        return record, True

    async def _save(self, record: JobRecord, owned: bool) -> None:
        if owned:
            await self._quietly(self._jobs.save, record)

    async def _quietly(self, action: Callable[[Any], None], argument: Any) -> None:
        try:
            await asyncio.to_thread(action, argument)
        except StemforgeError as exc:
            logger.error("job record %s not updated: %s", record_id(argument), exc)

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


def record_id(argument: Any) -> str:
    return str(getattr(argument, "generation_request_id", argument))
