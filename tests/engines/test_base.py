"""run_batch: what a replica does with the jobs @serve.batch merged, including their failures."""

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from stemforge.engines.base import EngineJob, EngineResult, run_batch
from stemforge.music.spec import MusicSpec


def _job(*stems: str) -> EngineJob:
    return EngineJob(spec=MusicSpec(bpm=120.0, duration_seconds=1.0, seed=1), stems=stems)


class _Poisoned(Exception):
    pass


class _Engine:
    """Fails any call that includes a "poison" stem; records the calls it saw."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, ...]]] = []

    def _check(self, jobs: Sequence[EngineJob]) -> None:
        self.calls.append([job.stems for job in jobs])
        if any("poison" in job.stems for job in jobs):
            raise _Poisoned("a stem the engine cannot render")

    def generate(self, spec: MusicSpec, stems: Sequence[str]) -> EngineResult:
        self._check([EngineJob(spec, tuple(stems))])
        return EngineResult(stems=[], applied={"stems": list(stems)})

    def reconfigure(self, config: Mapping[str, Any]) -> None: ...

    def status(self) -> str:
        return "available"


class _BatchingEngine(_Engine):
    def generate_batch(self, jobs: Sequence[EngineJob]) -> list[EngineResult]:
        self._check(jobs)
        return [EngineResult(stems=[], applied={"stems": list(job.stems)}) for job in jobs]


def _stems(result: EngineResult | Exception) -> list[str]:
    assert isinstance(result, EngineResult), result
    return list(result.applied["stems"])


@pytest.mark.parametrize("engine_type", [_BatchingEngine, _Engine])
def test_one_failing_job_fails_alone_and_the_jobs_merged_with_it_succeed(engine_type: type[_Engine]) -> None:
    engine = engine_type()
    results = run_batch(engine, [_job("drums"), _job("poison"), _job("bass", "piano")])
    assert _stems(results[0]) == ["drums"]
    assert isinstance(results[1], _Poisoned)
    assert _stems(results[2]) == ["bass", "piano"]


def test_a_failed_merged_batch_is_run_again_job_by_job() -> None:
    engine = _BatchingEngine()
    run_batch(engine, [_job("drums"), _job("poison")])
    assert engine.calls == [[("drums",), ("poison",)], [("drums",)], [("poison",)]]


def test_a_healthy_batch_runs_once_and_a_lone_failure_is_not_retried() -> None:
    engine = _BatchingEngine()
    assert [_stems(r) for r in run_batch(engine, [_job("drums"), _job("bass")])] == [["drums"], ["bass"]]
    (result,) = run_batch(engine, [_job("poison")])
    assert isinstance(result, _Poisoned)
    assert engine.calls == [[("drums",), ("bass",)], [("poison",)]]
