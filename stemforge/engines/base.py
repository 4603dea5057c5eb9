"""The one contract every engine fulfils, whatever model (or none) is behind it.

An engine turns a ``MusicSpec`` and a list of stems into aligned float32 audio at 44.1 kHz
stereo. Engines never touch storage or HTTP; the uploader never touches models. Everything an
engine may do is declared on ``Engine``: the replica deployment and the ingress call nothing else.
"""

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from stemforge.engines.config import parse_user_config
from stemforge.music.spec import STEM_TYPES, MusicSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """An extra file stored next to the WAVs, e.g. a stem's MIDI notes or the song plan.

    A stem's attachment is stored as ``{stem_type}.{extension}`` and its URL is added to the
    stem's callback entry as ``{kind}_url``; a request-level one is stored as
    ``{kind}.{extension}`` and its URL added to the callback as ``{kind}_url``.
    """

    kind: str  # "midi", "song_plan": becomes the callback field "{kind}_url"
    extension: str  # "mid", "json"
    data: bytes
    content_type: str  # "audio/midi", "application/json"


@dataclass
class RenderedStem:
    stem_type: str
    audio: np.ndarray  # float32, shape (frames, 2), at stemforge.music.spec.SAMPLE_RATE
    engine: str
    attachments: list[Attachment] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # per-stem facts for the callback entry
    prompt: str | None = None  # the text the engine was conditioned on, if any
    negative_prompt: str | None = None  # what the engine was steered away from, if anything
    # The gain (dB) at which this stem sits in a mix of the request's stems, where the engine
    # knows it (the procedural engine arranges its stems as a band); None: loudness-matched.
    mix_gain_db: float | None = None


@dataclass
class EngineResult:
    stems: list[RenderedStem]
    # Facts applied to the whole request (resolved style, chord progression, key): they are merged
    # into the callback's ``parameters``.
    applied: dict[str, Any] = field(default_factory=dict)
    # Files about the whole request rather than one stem (e.g. the song plan as JSON).
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class StreamTarget:
    """Where a job's audio is streamed while it is made (README "Streaming"): the job's id and
    every stem of the request (the running mix is the sum of all of them, whatever engine)."""

    job_id: str
    stems: tuple[str, ...]


@dataclass(frozen=True)
class EngineJob:
    """One request's share of an engine's work: the stems routed to it."""

    spec: MusicSpec
    stems: tuple[str, ...]
    stream: StreamTarget | None = None
    # The reference's audio (mono float32 at SAMPLE_RATE), for engines that hear it
    # (``Engine.hears_reference``): loaded by the engine's replica from storage.
    reference_audio: np.ndarray | None = None


# ``progress(stem, fraction)``: how much of a stem is done, 0..1. Engines call it from their worker
# thread as work advances; it must be cheap (it only records the number).
Progress = Callable[[str, float], None]


def no_progress(stem: str, fraction: float) -> None:
    """For callers that do not watch progress."""


# ``audio(stem, chunk)``: the next stretch of a stem's final audio (float32 ``(frames, 2)``), in
# order, as soon as it is final: what a listener hears equals what is stored. Called from the
# worker thread; it may raise ``JobCancelled`` (the engine stops there).
AudioSink = Callable[[str, np.ndarray], None]


def no_audio(stem: str, chunk: np.ndarray) -> None:
    """For callers that do not stream."""


@dataclass(frozen=True)
class EngineLimits:
    """What one request may ask of an engine, beyond the service's own limits."""

    max_duration_seconds: float | None = None
    max_stems: int | None = None


@dataclass(frozen=True)
class Refusal:
    """A rule of this engine that a request breaks: the request field and what is allowed."""

    field: str
    message: str


@dataclass(frozen=True)
class EngineStatus:
    """``available``: the engine can render. ``problems``: what is degraded even so (a missing
    SoundFont, a fallback) or, when not available, why."""

    available: bool = True
    problems: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        if self.available:
            return "available"
        return "unavailable: " + ("; ".join(self.problems) or "no reason given")


ConfigT = TypeVar("ConfigT")


class Engine(ABC, Generic[ConfigT]):
    """Base of every engine. Subclasses set ``name``, ``config_type`` (a frozen dataclass of the
    deployment's ``user_config``, parsed by the shared parser) and ``limits``, and implement
    ``generate`` and ``configure``. Engines that render many requests in one pass set
    ``batches = True`` and override ``generate_batch``."""

    name: ClassVar[str]
    config_type: ClassVar[type[Any]]
    limits: ClassVar[EngineLimits] = EngineLimits()
    batches: ClassVar[bool] = False
    # The stem types it can make (a request routing another one to it is refused with a 422).
    stem_types: ClassVar[tuple[str, ...]] = STEM_TYPES
    # What it can do with a request's reference (README "Reference audio and MIDI"): the modes
    # (accompany, style, continue) and kinds (audio, midi) it uses; anything else is refused at
    # submission, never ignored. ``hears_reference``: its replica hands it the reference audio.
    reference_modes: ClassVar[frozenset[str]] = frozenset()
    reference_kinds: ClassVar[frozenset[str]] = frozenset()
    hears_reference: ClassVar[bool] = False

    @abstractmethod
    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        """Render ``stems`` for ``spec``. Blocking: replicas call it from a worker thread."""

    def generate_streaming(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress, audio: AudioSink
    ) -> EngineResult:
        """``generate``, handing each stem's audio to ``audio`` as it becomes final. By default
        every stem once the job is done; engines that finish stems one at a time override it."""
        result = self.generate(spec, stems, progress)
        for stem in result.stems:
            audio(stem.stem_type, stem.audio)
        return result

    def generate_batch(self, jobs: Sequence[EngineJob], progress: Sequence[Progress]) -> list[EngineResult]:
        """All ``jobs`` at once (one result each, in order); ``progress[i]`` is job ``i``'s."""
        return [
            self.generate(job.spec, job.stems, report) for job, report in zip(jobs, progress, strict=True)
        ]

    @abstractmethod
    def configure(self, config: ConfigT) -> None:
        """Apply a parsed ``user_config``."""

    @classmethod
    def parse_config(cls, raw: Mapping[str, Any]) -> ConfigT:
        """The shared parser over ``config_type``; engines with rules across keys add them here."""
        parsed: ConfigT = parse_user_config(cls.config_type, raw, engine=cls.name)
        return parsed

    def reconfigure(self, raw: Mapping[str, Any]) -> None:
        """Apply a deployment's ``user_config`` (called at start-up and on each change): keys it
        leaves out take their defaults."""
        self.configure(self.parse_config(raw))

    @property
    def device(self) -> str:
        """Where the engine computes (``cpu``, ``cuda:0``): /health reports it."""
        return "cpu"

    def status(self) -> EngineStatus:
        return EngineStatus()

    def details(self) -> dict[str, Any]:
        """Facts /health shows beside the status (model, steps, dtype): what an operator needs to
        tell this replica's output from another's."""
        return {}

    @classmethod
    def check(cls, spec: MusicSpec, stems: Sequence[str]) -> list[Refusal]:
        """What this engine refuses of a request, before it is accepted (the ingress answers 422).
        Pure and cheap: it runs in the ingress, which never builds the engine."""
        refusals = []
        limits = cls.limits
        if limits.max_stems is not None and len(stems) > limits.max_stems:
            refusals.append(
                Refusal(
                    "target_stems",
                    f"at most {limits.max_stems} stems per request for the {cls.name} engine; "
                    f"got {len(stems)}",
                )
            )
        if limits.max_duration_seconds is not None and spec.duration_seconds > limits.max_duration_seconds:
            refusals.append(
                Refusal(
                    "parameters.duration_seconds",
                    f"at most {limits.max_duration_seconds:g} seconds for stems rendered by the {cls.name} "
                    f"engine; got {spec.duration_seconds:g}",
                )
            )
        reference = spec.reference
        if reference is not None and (
            reference.mode not in cls.reference_modes or reference.kind not in cls.reference_kinds
        ):
            field = "parameters.reference_audio" if reference.kind == "audio" else "parameters.midi"
            can = (
                f"it uses {' and '.join(sorted(cls.reference_kinds))} references in mode(s) "
                f"{', '.join(sorted(cls.reference_modes))}"
                if cls.reference_modes
                else "it cannot use a reference"
            )
            refusals.append(
                Refusal(
                    field,
                    f"the {cls.name} engine renders {', '.join(stems)} here and cannot follow a "
                    f"{reference.kind} reference in mode {reference.mode!r} ({can}); route these stems to "
                    "an engine that can with parameters.engines (procedural: accompany and style; "
                    "musicgen: accompany, style and continue)",
                )
            )
        return refusals


def run_batch(
    engine: Engine[Any],
    jobs: Sequence[EngineJob],
    progress: Sequence[Progress] | None = None,
    audio: Sequence[AudioSink] | None = None,
) -> list[EngineResult | Exception]:
    """Run jobs merged by the replica's ``@serve.batch``: one result per job, or the exception that
    job raised, so one failing request never fails the requests merged with it.

    Engines that batch render all jobs in one pass; when a merged batch fails, each job is run
    again alone (stems stream once their job is done). Other engines run one job at a time,
    streaming as their ``generate_streaming`` does: ``audio[i]`` receives job ``i``'s stems."""
    progress = list(progress) if progress is not None else [no_progress] * len(jobs)
    sinks = list(audio) if audio is not None else [no_audio] * len(jobs)
    if engine.batches:
        try:
            results: list[EngineResult | Exception] = list(engine.generate_batch(jobs, progress))
        except Exception as exc:
            if len(jobs) == 1:
                results = [exc]
            else:
                logger.warning("a batch of %d merged jobs failed (%r); running each alone", len(jobs), exc)
                results = [
                    _run_alone(lambda job, report: engine.generate_batch([job], [report])[0], job, report)
                    for job, report in zip(jobs, progress, strict=True)
                ]
        return [_streamed_whole(result, sink) for result, sink in zip(results, sinks, strict=True)]
    return [
        _run_alone(_streaming(engine, sink), job, report)
        for job, report, sink in zip(jobs, progress, sinks, strict=True)
    ]


def _streaming(engine: Engine[Any], sink: AudioSink) -> Callable[[EngineJob, Progress], EngineResult]:
    def run(job: EngineJob, report: Progress) -> EngineResult:
        return engine.generate_streaming(job.spec, job.stems, report, sink)

    return run


def _streamed_whole(result: EngineResult | Exception, sink: AudioSink) -> EngineResult | Exception:
    """A batch's stems reach listeners whole, once the batch is done."""
    if isinstance(result, EngineResult):
        try:
            for stem in result.stems:
                sink(stem.stem_type, stem.audio)
        except Exception as exc:  # cancelled meanwhile
            return exc
    return result


def _run_alone(
    run: Callable[[EngineJob, Progress], EngineResult], job: EngineJob, report: Progress
) -> EngineResult | Exception:
    try:
        return run(job, report)
    except Exception as exc:
        return exc


@dataclass(frozen=True)
class EngineProgress:
    """What an engine replica streams while it renders a job: each stem's fraction done and,
    once there is a rate to go by, the seconds it expects to need for the rest."""

    fractions: dict[str, float]
    eta_seconds: float | None = None


@dataclass(frozen=True)
class EngineDone:
    """The end of an engine's work on a job. From the replica it carries nothing: it announces
    that the stream's next, last item is the ``EngineResult`` itself, which readers pass on by
    reference (an ``ObjectRef`` they own) without fetching it, so the audio goes to the uploader
    without passing through them. The lifecycle receives it with ``result`` set to that reference.

    (Why not a reference put by the replica inside this item: Ray loses the count of references
    nested in a streamed item when they are passed on, ray-project/ray#58080; it failed here as
    ReferenceCountingAssertionError under load.)"""

    result: Any = None


EngineEvent = EngineProgress | EngineDone
