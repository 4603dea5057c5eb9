"""The engine contract: run_batch (what a replica does with the jobs @serve.batch merged,
including their failures), the default checks from an engine's limits, and its status."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from stemforge.engines.base import (
    Engine,
    EngineJob,
    EngineLimits,
    EngineResult,
    EngineStatus,
    Progress,
    RenderedStem,
    no_progress,
    run_batch,
)
from stemforge.errors import ConfigurationError
from stemforge.music.spec import MusicSpec


def _job(*stems: str, seconds: float = 1.0) -> EngineJob:
    return EngineJob(spec=MusicSpec(bpm=120.0, duration_seconds=seconds, seed=1), stems=stems)


class _Poisoned(Exception):
    pass


@dataclass(frozen=True)
class _Config:
    gain: float = 1.0


class _Engine(Engine[_Config]):
    """Fails any call that includes a "poison" stem; records the calls it saw."""

    name = "fake"
    config_type = _Config
    limits = EngineLimits(max_duration_seconds=10, max_stems=2)

    def __init__(self) -> None:
        self.calls: list[list[tuple[str, ...]]] = []
        self.config = _Config()

    def configure(self, config: _Config) -> None:
        self.config = config

    def _check(self, jobs: Sequence[EngineJob]) -> None:
        self.calls.append([job.stems for job in jobs])
        if any("poison" in job.stems for job in jobs):
            raise _Poisoned("a stem the engine cannot render")

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        self._check([EngineJob(spec, tuple(stems))])
        for stem in stems:
            progress(stem, 1.0)
        return EngineResult(stems=[], applied={"stems": list(stems)})


class _BatchingEngine(_Engine):
    batches = True

    def generate_batch(self, jobs: Sequence[EngineJob], progress: Sequence[Progress]) -> list[EngineResult]:
        self._check(jobs)
        return [EngineResult(stems=[], applied={"stems": list(job.stems)}) for job in jobs]


def _stems(result: EngineResult | Exception) -> list[str]:
    assert isinstance(result, EngineResult), result
    return list(result.applied["stems"])


def _run(engine: _Engine, jobs: list[EngineJob]) -> list[EngineResult | Exception]:
    return run_batch(engine, jobs, [no_progress] * len(jobs))


@pytest.mark.parametrize("engine_type", [_BatchingEngine, _Engine])
def test_one_failing_job_fails_alone_and_the_jobs_merged_with_it_succeed(engine_type: type[_Engine]) -> None:
    engine = engine_type()
    results = _run(engine, [_job("drums"), _job("poison"), _job("bass", "piano")])
    assert _stems(results[0]) == ["drums"]
    assert isinstance(results[1], _Poisoned)
    assert _stems(results[2]) == ["bass", "piano"]


def test_a_failed_merged_batch_is_run_again_job_by_job() -> None:
    engine = _BatchingEngine()
    _run(engine, [_job("drums"), _job("poison")])
    assert engine.calls == [[("drums",), ("poison",)], [("drums",)], [("poison",)]]


def test_a_healthy_batch_runs_once_and_a_lone_failure_is_not_retried() -> None:
    engine = _BatchingEngine()
    assert [_stems(r) for r in _run(engine, [_job("drums"), _job("bass")])] == [["drums"], ["bass"]]
    (result,) = _run(engine, [_job("poison")])
    assert isinstance(result, _Poisoned)
    assert engine.calls == [[("drums",), ("bass",)], [("poison",)]]


def test_each_job_reports_progress_to_its_own_reporter() -> None:
    seen: dict[int, list[tuple[str, float]]] = {0: [], 1: []}
    jobs = [_job("drums"), _job("bass", "piano")]
    run_batch(_Engine(), jobs, [lambda s, f, i=i: seen[i].append((s, f)) for i in (0, 1)])
    assert seen == {0: [("drums", 1.0)], 1: [("bass", 1.0), ("piano", 1.0)]}


@pytest.mark.parametrize(
    ("stems", "seconds", "fields"),
    [
        (("drums",), 10.0, []),
        (("drums", "bass"), 1.0, []),
        (("drums", "bass", "piano"), 1.0, ["target_stems"]),
        (("drums",), 10.5, ["parameters.duration_seconds"]),
        (("drums", "bass", "piano"), 11.0, ["target_stems", "parameters.duration_seconds"]),
    ],
)
def test_the_default_check_refuses_what_the_limits_do_not_allow(
    stems: tuple[str, ...], seconds: float, fields: list[str]
) -> None:
    refusals = _Engine.check(_job(*stems, seconds=seconds).spec, stems)
    assert [r.field for r in refusals] == fields
    for refusal in refusals:
        assert "fake engine" in refusal.message
        assert (
            "at most 2 stems" if refusal.field == "target_stems" else "at most 10 seconds"
        ) in refusal.message


def test_reconfigure_goes_through_the_shared_typed_parser() -> None:
    engine = _Engine()
    engine.reconfigure({"gain": 2})
    assert engine.config == _Config(gain=2.0)
    with pytest.raises(ConfigurationError, match="fake user_config 'gain'"):
        engine.reconfigure({"gain": "loud"})
    with pytest.raises(ConfigurationError, match="unknown fake user_config keys"):
        engine.reconfigure({"gian": 1.0})


def test_status_summary_names_the_problems_only_when_unavailable() -> None:
    assert EngineStatus().summary == "available"
    assert EngineStatus(problems=("fallback",)).summary == "available"
    assert EngineStatus(available=False, problems=("no weights",)).summary == "unavailable: no weights"


class _Rendering(_Engine):
    """Renders each stem as a constant: stem i is i + 1, for 0.1 s."""

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        self._check([EngineJob(spec, tuple(stems))])
        rendered = []
        for index, stem in enumerate(stems):
            progress(stem, 0.0)
            rendered.append(RenderedStem(stem, np.full((4410, 2), index + 1, dtype=np.float32), self.name))
            progress(stem, 1.0)
        return EngineResult(stems=rendered)


class _RenderingBatch(_Rendering):
    batches = True

    def generate_batch(self, jobs: Sequence[EngineJob], progress: Sequence[Progress]) -> list[EngineResult]:
        return [
            self.generate(job.spec, job.stems, report) for job, report in zip(jobs, progress, strict=True)
        ]


@pytest.mark.parametrize("engine_type", [_Rendering, _RenderingBatch])
def test_every_stem_s_final_audio_reaches_its_job_s_sink(engine_type: type[_Rendering]) -> None:
    heard: list[list[tuple[str, float]]] = [[], []]
    sinks = [lambda stem, audio, i=i: heard[i].append((stem, float(audio[0, 0]))) for i in range(2)]

    results = run_batch(engine_type(), [_job("drums", "bass"), _job("piano")], [no_progress] * 2, sinks)

    assert heard == [[("drums", 1.0), ("bass", 2.0)], [("piano", 1.0)]]
    assert all(isinstance(result, EngineResult) for result in results)


def test_a_sink_that_raises_fails_that_job_only() -> None:
    from stemforge.errors import JobCancelled

    def cancelled(stem: str, audio: np.ndarray) -> None:
        raise JobCancelled("cancelled by the client")

    kept: list[str] = []
    results = run_batch(
        _Rendering(),
        [_job("drums"), _job("bass")],
        [no_progress] * 2,
        [cancelled, lambda s, a: kept.append(s)],
    )

    assert isinstance(results[0], JobCancelled)
    assert isinstance(results[1], EngineResult) and kept == ["bass"]
