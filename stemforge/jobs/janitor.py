"""Every ingress replica sweeps the open jobs now and then: a running job whose heartbeat stopped
(its replica died, the service restarted) is resumed or failed, and a callback whose retry time
has come is attempted. Claims in storage make sure exactly one replica acts on each."""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from ray.serve.handle import DeploymentHandle

from stemforge.jobs.pipeline import JobRunner
from stemforge.jobs.records import JobRecord, OpenJobMarker
from stemforge.jobs.store import JobStore

logger = logging.getLogger(__name__)


class Janitor:
    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        uploader: DeploymentHandle,
        *,
        lease_seconds: float,
        max_job_attempts: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._runner = runner
        self._uploader = uploader
        self._lease = lease_seconds
        self._max_attempts = max_job_attempts
        self._clock = clock

    async def run_forever(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("janitor sweep failed; trying again in %s s", interval_seconds)
            await asyncio.sleep(interval_seconds)

    async def sweep(self) -> None:
        now = self._clock()
        for marker in await asyncio.to_thread(self._store.open_markers):
            # A fresh heartbeat means a live job (or a callback still retrying in place): skip it
            # without reading its record, so sweeps stay cheap with many jobs in flight.
            if (
                self._runner.is_running(marker.generation_request_id)
                or now - marker.heartbeat_at < self._lease
            ):
                continue
            record = await asyncio.to_thread(self._store.get, marker.generation_request_id)
            if record is None or record.run_id != marker.run_id:
                await asyncio.to_thread(self._store.close, marker.generation_request_id)
            elif record.status == "processing":
                await self._take_over_if_abandoned(record, marker)
            else:
                await self._callback_if_due(record)

    async def _take_over_if_abandoned(self, record: JobRecord, marker: OpenJobMarker) -> None:
        attempt = max(record.attempt, marker.attempt) + 1
        if not await asyncio.to_thread(self._store.claim, record, f"attempt-{attempt}"):
            return  # another replica took it
        ticket = dataclasses.replace(record.job_ticket(), attempt=attempt)
        record.attempt = attempt
        await asyncio.to_thread(self._store.save, record)
        if attempt > self._max_attempts:
            reason = f"job abandoned: its worker stopped during {attempt - 1} attempt(s)"
            logger.error("job %s: %s", record.generation_request_id, reason)
            await self._uploader.fail.remote(ticket, reason)
            return
        logger.warning("job %s: heartbeat lost; resuming (attempt %d)", record.generation_request_id, attempt)
        await asyncio.to_thread(self._store.beat, ticket)
        asyncio.get_running_loop().create_task(self._runner.run(ticket))

    async def _callback_if_due(self, record: JobRecord) -> None:
        state = record.callback
        if state is None or state.finished:
            await asyncio.to_thread(self._store.close, record.generation_request_id)
            return
        if state.next_attempt_at is None or state.next_attempt_at > self._clock():
            return
        if await asyncio.to_thread(self._store.claim, record, f"callback-{len(state.attempts) + 1}"):
            await self._uploader.deliver_due.remote(record.generation_request_id)
