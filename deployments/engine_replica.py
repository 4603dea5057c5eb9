"""The Ray Serve deployment that hosts one engine. Bound once per engine under the engine's own
deployment name (ProceduralEngine, MusicGenEngine, ...), so each gets its own replicas, resources,
autoscaling and ``user_config`` from serve_config.yaml.

``generate`` streams: progress while the engine works, then ``EngineDone``, then the result
itself, which the caller leaves in Ray's object store and hands to the uploader by reference.
"""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from stemforge.engines.base import (
    AudioSink,
    EngineDone,
    EngineEvent,
    EngineJob,
    EngineResult,
    no_audio,
    run_batch,
)
from stemforge.engines.progress import ProgressTracker
from stemforge.engines.registry import create_engine
from stemforge.errors import ConfigurationError
from stemforge.observability.logs import route_library_logs_to_serve
from stemforge.reference.intake import decode_reference
from stemforge.settings import Settings
from stemforge.storage.factory import storage_from_settings
from stemforge.streaming.publisher import StreamPublisher

# Keys of user_config read by the replica itself; the rest goes to the engine.
BATCH_KEYS = ("max_batch_size", "batch_wait_timeout_s")
# How often a running job's progress is looked at (and streamed when it moved).
PROGRESS_INTERVAL_SECONDS = 0.5


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16)
class EngineReplica:
    def __init__(self, engine_name: str, settings: Settings, relay: DeploymentHandle | None = None) -> None:
        route_library_logs_to_serve()
        self._relay = relay  # the StreamRelay: listeners hear stems as they are made
        self._engine = create_engine(engine_name, settings)
        # Only engines that hear a reference read storage (its audio, stored at acceptance).
        self._storage = storage_from_settings(settings) if self._engine.hears_reference else None

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        config = dict(user_config or {})
        batching = {key: config.pop(key) for key in BATCH_KEYS if key in config}
        max_batch_size = batching.get("max_batch_size", 1)
        wait = batching.get("batch_wait_timeout_s", 0.0)
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigurationError(
                f"user_config.max_batch_size must be an integer >= 1; got {max_batch_size!r}"
            )
        if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
            raise ConfigurationError(f"user_config.batch_wait_timeout_s must be >= 0; got {wait!r}")
        batcher: Any = self._generate_batch  # @serve.batch adds these setters at run time
        batcher.set_max_batch_size(max_batch_size)
        batcher.set_batch_wait_timeout_s(float(wait))
        self._engine.reconfigure(config)

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def _generate_batch(
        self, work: list[tuple[EngineJob, ProgressTracker, AudioSink]]
    ) -> list[EngineResult | Exception]:
        # Generation blocks for seconds to minutes: keep it off the replica's event loop so
        # progress, health checks and queued calls are still answered.
        jobs = [job for job, _, _ in work]
        trackers = [tracker for _, tracker, _ in work]
        sinks = [sink for _, _, sink in work]
        return await asyncio.to_thread(run_batch, self._engine, jobs, trackers, sinks)

    async def generate(self, job: EngineJob) -> AsyncIterator[EngineEvent | EngineResult]:
        job = await self._with_reference(job)
        tracker = ProgressTracker(job.stems)
        stream = StreamPublisher(self._relay, job.stream, tracker) if self._relay and job.stream else None
        if stream is not None:
            await stream.open()
        work: asyncio.Future[EngineResult | Exception] = asyncio.ensure_future(
            self._generate_batch((job, tracker, stream.sink if stream else no_audio))
        )
        try:
            streamed = -1
            while not work.done():
                await asyncio.wait({work}, timeout=PROGRESS_INTERVAL_SECONDS)
                if stream is not None:
                    await stream.flush()
                if tracker.version != streamed and not work.done():
                    streamed = tracker.version
                    yield tracker.snapshot()
            # A job's own failure comes back as its result (see run_batch): raise it for this caller.
            result: EngineResult | Exception = work.result()
            if isinstance(result, Exception):
                raise result
            if stream is not None:
                await stream.finish(job.stems)
            yield EngineDone()
            yield result
        finally:
            if not work.done():
                tracker.cancel()  # the caller gave up on it (cancelled, or another engine failed)

    async def _with_reference(self, job: EngineJob) -> EngineJob:
        reference = job.spec.reference
        if self._storage is None or reference is None or not reference.audio_path:
            return job
        data = await asyncio.to_thread(self._storage.get, reference.audio_path)
        return dataclasses.replace(job, reference_audio=decode_reference(data))

    async def describe(self) -> dict[str, Any]:
        status = self._engine.status()
        return {
            **self._engine.details(),
            "status": status.summary,
            "device": self._engine.device,
            "problems": list(status.problems),
        }
