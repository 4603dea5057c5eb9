"""The base of the diffusion engines: a request's stems as rows of pipeline calls.

Every window of every stem of every job handed to ``generate_batch`` (the replica merges
concurrent requests with ``@serve.batch``) is a row: a prompt, a negative prompt and a seed per
row, so a stem's audio never depends on its batch mates. Rows that share a length and a guidance
scale are one pipeline call. Each row's audio is lined up on the request's grid, the windows of
a stem crossfaded on downbeats, and the stem brought to its loudness. Subclasses load their
pipeline and turn rows into audio (``_render``); torch and diffusers are imported when an engine
is built, never at module import.
"""

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from stemforge.engines.alignment import align_to_grid, alignment_margin, fit_length
from stemforge.engines.base import (
    Engine,
    EngineJob,
    EngineLimits,
    EngineResult,
    EngineStatus,
    Progress,
    RenderedStem,
    no_progress,
)
from stemforge.engines.checkpoints import CheckpointKind
from stemforge.engines.diffusion.config import DiffusionConfig, guidance_for
from stemforge.engines.diffusion.windows import AudioWindow, bar_seconds, plan_windows, stitch
from stemforge.engines.prompting import RequestText, build_prompt, negative_prompt, resolve_request
from stemforge.engines.seeds import stem_seed
from stemforge.errors import ConfigurationError, GenerationFailed
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.settings import Settings

if TYPE_CHECKING:
    from stemforge.engines.diffusion.loading import LoadedPipeline

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=DiffusionConfig)
# Denoising is most of a stem's time; decoding, alignment and loudness take the rest.
DENOISED_SHARE = 0.9


@dataclass
class Row:
    """One window of one stem of one job: a row of a pipeline call."""

    job: int
    stem: str
    window: int
    prompt: str
    negative: str
    seed: int
    guidance: float
    seconds: float  # audio to generate for this window (its length plus the alignment margin)


class DiffusionEngine(Engine[ConfigT]):
    """Subclasses set the checkpoint (``checkpoint``, ``settings_field``, ``pipeline_class``), the
    packages and extra they need, and implement ``max_seconds`` and ``_render``."""

    label: ClassVar[str]  # for messages: "Stable Audio"
    checkpoint: ClassVar[CheckpointKind]
    settings_field: ClassVar[str]  # the Settings field naming the checkpoint
    pipeline_class: ClassVar[str]  # the diffusers class in its model_index.json
    extra: ClassVar[str]  # the pip extra with its packages
    required_modules: ClassVar[tuple[str, ...]] = ("torch", "transformers", "diffusers", "librosa")
    keep_float32: ClassVar[tuple[str, ...]] = ()  # components never cast to half precision
    limits = EngineLimits(max_duration_seconds=300, max_stems=len(STEM_TYPES))
    batches = True

    def __init__(self, settings: Settings, loaded: "LoadedPipeline | None" = None) -> None:
        """``loaded``: a pipeline already placed (the benchmarks build one in memory); else the
        checkpoint the settings name is loaded."""
        self._require_stack()
        from stemforge.engines.diffusion.loading import DTYPES, load_pipeline, prepare
        from stemforge.engines.torch_runtime import apply_threads, pick_device

        self._config: ConfigT = self.config_type()
        self._lock = threading.Lock()
        started = time.monotonic()
        if loaded is None:
            device = pick_device(settings.use_gpu, self.label)
            dtype = DTYPES[self._config.dtype_name(device.type == "cuda")]
            name = str(getattr(settings, self.settings_field))
            pipeline, path = load_pipeline(name, self.checkpoint, self.pipeline_class, device, dtype)
            loaded = prepare(pipeline, name, path, device, dtype, self.keep_float32)
        self._loaded = loaded
        self._settings = settings
        self._after_load()
        apply_threads(self._config.num_threads)
        logger.info(
            "%s: loaded %s from %s on %s (%s) in %.1f s",
            self.name,
            loaded.name,
            loaded.path,
            loaded.device,
            str(loaded.dtype).removeprefix("torch."),
            time.monotonic() - started,
        )

    @classmethod
    def _require_stack(cls) -> None:
        """Fail with the extra to install rather than a bare ModuleNotFoundError in a replica."""
        for module in cls.required_modules:
            try:
                __import__(module)
            except ModuleNotFoundError as exc:
                raise ConfigurationError(
                    f"the {cls.name} engine needs the package {module!r}, which is not installed "
                    f'(pip install "stemforge[{cls.extra}]")'
                ) from exc

    # --- Engine protocol ----------------------------------------------------------------------

    def configure(self, config: ConfigT) -> None:
        """Steps, guidance and windowing apply from the next batch; a changed dtype recasts the
        weights in place."""
        from stemforge.engines.diffusion.loading import DTYPES, prepare
        from stemforge.engines.torch_runtime import apply_threads

        with self._lock:
            dtype = DTYPES[config.dtype_name(self.on_gpu)]
            if dtype != self._loaded.dtype:
                loaded = self._loaded
                self._loaded = prepare(
                    loaded.pipeline, loaded.name, loaded.path, loaded.device, dtype, self.keep_float32
                )
            apply_threads(config.num_threads)
            self._config = config

    @property
    def on_gpu(self) -> bool:
        return self._loaded.device.type == "cuda"

    @property
    def device(self) -> str:
        return str(self._loaded.device)

    @property
    def config(self) -> ConfigT:
        return self._config

    @property
    def loaded(self) -> "LoadedPipeline":
        return self._loaded

    def status(self) -> EngineStatus:
        if self.on_gpu:
            return EngineStatus()
        # A CPU replica is honest about what it renders (the full models take seconds to tens of
        # seconds per step here): nobody should take its output for a GPU replica's.
        return EngineStatus(
            problems=(
                f"CPU preview: {self._config.cpu_num_inference_steps} denoising steps per stem "
                f"(GPU replicas: {self._config.num_inference_steps}); not GPU quality",
            )
        )

    def details(self) -> dict[str, Any]:
        return {
            "model": self._loaded.name,
            "steps": self._config.steps(self.on_gpu),
            "dtype": str(self._loaded.dtype).removeprefix("torch."),
            "preview": not self.on_gpu,
            "window_seconds": round(self._window_seconds(self._config), 2),
            "sample_rate": SAMPLE_RATE,
            "channels": 2,
        }

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        return self.generate_batch([EngineJob(spec=spec, stems=tuple(stems))], [progress])[0]

    def generate_batch(
        self, jobs: Sequence[EngineJob], progress: Sequence[Progress] | None = None
    ) -> list[EngineResult]:
        """Every window of every stem of every job, in as few pipeline calls as the window
        lengths, guidance scales and ``max_rows_per_call`` allow; one result per job, in order."""
        if not jobs:
            return []
        reports: list[Progress] = list(progress) if progress is not None else [no_progress] * len(jobs)
        with self._lock:
            return self._generate_locked(list(jobs), reports, self._config)

    # --- what subclasses provide --------------------------------------------------------------

    @property
    @abstractmethod
    def max_seconds(self) -> float:
        """The longest audio one pipeline call makes."""

    @abstractmethod
    def _render(self, rows: list[Row], steps: int, tracker: "StepTracker") -> list[np.ndarray]:
        """One pipeline call for ``rows`` (same ``_call_key``): ``(frames, 2)`` float32 audio at
        44.1 kHz per row, at least ``rows[i].seconds`` long. Calls ``tracker.on_step`` per step."""

    def _after_load(self) -> None:
        """Fix-ups a freshly loaded pipeline needs (library compatibility)."""

    def _call_key(self, row: Row) -> Hashable:
        """Rows with equal keys can be one call: by default the same length and guidance."""
        return round(row.seconds, 3), row.guidance

    def _applied(self, config: ConfigT, spec: MusicSpec) -> dict[str, Any]:
        """Facts about the whole request for the callback's ``parameters[self.name]``."""
        return {
            "steps": config.steps(self.on_gpu),
            "guidance_scale": round(guidance_for(config, spec.temperature), 3),
            "preview": not self.on_gpu,
            "time_stretch_to_bpm": _stretches(spec, config),
        }

    # --- the work -----------------------------------------------------------------------------

    def _window_seconds(self, config: ConfigT) -> float:
        longest = self.max_seconds
        return min(longest, config.window_seconds) if config.window_seconds else longest

    def _plan(self, spec: MusicSpec, config: ConfigT) -> tuple[list[AudioWindow], float, float]:
        """The stem's windows and what each generates beyond its length for alignment:
        ``(windows, factor, extra_seconds)``."""
        factor, extra = alignment_margin(spec.bpm) if _stretches(spec, config) else (1.0, 0.0)
        usable = (self._window_seconds(config) - extra) / factor
        try:
            windows = plan_windows(spec.duration_seconds, bar_seconds(spec.bpm), usable, config.overlap_bars)
        except ValueError as exc:
            raise GenerationFailed(f"{self.name}: {exc}") from exc
        return windows, factor, extra

    def _generate_locked(
        self, jobs: list[EngineJob], progress: list[Progress], config: ConfigT
    ) -> list[EngineResult]:
        requests = [resolve_request(job.spec) for job in jobs]
        plans = [self._plan(job.spec, config) for job in jobs]
        window_seconds = self._window_seconds(config)
        rows = [
            Row(
                job=index,
                stem=stem,
                window=k,
                prompt=build_prompt(job.spec, stem, requests[index]),
                negative=negative_prompt(stem),
                # Window 0 has the stem's own seed: a stem that fits one window is that window.
                seed=stem_seed(job.spec.seed, stem if k == 0 else f"{stem}:{k}"),
                guidance=guidance_for(config, job.spec.temperature),
                seconds=min(window_seconds, window.length * plans[index][1] + plans[index][2]),
            )
            for index, job in enumerate(jobs)
            for stem in job.stems
            for k, window in enumerate(plans[index][0])
        ]
        steps = config.steps(self.on_gpu)
        results = [
            EngineResult(stems=[], applied=self._request_facts(requests[i], config, jobs[i].spec))
            for i in range(len(jobs))
        ]
        if not rows:
            return results

        started = time.monotonic()
        tracker = StepTracker(rows, steps, progress)
        audio: dict[tuple[int, str, int], np.ndarray] = {}
        calls = self._calls(rows, config.max_rows_per_call)
        for call in calls:
            tracker.start(call)
            for row, waveform in zip(call, self._render(call, steps, tracker), strict=True):
                if not np.isfinite(waveform).all():
                    raise GenerationFailed(f"{self.name}: the generated audio is not finite (NaN or inf)")
                audio[(row.job, row.stem, row.window)] = waveform
        generated = time.monotonic() - started

        for index, job in enumerate(jobs):
            windows = plans[index][0]
            for stem in job.stems:
                pieces = [audio[(index, stem, k)] for k in range(len(windows))]
                rendered = self._finish_stem(job.spec, stem, pieces, windows, config)
                rendered.info.update(
                    {
                        "seed": stem_seed(job.spec.seed, stem),
                        "steps": steps,
                        "windows": len(windows),
                        "generation_seconds": round(generated, 2),
                        "batch_size": len(rows),  # rows denoised together, across merged requests
                    }
                )
                rendered.prompt = next(r.prompt for r in rows if r.job == index and r.stem == stem)
                rendered.negative_prompt = negative_prompt(stem)
                results[index].stems.append(rendered)
                progress[index](stem, 1.0)
        logger.info(
            "%s: %d rows from %d requests in %d pipeline calls, %.1f s at %d steps",
            self.name,
            len(rows),
            len(jobs),
            len(calls),
            generated,
            steps,
        )
        return results

    def _request_facts(self, request: RequestText, config: ConfigT, spec: MusicSpec) -> dict[str, Any]:
        return {
            f"{self.name}_model": self._loaded.name,
            "chord_progression": list(request.chord_progression),
            "key": request.key,
            self.name: self._applied(config, spec),
        }

    def _calls(self, rows: list[Row], max_rows: int) -> list[list[Row]]:
        """Rows grouped into pipeline calls by ``_call_key``, at most ``max_rows`` each. A
        request's stems share a key, so they share a call."""
        calls = []
        ordered = sorted(rows, key=lambda row: repr(self._call_key(row)))
        for _, group in groupby(ordered, key=self._call_key):
            members = list(group)
            calls += [members[i : i + max_rows] for i in range(0, len(members), max_rows)]
        return calls

    def _finish_stem(
        self,
        spec: MusicSpec,
        stem: str,
        pieces: list[np.ndarray],
        windows: list[AudioWindow],
        config: ConfigT,
    ) -> RenderedStem:
        from stemforge.dsp.loudness import normalize_loudness

        info: dict[str, Any] = {"model": self._loaded.name}
        aligned: list[np.ndarray] = []
        stretch = _stretches(spec, config)
        for piece, window in zip(pieces, windows, strict=True):
            frames = round(window.length * SAMPLE_RATE)
            if config.measure_tempo or stretch:
                piece, alignment = align_to_grid(piece, SAMPLE_RATE, spec.bpm, frames, stretch=stretch)
                if not aligned:  # the first window speaks for the stem
                    info.update(alignment.info())
            aligned.append(fit_length(piece, frames))
        audio = stitch(aligned, windows, SAMPLE_RATE, spec.num_frames)
        audio = normalize_loudness(audio, SAMPLE_RATE, config.target_lufs, config.peak_ceiling_dbfs)
        return RenderedStem(stem_type=stem, audio=audio, engine=self.name, info=info)


def _stretches(spec: MusicSpec, config: DiffusionConfig) -> bool:
    return config.time_stretch_to_bpm or spec.align_to_grid


def to_stem_audio(waveform: np.ndarray, sample_rate: int, num_frames: int) -> np.ndarray:
    """``(channels, samples)`` or ``(samples,)`` at ``sample_rate`` to ``(num_frames, 2)`` at
    44.1 kHz: soxr's very-high-quality resampler, mono duplicated to both channels."""
    audio = np.atleast_2d(np.asarray(waveform, dtype=np.float32)).T
    audio = np.ascontiguousarray(audio)
    if sample_rate != SAMPLE_RATE:
        import soxr

        audio = np.asarray(soxr.resample(audio, sample_rate, SAMPLE_RATE, "VHQ"), dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[:, None]
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return fit_length(audio[:, :2], num_frames)


class StepTracker:
    """Each stem's share of its rows' denoising steps done, reported after every step."""

    def __init__(self, rows: list[Row], steps: int, progress: list[Progress]) -> None:
        self._progress = progress
        self._total: dict[tuple[int, str], int] = {}
        for row in rows:
            self._total[(row.job, row.stem)] = self._total.get((row.job, row.stem), 0) + steps
        self._done = dict.fromkeys(self._total, 0)
        self._active: list[Row] = []

    def start(self, rows: list[Row]) -> None:
        self._active = rows

    def on_step(self, *_: Any, **__: Any) -> None:
        for row in self._active:
            key = (row.job, row.stem)
            self._done[key] = min(self._total[key], self._done[key] + 1)
            self._progress[row.job](row.stem, DENOISED_SHARE * self._done[key] / self._total[key])
