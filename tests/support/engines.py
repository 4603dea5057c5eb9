"""Engines for tests that need a job to take time (overload, a replica killed mid-job)."""

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stemforge.engines.base import EngineJob, EngineResult, RenderedStem
from stemforge.music.spec import MusicSpec
from stemforge.settings import Settings

SECONDS_PER_AUDIO_SECOND = 1.0


class SlowEngine:
    """Takes as long as the audio it makes (one second per second requested), then returns quiet
    noise. Routed to as ``tests.support.engines:SlowEngine``."""

    name = "slow"

    def __init__(self, settings: Settings) -> None:
        self.calls = 0

    def reconfigure(self, config: Mapping[str, Any]) -> None:
        pass

    def status(self) -> str:
        return "available"

    def generate(self, spec: MusicSpec, stems: Sequence[str]) -> EngineResult:
        self.calls += 1
        time.sleep(spec.duration_seconds * SECONDS_PER_AUDIO_SECOND)
        rng = np.random.default_rng(spec.seed)
        audio = (rng.standard_normal((spec.num_frames, 2)) * 0.01).astype(np.float32)
        return EngineResult(
            stems=[RenderedStem(s, audio, self.name, info={"calls": self.calls}) for s in stems]
        )


class PickyEngine:
    """Renders merged requests in one batch (``generate_batch``) and fails the whole batch when
    any request's prompt says "poison". Each stem reports the sizes of the batches the replica
    has seen so far (``batches``). Routed to as ``tests.support.engines:PickyEngine``."""

    name = "picky"

    def __init__(self, settings: Settings) -> None:
        self.batches: list[int] = []

    def reconfigure(self, config: Mapping[str, Any]) -> None:
        pass

    def status(self) -> str:
        return "available"

    def generate(self, spec: MusicSpec, stems: Sequence[str]) -> EngineResult:
        return self.generate_batch([EngineJob(spec, tuple(stems))])[0]

    def generate_batch(self, jobs: Sequence[EngineJob]) -> list[EngineResult]:
        self.batches.append(len(jobs))
        if any("poison" in (job.spec.prompt or "") for job in jobs):
            raise ValueError("this engine cannot render poison")
        info = {"batches": list(self.batches)}
        return [
            EngineResult(
                stems=[
                    RenderedStem(
                        s, np.zeros((job.spec.num_frames, 2), dtype=np.float32), self.name, info=info
                    )
                    for s in job.stems
                ]
            )
            for job in jobs
        ]
