"""The one contract every engine fulfils, whatever model (or none) is behind it.

An engine turns a ``MusicSpec`` and a list of stems into aligned float32 audio at 44.1 kHz
stereo. Engines never touch storage or HTTP; the uploader never touches models.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from stemforge.music.spec import MusicSpec

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
    info: dict[str, Any] = field(default_factory=dict)  # per-stem facts: built prompt, measured bpm


@dataclass
class EngineResult:
    stems: list[RenderedStem]
    # Facts applied to the whole request (resolved style, chord progression, key): they are merged
    # into the callback's ``parameters``.
    applied: dict[str, Any] = field(default_factory=dict)
    # Files about the whole request rather than one stem (e.g. the song plan as JSON).
    attachments: list[Attachment] = field(default_factory=list)


@runtime_checkable
class Engine(Protocol):
    name: str

    def generate(self, spec: MusicSpec, stems: Sequence[str]) -> EngineResult:
        """Render ``stems`` for ``spec``. Blocking: replicas call it from a worker thread."""
        ...

    def reconfigure(self, config: Mapping[str, Any]) -> None:
        """Apply a deployment's ``user_config``; called at start-up and on each change."""
        ...

    def status(self) -> str:
        """``"available"``, or why it is not."""
        ...


@dataclass(frozen=True)
class EngineJob:
    """One request's share of an engine's work: the stems routed to it."""

    spec: MusicSpec
    stems: tuple[str, ...]


def run_batch(engine: Engine, jobs: Sequence[EngineJob]) -> list[EngineResult | Exception]:
    """Run jobs merged by the replica's ``@serve.batch``: one result per job, or the exception that
    job raised, so one failing request never fails the requests merged with it.

    Engines that gain from batching (one forward pass for many stems) define ``generate_batch``;
    when a merged batch fails, each job is run again alone. Other engines run one job at a time."""
    batched = getattr(engine, "generate_batch", None)
    if batched is not None:
        try:
            results: list[EngineResult | Exception] = list(batched(jobs))
            return results
        except Exception as exc:
            if len(jobs) == 1:
                return [exc]
            logger.warning("a batch of %d merged jobs failed (%r); running each alone", len(jobs), exc)
            return [_run_alone(lambda job: batched([job])[0], job) for job in jobs]
    return [_run_alone(lambda job: engine.generate(job.spec, job.stems), job) for job in jobs]


def _run_alone(run: Callable[[EngineJob], EngineResult], job: EngineJob) -> EngineResult | Exception:
    try:
        return run(job)
    except Exception as exc:
        return exc
