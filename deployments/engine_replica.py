"""The Ray Serve deployment that hosts one engine. Bound once per engine under the engine's own
deployment name (ProceduralEngine, MusicGenEngine, ...), so each gets its own replicas, resources,
autoscaling and ``user_config`` from serve_config.yaml.

``generate`` streams: progress while the engine works, then ``EngineDone``, then the result
itself, which the caller leaves in Ray's object store and hands to the uploader by reference.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from stemforge.engines.base import EngineDone, EngineEvent, EngineJob, EngineResult, run_batch
from stemforge.engines.progress import ProgressTracker
from stemforge.engines.registry import create_engine
from stemforge.errors import ConfigurationError
from stemforge.observability.logs import route_library_logs_to_serve
from stemforge.settings import Settings

# Keys of user_config read by the replica itself; the rest goes to the engine.
BATCH_KEYS = ("max_batch_size", "batch_wait_timeout_s")
# How often a running job's progress is looked at (and streamed when it moved).
PROGRESS_INTERVAL_SECONDS = 0.5


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16)
class EngineReplica:
    def __init__(self, engine_name: str, settings: Settings) -> None:
        route_library_logs_to_serve()
        self._engine = create_engine(engine_name, settings)

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
        self, work: list[tuple[EngineJob, ProgressTracker]]
    ) -> list[EngineResult | Exception]:
        # Generation blocks for seconds to minutes: keep it off the replica's event loop so
        # progress, health checks and queued calls are still answered.
        jobs, trackers = [job for job, _ in work], [tracker for _, tracker in work]
        return await asyncio.to_thread(run_batch, self._engine, jobs, trackers)

    async def generate(self, job: EngineJob) -> AsyncIterator[EngineEvent | EngineResult]:
        tracker = ProgressTracker(job.stems)
        work: asyncio.Future[EngineResult | Exception] = asyncio.ensure_future(
            self._generate_batch((job, tracker))
        )
        streamed = -1
        while not work.done():
            await asyncio.wait({work}, timeout=PROGRESS_INTERVAL_SECONDS)
            if tracker.version != streamed and not work.done():
                streamed = tracker.version
                yield tracker.snapshot()
        # A job's own failure comes back as its result (see run_batch): raise it for this caller.
        result: EngineResult | Exception = work.result()
        if isinstance(result, Exception):
            raise result
        yield EngineDone()
        yield result

    async def describe(self) -> dict[str, Any]:
        status = self._engine.status()
        return {
            **self._engine.details(),
            "status": status.summary,
            "device": self._engine.device,
            "problems": list(status.problems),
        }
