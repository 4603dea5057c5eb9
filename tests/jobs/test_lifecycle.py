"""The job lifecycle as a state machine, driven without Ray: fake engine and uploader ports, a
fake clock, a real JobStore on local disk."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from stemforge.api.schemas import CallbackPayload, GeneratedStem
from stemforge.engines.base import EngineDone, EngineEvent, EngineJob, EngineProgress, StreamTarget
from stemforge.errors import EngineLost, JobCancelled, JobConflict, Overloaded, ResultsLost, StorageError
from stemforge.jobs.callbacks import AttemptOutcome, CallbackDelivery
from stemforge.jobs.lifecycle import (
    TRANSITIONS,
    IllegalTransition,
    Job,
    JobLifecycle,
    LifecyclePolicy,
)
from stemforge.jobs.outcomes import CLOCK_SKEW_SECONDS, KnownOutcomes
from stemforge.jobs.records import JobRecord, Stage
from stemforge.jobs.store import JobStore
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import MusicSpec
from stemforge.storage.local import LocalDiskStorage

CALLBACK_URL = "http://receiver.example/cb"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0.001)


class FakeEngines:
    """Each engine follows a script of runs: "ok" (progress, then done), "lost" (the replica dies
    mid-run), "boom" (the engine raises)."""

    def __init__(self, clock: "Clock | None" = None, **scripts: list[str]) -> None:
        self.scripts = {engine: list(runs) for engine, runs in scripts.items()}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.clock = clock  # advanced 2 s per progress event when given: rendering takes time

    async def stream(self, engine: str, job: EngineJob) -> AsyncIterator[EngineEvent]:
        self.calls.append((engine, job.stems))
        run = self.scripts[engine].pop(0) if self.scripts.get(engine) else "ok"
        if run == "hang":  # a call Serve queues for a deployment with no replica: nothing comes
            await asyncio.sleep(3600)
        for fraction in (0.25, 0.5):
            await asyncio.sleep(0.01)  # engines work concurrently
            if self.clock is not None:
                self.clock.now += 2
            yield EngineProgress(dict.fromkeys(job.stems, fraction), eta_seconds=4.0)
        if run == "lost":
            raise EngineLost(f"{engine} replica lost")
        if run == "boom":
            raise ValueError(f"{engine} cannot render this")
        if run == "cancelled":
            raise JobCancelled("cancelled by the client")
        yield EngineDone(result=(engine, job.stems))


class FakeUploader:
    def __init__(self, answers: Sequence[int] = (200,), store_runs: Sequence[str] = ()) -> None:
        self.answers = list(answers)
        self.store_runs = list(store_runs)
        self.stored: list[Any] = []
        self.attempts: list[bytes] = []

    async def store(self, ticket: JobTicket, results: Sequence[Any]) -> CallbackPayload:
        run = self.store_runs.pop(0) if self.store_runs else "ok"
        if run == "lost":
            raise ResultsLost("the engine replica holding them died")
        self.stored.append(list(results))
        if run == "refused":
            return CallbackPayload(
                generation_request_id=ticket.generation_request_id,
                audio_file_id=ticket.audio_file_id,
                status="failed",
                processing_time_seconds=0.1,
                error="storing stems failed: 403",
            )
        stems = [stem for _, group in results for stem in group]
        return CallbackPayload(
            generation_request_id=ticket.generation_request_id,
            audio_file_id=ticket.audio_file_id,
            status="completed",
            processing_time_seconds=0.1,
            generated_stems=[
                GeneratedStem(
                    stem_type=s,
                    blob_url=f"http://blobs/{s}.wav",
                    file_size_bytes=4,
                    sample_rate=44100,
                    channels=2,
                )
                for s in stems
            ],
        )

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        self.attempts.append(body)
        status = self.answers.pop(0) if self.answers else 200
        return AttemptOutcome(status, None if status < 300 else f"HTTP {status}")


class RecordingStore(JobStore):
    """A real store that remembers the stage of every record it saved, in order."""

    def __init__(self, storage: LocalDiskStorage) -> None:
        super().__init__(storage)
        self.stages: list[str] = []
        self.fractions: list[float] = []
        self.fail_saves = False
        self.reads = 0  # of records (get)

    def get(self, generation_request_id: str) -> JobRecord | None:
        self.reads += 1
        return super().get(generation_request_id)

    def create(self, record: JobRecord) -> bool:
        self._remember(record)
        return super().create(record)

    def save(self, record: JobRecord) -> None:
        if self.fail_saves:
            raise StorageError("storage is down")
        self._remember(record)
        super().save(record)

    def _remember(self, record: JobRecord) -> None:
        if not self.stages or self.stages[-1] != record.stage:
            self.stages.append(str(record.stage))
        if record.progress is not None:
            self.fractions.append(record.progress.fraction)


POLICY = LifecyclePolicy(
    heartbeat_seconds=5,
    lease_seconds=60,
    engine_max_attempts=2,
    max_job_attempts=2,
    max_active_jobs=4,
    idempotency_window_seconds=3600,
)


@pytest.fixture()
def store(tmp_path: Path) -> RecordingStore:
    return RecordingStore(LocalDiskStorage(tmp_path, "audio-files", "http://blobs"))


def _lifecycle(
    store: JobStore,
    engines: FakeEngines,
    uploader: FakeUploader,
    clock: Clock,
    policy: LifecyclePolicy = POLICY,
) -> JobLifecycle:
    delivery = CallbackDelivery(uploader, [0, 5, 300], 10, clock=clock, sleep=clock.sleep)
    return JobLifecycle(store, engines, uploader, delivery, policy, clock=clock, sleep=clock.sleep)


def _ticket(
    gen_id: str = "gen-1",
    callback: str | None = CALLBACK_URL,
    routes: dict[str, tuple[str, ...]] | None = None,
) -> JobTicket:
    routes = routes or {"procedural": ("drums", "bass")}
    return JobTicket(
        generation_request_id=gen_id,
        audio_file_id="aud-1",
        callback_url=callback,
        accepted_at=1_000_000.0,
        stems=tuple(s for group in routes.values() for s in group),
        routes=routes,
        spec=MusicSpec(bpm=120, duration_seconds=2.0, seed=5),
        parameters={"random_seed": 5},
    )


async def _accept_and_run(lifecycle: JobLifecycle, ticket: JobTicket) -> JobRecord:
    acceptance = await lifecycle.accept(ticket, "fp")
    assert acceptance.job is not None
    await lifecycle.run(acceptance.job)
    return acceptance.job.record


def test_acceptance_records_the_job_before_anything_runs(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), clock)
    acceptance = asyncio.run(lifecycle.accept(_ticket(), "fp"))
    assert acceptance.is_new
    record = store.get("gen-1")
    assert record is not None and record.stage == Stage.ACCEPTED and record.status == "processing"
    assert record.progress is not None
    assert {s: p.state for s, p in record.progress.stems.items()} == {"drums": "queued", "bass": "queued"}
    assert [m.generation_request_id for m in store.open_markers()] == ["gen-1"]


def test_a_repeat_names_the_existing_job_and_another_body_is_a_conflict(store: RecordingStore) -> None:
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())

    async def scenario() -> None:
        assert (await lifecycle.accept(_ticket(), "fp")).is_new
        repeat = await lifecycle.accept(_ticket(), "fp")
        assert not repeat.is_new and repeat.record.generation_request_id == "gen-1"
        with pytest.raises(JobConflict, match="different request body"):
            await lifecycle.accept(_ticket(), "other-fp")

    asyncio.run(scenario())


def test_an_expired_id_of_a_finished_job_starts_a_new_job(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), clock)

    async def scenario() -> None:
        first = await _accept_and_run(lifecycle, _ticket())
        clock.now += POLICY.idempotency_window_seconds + 1
        second = await lifecycle.accept(_ticket(), "another body, allowed once expired")
        assert second.is_new and second.record.run_id != first.run_id

    asyncio.run(scenario())


def test_an_expired_id_whose_job_still_runs_is_not_replaced(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), clock)

    async def scenario() -> None:
        first = await lifecycle.accept(_ticket(), "fp")
        clock.now += POLICY.idempotency_window_seconds + 1
        with pytest.raises(JobConflict):
            await lifecycle.accept(_ticket(), "another body")
        again = await lifecycle.accept(_ticket(), "fp")
        assert not again.is_new and again.record.run_id == first.record.run_id

    asyncio.run(scenario())


def test_beyond_max_active_jobs_acceptance_is_refused(store: RecordingStore) -> None:
    policy = LifecyclePolicy(**{**POLICY.__dict__, "max_active_jobs": 0})
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock(), policy)
    with pytest.raises(Overloaded, match="MAX_ACTIVE_JOBS"):
        asyncio.run(lifecycle.accept(_ticket(), "fp"))
    assert store.get("gen-1") is None


def test_a_repeat_of_a_job_processing_here_is_answered_without_reading_storage(
    store: RecordingStore,
) -> None:
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())

    async def scenario() -> None:
        acceptance = await lifecycle.accept(_ticket(), "fp")
        assert acceptance.job is not None
        running = asyncio.create_task(lifecycle.run(acceptance.job))
        await asyncio.sleep(0)  # the run has started: the job is in this replica's memory
        assert lifecycle.is_running("gen-1")
        reads = store.reads
        repeat = await lifecycle.accept(_ticket(), "fp")
        assert not repeat.is_new and repeat.record is acceptance.job.record
        assert repeat.record.status == "processing"
        with pytest.raises(JobConflict, match="different request body"):
            await lifecycle.accept(_ticket(), "other-fp")
        assert store.reads == reads
        await running

    asyncio.run(scenario())


def test_a_repeat_of_a_finished_job_is_answered_from_its_recorded_outcome(store: RecordingStore) -> None:
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())

    async def scenario() -> None:
        record = await _accept_and_run(lifecycle, _ticket())
        reads = store.reads
        for _ in range(3):
            repeat = await lifecycle.accept(_ticket(), "fp")
            assert not repeat.is_new and repeat.record.status == "completed"
            assert repeat.record.run_id == record.run_id
        with pytest.raises(JobConflict, match="different request body"):
            await lifecycle.accept(_ticket(), "other-fp")
        assert store.reads == reads

    asyncio.run(scenario())


def test_an_outcome_that_could_not_be_written_is_not_answered_from_memory(store: RecordingStore) -> None:
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())

    async def scenario() -> None:
        acceptance = await lifecycle.accept(_ticket(), "fp")
        assert acceptance.job is not None
        store.fail_saves = True  # the outcome is reached but never recorded
        await lifecycle.run(acceptance.job)
        assert acceptance.job.record.status == "completed"
        reads = store.reads
        repeat = await lifecycle.accept(_ticket(), "fp")
        # What storage holds (a sweep will resume it), not what this replica could not record.
        assert repeat.record.status == "processing" and store.reads == reads + 1

    asyncio.run(scenario())


def test_another_replicas_outcome_is_read_once_but_a_job_processing_there_every_time(
    store: RecordingStore,
) -> None:
    clock = Clock()
    here, there = (_lifecycle(store, FakeEngines(), FakeUploader(), clock) for _ in range(2))

    async def scenario() -> None:
        acceptance = await there.accept(_ticket(), "fp")
        assert acceptance.job is not None
        reads = store.reads
        for _ in range(2):  # processing elsewhere: it may move on there, so storage decides
            assert (await here.accept(_ticket(), "fp")).record.status == "processing"
        assert store.reads == reads + 2
        await there.run(acceptance.job)
        for _ in range(3):  # recorded outcome: read once, then known
            assert (await here.accept(_ticket(), "fp")).record.status == "completed"
        assert store.reads == reads + 3

    asyncio.run(scenario())


def test_a_known_outcome_is_forgotten_before_its_idempotency_window_ends(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), clock)

    async def scenario() -> None:
        first = await _accept_and_run(lifecycle, _ticket())
        clock.now = first.created_at + POLICY.idempotency_window_seconds - CLOCK_SKEW_SECONDS + 1
        reads = store.reads
        repeat = await lifecycle.accept(_ticket(), "fp")
        assert not repeat.is_new and store.reads == reads + 1  # storage decides near the end
        clock.now = first.created_at + POLICY.idempotency_window_seconds + 1
        assert (await lifecycle.accept(_ticket(), "a new body, once expired")).is_new

    asyncio.run(scenario())


def test_known_outcomes_keep_the_most_recently_used_within_capacity() -> None:
    outcomes = KnownOutcomes(capacity=2, window_seconds=3600)

    def finished(gen_id: str) -> JobRecord:
        record = JobRecord.for_ticket(_ticket(gen_id), "fp")
        record.status, record.created_at = "completed", 0.0
        return record

    processing = JobRecord.for_ticket(_ticket("running"), "fp")
    outcomes.remember(processing)
    assert len(outcomes) == 0, "a job still processing may move on elsewhere"
    for gen_id in ("a", "b"):
        outcomes.remember(finished(gen_id))
    assert outcomes.get("a", now=1.0) is not None  # "a" used last: "b" goes first
    outcomes.remember(finished("c"))
    assert outcomes.get("b", now=1.0) is None
    assert {g for g in "ac" if outcomes.get(g, now=1.0)} == {"a", "c"}
    assert outcomes.get("a", now=3600.0 - CLOCK_SKEW_SECONDS + 1) is None
    assert len(outcomes) == 1


def test_a_successful_job_goes_through_every_stage_in_order(store: RecordingStore) -> None:
    uploader = FakeUploader()
    lifecycle = _lifecycle(store, FakeEngines(), uploader, Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    assert store.stages == ["accepted", "generating", "storing", "calling back", "completed"]
    record = store.get("gen-1")
    assert record is not None and record.status == "completed"
    assert record.progress is not None and record.progress.fraction == 1.0
    assert record.progress.eta_seconds == 0.0
    assert all(p.state == "done" for p in record.progress.stems.values())
    assert store.fractions == sorted(store.fractions), "progress never goes back"
    assert record.callback is not None and record.callback.delivered
    assert b'"status":"completed"' in uploader.attempts[0]
    assert store.open_markers() == []
    assert lifecycle.active == 0


def test_without_a_callback_url_the_job_completes_after_storing(store: RecordingStore) -> None:
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket(callback=None)))
    assert store.stages == ["accepted", "generating", "storing", "completed"]


def test_progress_is_per_stem_with_its_engine_and_an_eta(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle = _lifecycle(store, FakeEngines(clock), FakeUploader(), clock)
    snapshots: list[dict[str, Any]] = []
    original = store.save

    def save(record: JobRecord) -> None:
        if record.stage == Stage.GENERATING and record.progress is not None:
            snapshots.append(record.progress.model_dump())
        original(record)

    store.save = save  # type: ignore[method-assign]
    routes = {"procedural": ("drums",), "musicgen": ("vocals",)}
    asyncio.run(_accept_and_run(lifecycle, _ticket(routes=routes)))

    engines = {stem: entry["engine"] for stem, entry in snapshots[-1]["stems"].items()}
    assert engines == {"drums": "procedural", "vocals": "musicgen"}
    midway = [s for s in snapshots if 0 < s["fraction"] < 1]
    assert midway, snapshots
    assert any(s["eta_seconds"] == 4.0 for s in midway)
    assert any(all(entry["state"] == "generating" for entry in s["stems"].values()) for s in midway)


def test_an_engine_failure_calls_back_failed_with_the_cause(store: RecordingStore) -> None:
    uploader = FakeUploader()
    lifecycle = _lifecycle(store, FakeEngines(procedural=["boom"]), uploader, Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    record = store.get("gen-1")
    assert record is not None and record.status == "failed" and record.stage == Stage.FAILED
    assert record.error == "generation failed: ValueError: procedural cannot render this"
    assert record.progress is not None
    assert {p.state for p in record.progress.stems.values()} == {"failed"}
    assert store.stages == ["accepted", "generating", "calling back", "failed"]
    assert b'"status":"failed"' in uploader.attempts[0]
    assert uploader.stored == []


def test_a_cancelled_job_calls_back_cancelled_is_not_retried_and_stores_nothing(
    store: RecordingStore,
) -> None:
    uploader = FakeUploader()
    engines = FakeEngines(procedural=["cancelled"])
    lifecycle = _lifecycle(store, engines, uploader, Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    record = store.get("gen-1")
    assert record is not None and record.status == "cancelled" and record.stage == Stage.FAILED
    assert record.error is not None and record.error.startswith("cancelled by the client")
    assert engines.calls == [("procedural", ("drums", "bass"))]  # a cancel is not a lost replica
    assert b'"status":"cancelled"' in uploader.attempts[0]
    assert uploader.stored == []


def test_engines_are_told_where_to_stream_every_stem_of_the_job(store: RecordingStore) -> None:
    seen: list[EngineJob] = []
    engines = FakeEngines()
    original = engines.stream

    def stream(engine: str, job: EngineJob) -> AsyncIterator[EngineEvent]:
        seen.append(job)
        return original(engine, job)

    engines.stream = stream  # type: ignore[method-assign]
    asyncio.run(_accept_and_run(_lifecycle(store, engines, FakeUploader(), Clock()), _ticket()))

    assert [job.stream for job in seen] == [StreamTarget("gen-1", ("drums", "bass"))]


def test_a_lost_replica_is_retried_then_the_job_completes(store: RecordingStore) -> None:
    engines = FakeEngines(procedural=["lost"])
    lifecycle = _lifecycle(store, engines, FakeUploader(), Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))
    assert engines.calls == [("procedural", ("drums", "bass"))] * 2
    record = store.get("gen-1")
    assert record is not None and record.status == "completed"


def test_a_replica_lost_on_every_attempt_fails_the_job(store: RecordingStore) -> None:
    engines = FakeEngines(procedural=["lost", "lost"])
    lifecycle = _lifecycle(store, engines, FakeUploader(), Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))
    record = store.get("gen-1")
    assert record is not None and record.status == "failed"
    assert "EngineLost" in (record.error or "")
    assert len(engines.calls) == POLICY.engine_max_attempts


def test_results_lost_before_storing_are_generated_again(store: RecordingStore) -> None:
    engines = FakeEngines()
    uploader = FakeUploader(store_runs=["lost"])
    lifecycle = _lifecycle(store, engines, uploader, Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))
    assert len(engines.calls) == 2
    assert store.stages == [
        "accepted",
        "generating",
        "storing",
        "generating",
        "storing",
        "calling back",
        "completed",
    ]


def test_storage_refusing_the_stems_fails_the_job_with_a_callback(store: RecordingStore) -> None:
    uploader = FakeUploader(store_runs=["refused"])
    lifecycle = _lifecycle(store, FakeEngines(), uploader, Clock())
    asyncio.run(_accept_and_run(lifecycle, _ticket()))
    record = store.get("gen-1")
    assert record is not None and record.status == "failed" and record.stage == Stage.FAILED
    assert "storing stems failed" in (record.error or "")
    assert b"storing stems failed" in uploader.attempts[0]


def test_records_that_cannot_be_written_still_end_in_a_callback(store: RecordingStore) -> None:
    uploader = FakeUploader()
    lifecycle = _lifecycle(store, FakeEngines(), uploader, Clock())

    async def scenario() -> None:
        acceptance = await lifecycle.accept(_ticket(), "fp")
        assert acceptance.job is not None
        store.fail_saves = True  # storage goes down right after the 202
        await lifecycle.run(acceptance.job)

    asyncio.run(scenario())
    assert len(uploader.attempts) == 1 and b'"status":"completed"' in uploader.attempts[0]


def test_a_callback_retry_due_later_is_left_to_a_sweep(store: RecordingStore) -> None:
    clock = Clock()
    uploader = FakeUploader(answers=[503, 503, 200])
    lifecycle = _lifecycle(store, FakeEngines(), uploader, clock)
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    record = store.get("gen-1")
    assert record is not None and record.stage == Stage.CALLING_BACK and record.status == "completed"
    assert record.callback is not None and len(record.callback.attempts) == 2  # at once, then 5 s inline
    assert record.callback.next_attempt_at is not None
    assert len(store.open_markers()) == 1

    asyncio.run(lifecycle.sweep())
    assert len(uploader.attempts) == 2, "not due yet"
    clock.now = record.callback.next_attempt_at + 1
    asyncio.run(lifecycle.sweep())

    record = store.get("gen-1")
    assert record is not None and record.stage == Stage.COMPLETED
    assert record.callback is not None and record.callback.delivered and len(record.callback.attempts) == 3
    assert store.open_markers() == []


def _abandon(store: JobStore, clock: Clock, gen_id: str, attempt: int, stage: Stage) -> None:
    """A job left behind by a replica that died: its record mid-run, its heartbeat stale."""
    ticket = _ticket(gen_id)
    record = JobRecord.for_ticket(ticket, "fp")
    record.attempt, record.stage = attempt, stage
    store.create(record)
    store.beat(record, at=clock.now - POLICY.lease_seconds - 1)


def test_a_crashed_job_is_resumed_by_a_sweep_with_the_next_attempt(store: RecordingStore) -> None:
    clock = Clock()
    uploader = FakeUploader()
    _abandon(store, clock, "orphan", attempt=1, stage=Stage.GENERATING)
    lifecycle = _lifecycle(store, FakeEngines(), uploader, clock)

    async def scenario() -> None:
        await lifecycle.sweep()
        while lifecycle.is_running("orphan"):
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    record = store.get("orphan")
    assert record is not None and record.status == "completed" and record.attempt == 2
    # Left generating by the dead replica, back to accepted for the new attempt, then on.
    assert store.stages[:4] == ["generating", "accepted", "generating", "storing"]
    assert store.open_markers() == []


def test_a_job_out_of_attempts_fails_with_a_callback(store: RecordingStore) -> None:
    clock = Clock()
    uploader = FakeUploader()
    engines = FakeEngines()
    _abandon(store, clock, "orphan", attempt=POLICY.max_job_attempts, stage=Stage.STORING)
    asyncio.run(_lifecycle(store, engines, uploader, clock).sweep())
    record = store.get("orphan")
    assert record is not None and record.status == "failed" and record.stage == Stage.FAILED
    assert "abandoned" in (record.error or "")
    assert engines.calls == []
    assert b"abandoned" in uploader.attempts[0]


def test_a_live_job_is_not_taken_over(store: RecordingStore) -> None:
    clock = Clock()
    _abandon(store, clock, "alive", attempt=1, stage=Stage.GENERATING)
    store.beat(store.get("alive"), at=clock.now)  # type: ignore[arg-type]
    engines = FakeEngines()
    asyncio.run(_lifecycle(store, engines, FakeUploader(), clock).sweep())
    assert engines.calls == []


def test_of_two_replicas_sweeping_an_abandoned_job_exactly_one_takes_it_over(store: RecordingStore) -> None:
    clock = Clock()
    _abandon(store, clock, "orphan", attempt=1, stage=Stage.GENERATING)
    engines = FakeEngines()
    replicas = [_lifecycle(store, engines, FakeUploader(), clock) for _ in range(2)]

    async def scenario() -> None:
        await asyncio.gather(*(replica.sweep() for replica in replicas))
        while any(replica.is_running("orphan") for replica in replicas):
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert len(engines.calls) == 1
    record = store.get("orphan")
    assert record is not None and record.status == "completed" and record.attempt == 2


@pytest.mark.parametrize("final", [Stage.COMPLETED, Stage.FAILED])
def test_finished_jobs_move_nowhere(final: Stage) -> None:
    assert TRANSITIONS[final] == frozenset()


def test_an_illegal_move_is_refused(store: RecordingStore) -> None:
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())
    ticket = _ticket()
    record = JobRecord.for_ticket(ticket, "fp")
    record.stage = Stage.COMPLETED
    with pytest.raises(IllegalTransition, match="completed -> generating"):
        asyncio.run(lifecycle._move(Job(ticket, record), Stage.GENERATING))


def test_a_callback_claim_left_by_a_dead_replica_does_not_block_delivery_for_ever(
    store: RecordingStore,
) -> None:
    clock = Clock()
    uploader = FakeUploader(answers=[503, 503])
    lifecycle = _lifecycle(store, FakeEngines(), uploader, clock)
    asyncio.run(_accept_and_run(lifecycle, _ticket()))
    record = store.get("gen-1")
    assert record is not None and record.callback is not None and record.callback.next_attempt_at is not None
    # Another replica claimed the third attempt, then died during it (kill -9 while the receiver hung).
    clock.now = record.callback.next_attempt_at + 1
    assert store.claim(record, "callback-3", clock.now, POLICY.lease_seconds)
    asyncio.run(lifecycle.sweep())
    assert len(uploader.attempts) == 2, "the claim holds while it is fresh"

    clock.now += POLICY.lease_seconds
    asyncio.run(lifecycle.sweep())

    record = store.get("gen-1")
    assert record is not None and record.stage == Stage.COMPLETED and record.callback is not None
    assert record.callback.delivered and len(uploader.attempts) == 3


def test_a_resumed_run_calls_back_under_its_own_webhook_id(store: RecordingStore) -> None:
    # A first run's outcome was delivered but could not be recorded (read-only disk); the resumed
    # run's outcome must not reuse that webhook-id, or a de-duplicating receiver keeps the old one.
    clock = Clock()
    _abandon(store, clock, "orphan", attempt=1, stage=Stage.GENERATING)
    first_id = store.get("orphan").job_ticket().webhook_id  # type: ignore[union-attr]
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), clock)

    async def scenario() -> None:
        await lifecycle.sweep()
        while lifecycle.is_running("orphan"):
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    record = store.get("orphan")
    assert record is not None and record.callback is not None and record.callback.delivered
    assert record.callback.webhook_id != first_id
    assert record.callback.webhook_id.startswith(first_id)  # the job's id, then the attempt


def test_concurrent_acceptances_never_exceed_max_active_jobs(store: RecordingStore) -> None:
    # The bound was checked before the awaits that write the record: 81 jobs got in against 64.
    policy = LifecyclePolicy(**{**POLICY.__dict__, "max_active_jobs": 3})
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock(), policy)

    async def burst() -> list[object]:
        return await asyncio.gather(
            *(lifecycle.accept(_ticket(f"burst-{i}"), "fp") for i in range(10)), return_exceptions=True
        )

    outcomes = asyncio.run(burst())
    assert sum(1 for o in outcomes if not isinstance(o, Exception)) == 3
    assert sum(1 for o in outcomes if isinstance(o, Overloaded)) == 7
    assert lifecycle.active == 3


class HangingUploader(FakeUploader):
    """Its callback attempts hang until released (a receiver that never answers)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0

    async def attempt(self, url: str, webhook_id: str, body: bytes) -> AttemptOutcome:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        return await super().attempt(url, webhook_id, body)


def test_a_job_waiting_on_its_callback_does_not_hold_a_generation_slot(store: RecordingStore) -> None:
    # 64 jobs pointed at a hanging receiver used to refuse every other client.
    policy = LifecyclePolicy(**{**POLICY.__dict__, "max_active_jobs": 1})

    async def scenario() -> None:
        uploader = HangingUploader()
        lifecycle = _lifecycle(store, FakeEngines(), uploader, Clock(), policy)
        first = await lifecycle.accept(_ticket("hanging"), "fp")
        assert first.job is not None
        running = asyncio.create_task(lifecycle.run(first.job))
        while uploader.in_flight == 0:
            await asyncio.sleep(0.01)
        assert lifecycle.is_running("hanging") and lifecycle.active == 0
        assert (await lifecycle.accept(_ticket("next"), "fp")).is_new
        uploader.release.set()
        await running

    asyncio.run(scenario())


def test_a_sweep_attempts_due_callbacks_side_by_side(store: RecordingStore) -> None:
    # Due retries ran one at a time: about 10 s per hanging receiver, for every job behind it.
    clock = Clock()
    uploader = HangingUploader()
    for gen_id in ("due-1", "due-2", "due-3"):
        record = JobRecord.for_ticket(_ticket(gen_id), "fp")
        record.status, record.stage = "completed", Stage.CALLING_BACK
        record.result = CallbackPayload(
            generation_request_id=gen_id, audio_file_id="aud-1", status="completed", processing_time_seconds=1
        )
        record.callback = CallbackDelivery(uploader, [0], 10, clock=clock).new_state(
            CALLBACK_URL, f"msg_{gen_id}"
        )
        store.create(record)
        store.beat(record, at=clock.now - POLICY.lease_seconds - 1)
    lifecycle = _lifecycle(store, FakeEngines(), uploader, clock)

    async def scenario() -> None:
        sweep = asyncio.create_task(lifecycle.sweep())
        for _ in range(300):  # bounded: one at a time, the other two would never start
            if uploader.most_in_flight == 3:
                break
            await asyncio.sleep(0.01)
        uploader.release.set()
        await sweep

    asyncio.run(scenario())
    assert uploader.most_in_flight == 3
    assert all(store.get(g).stage == Stage.COMPLETED for g in ("due-1", "due-2", "due-3"))  # type: ignore[union-attr]


def test_a_report_held_back_by_the_throttle_is_written_soon_after(store: RecordingStore) -> None:
    # MusicGen reports its last decoding steps, then spends seconds in the codec without a word:
    # the last report used to wait for the next stage to reach the record.
    lifecycle = _lifecycle(store, FakeEngines(), FakeUploader(), Clock())

    async def scenario() -> None:
        acceptance = await lifecycle.accept(_ticket(), "fp")
        job = acceptance.job
        assert job is not None
        await lifecycle._move(job, Stage.GENERATING)
        lifecycle._set_stems(job, ("drums", "bass"), "generating")
        await lifecycle._report(job, "procedural", EngineProgress({"drums": 0.2, "bass": 0.2}))
        await lifecycle._report(job, "procedural", EngineProgress({"drums": 0.9, "bass": 0.9}))
        for _ in range(100):  # bounded: the trailing write comes after the throttle's second
            record = store.get("gen-1")
            if record is not None and record.progress is not None and record.progress.fraction == 0.9:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the held-back report never reached the record")

    asyncio.run(scenario())


class RecordingObserver:
    """Writes down what the lifecycle tells its observer."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.stage_counts: list[dict[str, int]] = []

    def accepted(self, ticket: JobTicket) -> None:
        self.events.append(("accepted", ticket.generation_request_id))

    def stage(self, ticket: JobTicket, stage: str, seconds_in_previous: float) -> None:
        self.events.append(("stage", stage, seconds_in_previous))

    def generated(self, ticket: JobTicket, engine: str, stems: Sequence[str], seconds: float) -> None:
        self.events.append(("generated", engine, tuple(stems), seconds))

    def finished(self, ticket: JobTicket, status: str, reason: str | None, seconds: float) -> None:
        self.events.append(("finished", status, reason))

    def callback_attempt(self, outcome: str) -> None:
        self.events.append(("callback", outcome))

    def jobs_in_stages(self, counts: dict[str, int]) -> None:
        self.stage_counts.append(dict(counts))


def _observed(store: JobStore, engines: FakeEngines, uploader: FakeUploader, clock: Clock):
    observer = RecordingObserver()
    delivery = CallbackDelivery(
        uploader, [0, 5, 300], 10, clock=clock, sleep=clock.sleep, on_attempt=observer.callback_attempt
    )
    lifecycle = JobLifecycle(
        store, engines, uploader, delivery, POLICY, clock=clock, sleep=clock.sleep, observer=observer
    )
    return lifecycle, observer


def test_the_observer_hears_every_stage_the_engines_time_and_the_outcome(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle, observer = _observed(store, FakeEngines(clock), FakeUploader(), clock)
    asyncio.run(_accept_and_run(lifecycle, _ticket(routes={"procedural": ("drums",), "musicgen": ("bass",)})))

    kinds = [event[0] for event in observer.events]
    assert kinds[0] == "accepted"
    assert [e[1] for e in observer.events if e[0] == "stage"] == [
        "generating",
        "storing",
        "calling back",
        "completed",
    ]
    generated = {e[1]: e for e in observer.events if e[0] == "generated"}
    assert set(generated) == {"procedural", "musicgen"}
    assert (
        generated["musicgen"][2] == ("bass",) and generated["musicgen"][3] >= 2.0
    )  # the fake clock's 2 s steps
    assert ("finished", "completed", None) in observer.events
    assert ("callback", "delivered") in observer.events
    assert observer.stage_counts[-1] == {"accepted": 0}  # nothing left running here


def test_the_observer_hears_a_failure_with_its_reason_and_each_callback_retry(store: RecordingStore) -> None:
    clock = Clock()
    lifecycle, observer = _observed(
        store, FakeEngines(procedural=["boom"]), FakeUploader(answers=(503, 200)), clock
    )
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    (finished,) = [e for e in observer.events if e[0] == "finished"]
    assert finished[1] == "failed" and finished[2].startswith("generation failed: ValueError")
    assert [e[1] for e in observer.events if e[0] == "callback"] == ["retry", "delivered"]


def test_an_engine_that_sends_nothing_is_taken_for_lost_and_retried(store: RecordingStore) -> None:
    engines = FakeEngines(procedural=["hang"])
    policy = dataclasses.replace(POLICY, engine_stall_seconds=0.05)
    lifecycle = _lifecycle(store, engines, FakeUploader(), Clock(), policy)
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    record = store.get("gen-1")
    assert record is not None and record.status == "completed"
    assert len(engines.calls) == 2  # the silent call, then another replica's


def test_an_engine_silent_on_every_attempt_fails_the_job_with_a_callback(store: RecordingStore) -> None:
    uploader = FakeUploader()
    policy = dataclasses.replace(POLICY, engine_stall_seconds=0.05)
    lifecycle = _lifecycle(store, FakeEngines(procedural=["hang", "hang"]), uploader, Clock(), policy)
    asyncio.run(_accept_and_run(lifecycle, _ticket()))

    record = store.get("gen-1")
    assert record is not None and record.status == "failed"
    assert record.error is not None and "sent nothing for 0.05 s" in record.error
    assert b'"status":"failed"' in uploader.attempts[0]
