"""Engines for tests that need a job to take time (overload, a replica killed mid-job, progress)
or a batch to fail."""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stemforge.engines.base import (
    Engine,
    EngineJob,
    EngineLimits,
    EngineResult,
    Progress,
    RenderedStem,
    no_progress,
)
from stemforge.music.spec import MusicSpec
from stemforge.settings import Settings

SECONDS_PER_AUDIO_SECOND = 1.0
PROGRESS_STEPS = 20


@dataclass(frozen=True)
class NoConfig:
    pass


class SlowEngine(Engine[NoConfig]):
    """Takes as long as the audio it makes (one second per second requested, reporting progress
    as it goes), then returns quiet noise. Refuses more than 3 stems or 60 s. Routed to as
    ``tests.support.engines:SlowEngine``."""

    name = "slow"
    config_type = NoConfig
    limits = EngineLimits(max_duration_seconds=60, max_stems=3)

    def __init__(self, settings: Settings) -> None:
        self.calls = 0

    def configure(self, config: NoConfig) -> None:
        pass

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        self.calls += 1
        for step in range(1, PROGRESS_STEPS + 1):
            time.sleep(spec.duration_seconds * SECONDS_PER_AUDIO_SECOND / PROGRESS_STEPS)
            for stem in stems:
                progress(stem, step / PROGRESS_STEPS)
        rng = np.random.default_rng(spec.seed)
        audio = (rng.standard_normal((spec.num_frames, 2)) * 0.01).astype(np.float32)
        return EngineResult(
            stems=[RenderedStem(s, audio, self.name, info={"calls": self.calls}) for s in stems]
        )


class PickyEngine(Engine[NoConfig]):
    """Renders merged requests in one batch and fails the whole batch when any request's prompt
    says "poison". Each stem reports the sizes of the batches the replica has seen so far
    (``batches``). Routed to as ``tests.support.engines:PickyEngine``."""

    name = "picky"
    config_type = NoConfig
    batches = True

    def __init__(self, settings: Settings) -> None:
        self.seen: list[int] = []

    def configure(self, config: NoConfig) -> None:
        pass

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        return self.generate_batch([EngineJob(spec, tuple(stems))], [progress])[0]

    def generate_batch(self, jobs: Sequence[EngineJob], progress: Sequence[Progress]) -> list[EngineResult]:
        self.seen.append(len(jobs))
        if any("poison" in (job.spec.prompt or "") for job in jobs):
            raise ValueError("this engine cannot render poison")
        info = {"batches": list(self.seen)}
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


class DrumsOnlyEngine(SlowEngine):
    """An engine that makes drums alone (``tests.support.engines:DrumsOnlyEngine``): a request
    routing another stem to it is refused."""

    name = "drums_only"
    stem_types = ("drums",)
