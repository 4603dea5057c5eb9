"""The Ray Serve deployment that hosts one engine. Bound once per engine under the engine's own
deployment name (ProceduralEngine, MusicGenEngine, ...), so each gets its own replicas, resources,
autoscaling and ``user_config`` from serve_config.yaml."""

import asyncio
from typing import Any

from ray import serve

from stemforge.engines.base import EngineJob, EngineResult, run_batch
from stemforge.engines.registry import create_engine
from stemforge.errors import ConfigurationError
from stemforge.settings import Settings

# Keys of user_config read by the replica itself; the rest goes to the engine.
_BATCH_KEYS = ("max_batch_size", "batch_wait_timeout_s")


@serve.deployment(ray_actor_options={"num_cpus": 1}, max_ongoing_requests=16)
class EngineReplica:
    def __init__(self, engine_name: str, settings: Settings) -> None:
        self._engine = create_engine(engine_name, settings)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        config = dict(user_config or {})
        batching = {key: config.pop(key) for key in _BATCH_KEYS if key in config}
        max_batch_size = batching.get("max_batch_size", 1)
        wait = batching.get("batch_wait_timeout_s", 0.0)
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigurationError(
                f"user_config.max_batch_size must be an integer >= 1; got {max_batch_size!r}"
            )
        if not isinstance(wait, int | float) or wait < 0:
            raise ConfigurationError(f"user_config.batch_wait_timeout_s must be >= 0; got {wait!r}")
        batcher: Any = self._generate_batch  # @serve.batch adds these setters at run time
        batcher.set_max_batch_size(max_batch_size)
        batcher.set_batch_wait_timeout_s(float(wait))
        self._engine.reconfigure(config)

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def _generate_batch(self, jobs: list[EngineJob]) -> list[EngineResult | Exception]:
        # Generation blocks for seconds to minutes: keep it off the replica's event loop so
        # health checks and queued calls are still answered.
        return await asyncio.to_thread(run_batch, self._engine, jobs)

    async def generate(self, job: EngineJob) -> EngineResult:
        # A job's own failure comes back as its result (see run_batch): raise it for this caller
        # only.
        result: EngineResult | Exception = await self._generate_batch(job)
        if isinstance(result, Exception):
            raise result
        return result

    async def describe(self) -> dict[str, str]:
        return {"status": self._engine.status(), "device": str(getattr(self._engine, "device", "cpu"))}
