"""A job's whole life, from acceptance to its last callback, as one state machine.

    accepted -> generating -> storing -> calling back -> completed
                    |            |            \\-------> failed
                    \\------------+--> calling back (failed) / failed
    (a crashed run: generating or storing -> accepted again, with the next attempt)

The lifecycle runs in the ingress replica that accepted the job (or took it over) and is the one
writer of its record while it runs: engines and the uploader return what happened and never
write records. It talks to them through two small ports (``Engines``, ``Uploader``), Ray
handles in production (``stemforge.jobs.handles``) and fakes in the tests, with an injectable
clock, so every transition can be driven without Ray.

Durability: the record is written before the client hears 202; a heartbeat (the open-job marker)
says the job is alive. Every replica sweeps the markers: a job whose heartbeat stopped is resumed
(same ticket, same seed, same audio) or, out of attempts, failed with a callback; a callback whose
retry time has come is attempted. Claims in storage make exactly one replica act on each.

Repeats: a repeated request (same id, same body) is answered from memory when this replica knows
the job's current state without storage: the job is processing here (its record in memory is the
one being written), or its outcome has been recorded (written by this replica or read back from
storage). A recorded outcome stays as it is for the idempotency window (only a finished job past
its window is replaced), so any replica may keep it. Every other repeat reads the record.
"""

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from stemforge.api.schemas import CallbackPayload
from stemforge.engines.base import EngineDone, EngineEvent, EngineJob, EngineProgress, StreamTarget
from stemforge.errors import (
    EngineLost,
    JobCancelled,
    JobConflict,
    JobNotFound,
    Overloaded,
    ResultsLost,
    StemforgeError,
)
from stemforge.jobs.callbacks import AttemptOutcome, CallbackDelivery
from stemforge.jobs.outcomes import KNOWN_OUTCOMES, KnownOutcome, KnownOutcomes
from stemforge.jobs.records import CallbackState, JobProgress, JobRecord, OpenJobMarker, Stage
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.observability.events import JobObserver, NullObserver

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 500
CANCELLED_REASON = "cancelled by the client (DELETE /generate/{id}); no stems were stored"
# Progress is written to the record at most this often (a storage write each time); stage
# changes and finished stems are written at once.
PROGRESS_SAVE_SECONDS = 1.0
# Open jobs one sweep attends to at once (due callbacks, takeovers).
SWEEP_CONCURRENCY = 16

TRANSITIONS: Mapping[Stage, frozenset[Stage]] = {
    Stage.ACCEPTED: frozenset({Stage.GENERATING, Stage.CALLING_BACK, Stage.FAILED}),
    Stage.GENERATING: frozenset({Stage.STORING, Stage.CALLING_BACK, Stage.FAILED, Stage.ACCEPTED}),
    # STORING -> GENERATING: the engines' results were lost before they were stored.
    Stage.STORING: frozenset(
        {Stage.GENERATING, Stage.CALLING_BACK, Stage.COMPLETED, Stage.FAILED, Stage.ACCEPTED}
    ),
    Stage.CALLING_BACK: frozenset({Stage.COMPLETED, Stage.FAILED}),
    Stage.COMPLETED: frozenset(),
    Stage.FAILED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A bug: the lifecycle tried a move its state machine does not have."""


class Engines(Protocol):
    def stream(self, engine: str, job: EngineJob) -> AsyncIterator[EngineEvent]:
        """Progress events, then one ``EngineDone``; raises ``EngineLost`` when the replica died."""
        ...


class Uploader(Protocol):
    async def store(self, ticket: JobTicket, results: Sequence[Any]) -> CallbackPayload:
        """Store the stems (``results``: what the engines' ``EngineDone`` carried) and return the
        callback payload: ``completed``, or ``failed`` when storage refused. Raises
        ``ResultsLost`` when a result can no longer be read."""
        ...

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        """One callback attempt."""
        ...


@dataclass(frozen=True)
class LifecyclePolicy:
    heartbeat_seconds: float
    lease_seconds: float
    engine_max_attempts: int
    max_job_attempts: int
    max_active_jobs: int
    idempotency_window_seconds: float
    # An engine that sends nothing (no progress, no result) for this long is taken for lost: a
    # job queued for a deployment with no replica (its GPU node gone) would otherwise wait forever.
    engine_stall_seconds: float = 1800.0


@dataclass
class Job:
    """A running job: its ticket and the record this lifecycle writes."""

    ticket: JobTicket
    record: JobRecord
    progress_saved_at: float = 0.0
    engine_etas: dict[str, float | None] = dataclasses.field(default_factory=dict)
    # Heartbeats and the final close of the open-job marker take turns, so a heartbeat written
    # in a thread cannot land after the close and reopen a finished job.
    marker_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    closed: bool = False
    # Record writes go out in order from one writer task, off the job's path (see ``_save``).
    pending: list[JobRecord] = dataclasses.field(default_factory=list)
    writer: "asyncio.Task[None] | None" = None
    write_failed: bool = False  # the last write did not go through: storage is failing
    trailing_save: "asyncio.Task[None] | None" = None  # progress held back by the throttle
    stage_entered_at: float = 0.0  # when the record entered its stage (for the observer)


@dataclass(frozen=True)
class Acceptance:
    """What ``accept`` decided: a new job to run, or the existing one a repeated request names
    (its record, or for a repeat answered from memory its recorded outcome)."""

    job: Job | None  # set for a new job
    record: JobRecord | KnownOutcome

    @property
    def is_new(self) -> bool:
        return self.job is not None


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for the callback: the engine's own exception, not Ray's wrapper."""
    cause = getattr(exc, "cause", None) or exc
    text = str(getattr(cause, "message", "") or cause).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(cause).__name__}: {first}"[:MAX_REASON_CHARS]


def was_cancelled(exc: BaseException) -> bool:
    """Whether a job's failure is its cancellation (raised in an engine replica, so it may come
    wrapped in Ray's error)."""
    return isinstance(exc, JobCancelled) or isinstance(getattr(exc, "cause", None), JobCancelled)


def failed_payload(
    ticket: JobTicket, reason: str, now: float, status: Literal["failed", "cancelled"] = "failed"
) -> CallbackPayload:
    return CallbackPayload(
        generation_request_id=ticket.generation_request_id,
        audio_file_id=ticket.audio_file_id,
        status=status,
        processing_time_seconds=round(max(0.0, now - ticket.accepted_at), 3),
        generated_stems=[],
        parameters=dict(ticket.parameters),
        error=reason,
    )


async def _within(
    events: AsyncIterator[EngineEvent], engine: str, policy: LifecyclePolicy
) -> AsyncIterator[EngineEvent]:
    """``events``, each within ``policy.engine_stall_seconds`` of the one before; past that the
    engine counts as lost (``EngineLost``: another replica is tried, then the job fails)."""
    iterator = aiter(events)
    try:
        while True:
            try:
                event = await asyncio.wait_for(anext(iterator), policy.engine_stall_seconds)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise EngineLost(
                    f"the {engine} engine sent nothing for {policy.engine_stall_seconds:g} s "
                    "(no replica, or a replica that stopped answering)"
                ) from None
            yield event
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


class JobLifecycle:
    def __init__(
        self,
        store: JobStore,
        engines: Engines,
        uploader: Uploader,
        delivery: CallbackDelivery,
        policy: LifecyclePolicy,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: JobObserver | None = None,
    ) -> None:
        self._store = store
        self._observer: JobObserver = observer or NullObserver()
        self._engines = engines
        self._uploader = uploader
        self._delivery = delivery
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._running: dict[str, Job] = {}
        self._busy: set[str] = set()  # accepted (a slot taken at once), generating or storing
        self._resumed: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.Task[None]] = set()
        self._outcomes = KnownOutcomes(KNOWN_OUTCOMES, policy.idempotency_window_seconds)

    @property
    def active(self) -> int:
        """Jobs accepted here and not yet through generating and storing: what
        ``max_active_jobs`` bounds. A job waiting on its callback no longer counts."""
        return len(self._busy)

    def is_running(self, generation_request_id: str) -> bool:
        return generation_request_id in self._running

    # --- acceptance (idempotency) ---------------------------------------------------------------

    async def accept(self, ticket: JobTicket, fingerprint: str) -> Acceptance:
        """Record a new job, or name the existing one for a repeat of the same request (same id,
        same body) within the idempotency window. Raises ``JobConflict`` for the same id with
        another body, ``Overloaded`` past ``max_active_jobs``, ``StorageError`` when the record
        cannot be written (nothing is accepted that could be lost)."""
        known = self._known(ticket.generation_request_id)
        if known is not None:
            return self._repeat(known, fingerprint)
        existing = await self._io(self._store.get, ticket.generation_request_id)
        if existing is not None and not self._replaceable(existing):
            self._outcomes.remember(existing)
            return self._repeat(existing, fingerprint)
        job_id = ticket.generation_request_id
        if self.active >= self._policy.max_active_jobs:
            raise Overloaded(f"{self.active} jobs in progress (MAX_ACTIVE_JOBS); retry shortly")
        # The slot is taken before the next await: concurrent requests each see the ones before.
        self._busy.add(job_id)
        try:
            record = JobRecord.for_ticket(ticket, fingerprint)
            record.created_at = record.updated_at = self._clock()
            if existing is not None:
                await self._io(self._store.replace, record)
            elif not await self._io(self._store.create, record):
                # A concurrent duplicate won the race to create the record.
                self._busy.discard(job_id)
                winner = await self._io(self._store.get, job_id)
                if winner is None:  # pragma: no cover - created and deleted in between
                    raise JobNotFound(f"job {job_id} vanished while being accepted")
                return self._repeat(winner, fingerprint)
        except BaseException:
            self._busy.discard(job_id)
            raise
        self._observer.accepted(ticket)
        self._count_stages()
        return Acceptance(job=Job(ticket, record, stage_entered_at=self._clock()), record=record)

    def _count_stages(self) -> None:
        """This replica's jobs per stage, for the observer: the running ones by their record's
        stage, and those accepted but not yet running as accepted (queued)."""
        counts: dict[str, int] = {}
        for job in self._running.values():
            counts[job.record.stage.value] = counts.get(job.record.stage.value, 0) + 1
        waiting = len(self._busy - set(self._running))
        counts[Stage.ACCEPTED.value] = counts.get(Stage.ACCEPTED.value, 0) + waiting
        self._observer.jobs_in_stages(counts)

    def _known(self, generation_request_id: str) -> JobRecord | KnownOutcome | None:
        """The job's current state if this replica knows it without storage (module docstring)."""
        running = self._running.get(generation_request_id)
        if running is not None and running.record.status == "processing":
            return running.record  # the record this replica writes: none is newer
        return self._outcomes.get(generation_request_id, self._clock())

    def _replaceable(self, record: JobRecord) -> bool:
        """An id is free again once its window has passed and its job has ended: a job still
        running (or still calling back) keeps its record, so no new job overwrites it."""
        expired = self._clock() - record.created_at > self._policy.idempotency_window_seconds
        return expired and record.stage in (Stage.COMPLETED, Stage.FAILED)

    @staticmethod
    def _repeat(record: JobRecord | KnownOutcome, fingerprint: str) -> Acceptance:
        if record.fingerprint != fingerprint:
            raise JobConflict(
                f"generation_request_id {record.generation_request_id!r} was already used with a different "
                "request body; use a new id for a new generation"
            )
        return Acceptance(job=None, record=record)

    # --- one run ---------------------------------------------------------------------------------

    async def run(self, job: Job) -> None:
        """Generate, store, call back. Whatever fails, the job ends with a recorded outcome and a
        callback (or, when even storage is down, an open marker that a sweep picks up)."""
        job_id = job.ticket.generation_request_id
        self._running[job_id] = job
        self._busy.add(job_id)
        heartbeat = asyncio.create_task(self._beat(job))
        try:
            try:
                payload = await self._generate_and_store(job)
            except Exception as exc:
                if was_cancelled(exc):
                    logger.info("job %s: cancelled by the client", job_id)
                    payload = failed_payload(job.ticket, CANCELLED_REASON, self._clock(), status="cancelled")
                else:
                    reason = f"generation failed: {describe_failure(exc)}"
                    logger.error("job %s: %s", job_id, reason)
                    payload = failed_payload(job.ticket, reason, self._clock())
            finally:
                self._busy.discard(job_id)  # from here on it only waits on its callback
            self._observer.finished(
                job.ticket, payload.status, payload.error, self._clock() - job.ticket.accepted_at
            )
            await self._finish(job, payload)
            await self._flush(job)  # a callback scheduled for later is on record when the run ends
        except Exception:
            # Not even the outcome could be recorded: the marker stays open, a sweep retries.
            logger.exception("job %s: could not be finished; left for a sweep", job_id)
        finally:
            heartbeat.cancel()
            self._busy.discard(job_id)
            self._running.pop(job_id, None)
            self._count_stages()

    async def _generate_and_store(self, job: Job) -> CallbackPayload:
        for attempt in range(1, self._policy.engine_max_attempts + 1):
            await self._move(job, Stage.GENERATING)
            tasks = [
                asyncio.ensure_future(self._generate(job, engine, stems))
                for engine, stems in job.ticket.routes.items()
            ]
            try:
                results = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:  # one engine failed: the others' work is of no use now
                    task.cancel()
                raise
            await self._move(job, Stage.STORING)
            try:
                return await self._uploader.store(job.ticket, results)
            except ResultsLost as exc:
                if attempt == self._policy.engine_max_attempts:
                    raise
                logger.warning("job %s: %s; generating again", job.ticket.generation_request_id, exc)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _generate(self, job: Job, engine: str, stems: tuple[str, ...]) -> Any:
        stream = StreamTarget(job.ticket.generation_request_id, job.ticket.stems)
        engine_job = EngineJob(job.ticket.spec, stems, stream=stream)
        for attempt in range(1, self._policy.engine_max_attempts + 1):
            self._set_stems(job, stems, "generating", reset=True)
            started = self._clock()
            try:
                async for event in _within(self._engines.stream(engine, engine_job), engine, self._policy):
                    if isinstance(event, EngineProgress):
                        await self._report(job, engine, event)
                    elif isinstance(event, EngineDone):
                        self._observer.generated(job.ticket, engine, stems, self._clock() - started)
                        self._set_stems(job, stems, "done")
                        job.engine_etas[engine] = 0.0
                        await self._save_progress(job, force=True)
                        return event.result
                raise EngineLost(f"the {engine} engine ended its stream without a result")
            except EngineLost as exc:
                if attempt == self._policy.engine_max_attempts:
                    self._set_stems(job, stems, "failed")
                    raise
                logger.warning(
                    "job %s: %s (%s); retrying on another replica",
                    job.ticket.generation_request_id,
                    engine,
                    exc,
                )
            except Exception:
                self._set_stems(job, stems, "failed")
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _report(self, job: Job, engine: str, event: EngineProgress) -> None:
        progress = self._progress(job)
        for stem, fraction in event.fractions.items():
            entry = progress.stems.get(stem)
            if entry is not None and entry.state == "generating":
                entry.fraction = round(max(entry.fraction, fraction), 4)
        job.engine_etas[engine] = event.eta_seconds
        await self._save_progress(job)

    def _set_stems(self, job: Job, stems: tuple[str, ...], state: Any, reset: bool = False) -> None:
        progress = self._progress(job)
        for stem in stems:
            entry = progress.stems[stem]
            entry.state = state
            if reset:
                entry.fraction = 0.0
            elif state == "done":
                entry.fraction = 1.0

    @staticmethod
    def _progress(job: Job) -> JobProgress:
        if job.record.progress is None:
            job.record.progress = JobProgress.queued(job.ticket.routes, job.ticket.stems)
        return job.record.progress

    async def _save_progress(self, job: Job, force: bool = False) -> None:
        progress = self._progress(job)
        fractions = [entry.fraction for entry in progress.stems.values()]
        progress.fraction = round(sum(fractions) / len(fractions), 4) if fractions else 1.0
        # The job is rendered when its slowest engine is; unknown while any has no estimate.
        pending = [job.engine_etas.get(e) for e in job.ticket.routes if job.engine_etas.get(e) != 0.0]
        known = [eta for eta in pending if eta is not None]
        progress.eta_seconds = (max(known) if known else 0.0) if len(known) == len(pending) else None
        now = self._clock()
        wait = PROGRESS_SAVE_SECONDS - (now - job.progress_saved_at)
        if force or wait <= 0:
            job.progress_saved_at = now
            await self._save(job)
        elif job.trailing_save is None or job.trailing_save.done():
            # Held back by the throttle: written a little later, so the last report before a quiet
            # stretch (the codec, loudness) is not lost until the next stage.
            job.trailing_save = asyncio.create_task(self._save_later(job, wait))

    async def _save_later(self, job: Job, delay: float) -> None:
        await self._sleep(delay)
        if job.record.stage == Stage.GENERATING:
            job.progress_saved_at = self._clock()
            await self._save(job)

    # --- the outcome and its callback ------------------------------------------------------------

    async def _finish(self, job: Job, payload: CallbackPayload) -> None:
        record = job.record
        record.status = payload.status
        record.result = payload
        record.error = payload.error
        if job.ticket.callback_url:
            record.callback = self._delivery.new_state(job.ticket.callback_url, job.ticket.webhook_id)
            await self._move(job, Stage.CALLING_BACK)
            # The outcome is recorded before the client hears it; when storage is failing, the
            # callback is not held back by it (the record catches up, or a sweep does).
            if not job.write_failed:
                await self._flush(job)
        await self._deliver(job)

    async def _deliver(self, job: Job) -> None:
        """Attempts due now (inline retries), each recorded; a later one stays scheduled on the
        record for a sweep. The job closes once delivered, given up, or without a callback URL."""
        record = job.record
        state, payload = record.callback, record.result
        if state is not None and payload is not None and not state.finished:
            body = payload.model_dump_json().encode()

            async def persist(_: CallbackState) -> None:
                await self._save(job)

            await self._delivery.run(state, body, persist)
        if state is None or state.finished:
            await self._move(job, Stage.COMPLETED if record.status == "completed" else Stage.FAILED)
            # Closed only once the final record is written: else a sweep finds it and finishes it.
            if await self._flush(job):
                async with job.marker_lock:
                    job.closed = True
                    await self._io(self._store.close, record.generation_request_id, quiet=True)

    # --- record writes ---------------------------------------------------------------------------

    async def _move(self, job: Job, stage: Stage) -> None:
        record = job.record
        if stage != record.stage and stage not in TRANSITIONS[record.stage]:
            raise IllegalTransition(f"job {record.generation_request_id}: {record.stage} -> {stage}")
        if stage != record.stage:
            now = self._clock()
            self._observer.stage(job.ticket, stage.value, now - (job.stage_entered_at or now))
            job.stage_entered_at = now
        record.stage = stage
        self._count_stages()
        await self._save(job)

    async def _save(self, job: Job) -> None:
        """Queue a write of the record as it is now. Writes leave in order from one writer task
        per job, off the job's path: storage that hangs delays the record, never the stems. A
        snapshot replaces a queued one of the same stage (progress), so every stage is written,
        in order, and a hung store never piles up more than one write per stage."""
        snapshot = job.record.model_copy(deep=True)
        snapshot.updated_at = self._clock()
        if job.pending and job.pending[-1].stage == snapshot.stage:
            job.pending[-1] = snapshot
        else:
            job.pending.append(snapshot)
        if job.writer is None or job.writer.done():
            job.writer = asyncio.create_task(self._write(job))
            self._writers.add(job.writer)  # the loop keeps only weak references to tasks
            job.writer.add_done_callback(self._writers.discard)

    async def _write(self, job: Job) -> None:
        while job.pending:
            snapshot = job.pending.pop(0)
            try:
                await self._io(self._store.save, snapshot)
            except StemforgeError as exc:
                job.write_failed = True
                logger.error("job %s: record not updated: %s", snapshot.generation_request_id, exc)
                continue
            job.write_failed = False
            # An outcome is known to repeats once it is written (``stemforge.jobs.outcomes``).
            self._outcomes.remember(snapshot)

    async def _flush(self, job: Job) -> bool:
        """Wait for the queued writes; whether the last one went through."""
        while job.writer is not None and not job.writer.done():
            await asyncio.shield(job.writer)
        return not job.write_failed

    async def _beat(self, job: Job) -> None:
        # The marker was written when the job was accepted; refresh it so no sweep takes over.
        while not job.closed:
            await self._sleep(self._policy.heartbeat_seconds)
            async with job.marker_lock:
                if job.closed:
                    return
                try:
                    await self._io(self._store.beat, job.ticket, self._clock())
                except StemforgeError as exc:
                    logger.warning("job %s: heartbeat not written: %s", job.ticket.generation_request_id, exc)

    @staticmethod
    async def _io(action: Callable[..., Any], *args: Any, quiet: bool = False) -> Any:
        """A blocking storage call in a thread; ``quiet``: log a storage failure and go on (the
        job must still reach its callback)."""
        try:
            return await asyncio.to_thread(action, *args)
        except StemforgeError as exc:
            if not quiet:
                raise
            logger.error("job record not updated (%s): %s", getattr(action, "__name__", action), exc)
            return None

    # --- sweeps: abandoned jobs and scheduled callbacks ------------------------------------------

    async def run_sweeps(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("sweep failed; trying again in %s s", interval_seconds)
            await self._sleep(interval_seconds)

    async def sweep(self) -> None:
        now = self._clock()
        # A fresh heartbeat means a live job: skip it without reading its record, so sweeps stay
        # cheap with many jobs in flight.
        stale = [
            marker
            for marker in await self._io(self._store.open_markers)
            if not self.is_running(marker.generation_request_id)
            and now - marker.heartbeat_at >= self._policy.lease_seconds
        ]
        # Side by side: one hanging callback receiver must not hold up every other due retry.
        limit = asyncio.Semaphore(SWEEP_CONCURRENCY)

        async def attend(marker: OpenJobMarker) -> None:
            async with limit:
                try:
                    await self._attend(marker)
                except Exception:
                    logger.exception("sweep: job %s not attended; next sweep", marker.generation_request_id)

        await asyncio.gather(*(attend(marker) for marker in stale))

    async def _attend(self, marker: OpenJobMarker) -> None:
        record = await self._io(self._store.get, marker.generation_request_id)
        if record is None or record.run_id != marker.run_id:
            await self._io(self._store.close, marker.generation_request_id)
        elif record.status == "processing":
            await self._take_over(record, marker)
        else:
            await self._callback_if_due(record)

    async def _take_over(self, record: JobRecord, marker: OpenJobMarker) -> None:
        attempt = max(record.attempt, marker.attempt) + 1
        if not await self._claim(record, f"attempt-{attempt}"):
            return  # another replica took it
        ticket = dataclasses.replace(record.job_ticket(), attempt=attempt)
        record.attempt = attempt
        job = Job(ticket, record)
        if record.stage in (Stage.GENERATING, Stage.STORING):
            await self._move(job, Stage.ACCEPTED)
        else:
            await self._save(job)
        await self._io(self._store.beat, ticket, self._clock())
        if attempt > self._policy.max_job_attempts:
            reason = f"job abandoned: its worker stopped during {attempt - 1} attempt(s)"
            logger.error("job %s: %s", record.generation_request_id, reason)
            self._running[record.generation_request_id] = job
            try:
                await self._finish(job, failed_payload(ticket, reason, self._clock()))
            finally:
                self._running.pop(record.generation_request_id, None)
            return
        logger.warning("job %s: heartbeat lost; resuming (attempt %d)", record.generation_request_id, attempt)
        self._running[record.generation_request_id] = job  # counted from now, not when it starts
        resumed = asyncio.create_task(self.run(job))
        self._resumed.add(resumed)  # the loop keeps only weak references to tasks
        resumed.add_done_callback(self._resumed.discard)

    async def _claim(self, record: JobRecord, what: str) -> bool:
        # A claim lasts one lease: long enough for a callback attempt or a takeover to be
        # recorded, short enough that a replica dying with one does not block the job for ever.
        won: bool = await self._io(self._store.claim, record, what, self._clock(), self._policy.lease_seconds)
        return won

    async def _callback_if_due(self, record: JobRecord) -> None:
        state = record.callback
        if state is None or state.finished:
            job = Job(record.job_ticket(), record)
            await self._deliver(job)  # closes it: the outcome was recorded, the marker was not
            return
        if state.next_attempt_at is None or state.next_attempt_at > self._clock():
            return
        if await self._claim(record, f"callback-{len(state.attempts) + 1}"):
            await self._deliver(Job(record.job_ticket(), record))
