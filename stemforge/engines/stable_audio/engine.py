"""The Stable Audio Open engine: stems from a diffusers ``StableAudioPipeline``.

One replica loads the pipeline once. Every stem of every job handed to ``generate_batch`` (the
replica merges concurrent requests with ``@serve.batch``) is a row of one pipeline call: a prompt,
a negative prompt and a seed per row, so a stem's audio never depends on its batch mates. The
latent is sized to the stem (denoising cost grows with its length), never the model's full 47 s;
longer stems are windows on the bar grid, all rows of one call. torch and diffusers are imported
when the engine is built, never at module import.
"""

import logging
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Any

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
from stemforge.engines.prompting import RequestText, build_prompt, negative_prompt, resolve_request
from stemforge.engines.seeds import stem_seed
from stemforge.engines.stable_audio.config import StableAudioConfig, guidance_for
from stemforge.engines.stable_audio.windows import AudioWindow, bar_seconds, plan_windows, stitch
from stemforge.errors import ConfigurationError, GenerationFailed
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.settings import Settings

if TYPE_CHECKING:
    import torch

    from stemforge.engines.stable_audio.loading import LoadedPipeline

logger = logging.getLogger(__name__)

ENGINE_NAME = "stable_audio"
SAMPLER = "CosineDPMSolverMultistepScheduler"
_EXTRA_HINT = 'pip install "stemforge[stable-audio]"'
# Denoising is most of a stem's time; decoding, alignment and loudness take the rest.
DENOISED_SHARE = 0.9


def _require_stack() -> None:
    """Fail with the extra to install rather than a bare ModuleNotFoundError deep in a replica."""
    for module in ("torch", "transformers", "diffusers", "torchsde", "librosa"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the stable_audio engine needs the package {module!r}, which is not installed "
                f"({_EXTRA_HINT})"
            ) from exc


@dataclass
class _Row:
    """One window of one stem of one job: a row of a pipeline call."""

    job: int
    stem: str
    window: int
    prompt: str
    negative: str
    seed: int
    guidance: float
    seconds: float  # audio to generate for this window (its length plus the alignment margin)


class StableAudioEngine(Engine[StableAudioConfig]):
    name = ENGINE_NAME
    config_type = StableAudioConfig
    limits = EngineLimits(max_duration_seconds=300, max_stems=len(STEM_TYPES))
    batches = True

    def __init__(self, settings: Settings, loaded: "LoadedPipeline | None" = None) -> None:
        """``loaded``: a pipeline already placed (the benchmark builds one in memory); else
        ``STABLE_AUDIO_MODEL`` is loaded."""
        _require_stack()
        from stemforge.engines.stable_audio.loading import DTYPES, load_pipeline
        from stemforge.engines.torch_runtime import apply_threads, pick_device

        self._config = StableAudioConfig()
        self._lock = threading.Lock()
        started = time.monotonic()
        if loaded is None:
            device = pick_device(settings.use_gpu, "Stable Audio")
            dtype = DTYPES[self._config.gpu_dtype if device.type == "cuda" else self._config.cpu_dtype]
            loaded = load_pipeline(settings.stable_audio_model, device, dtype)
        self._loaded = loaded
        self._settings = settings
        apply_threads(self._config.num_threads)
        logger.info(
            "stable_audio: loaded %s from %s on %s (%s) in %.1f s",
            loaded.name,
            loaded.path,
            loaded.device,
            str(loaded.dtype).removeprefix("torch."),
            time.monotonic() - started,
        )

    # --- Engine protocol ----------------------------------------------------------------------

    def configure(self, config: StableAudioConfig) -> None:
        """Steps, guidance and windowing apply from the next batch; a changed dtype recasts the
        weights in place."""
        from stemforge.engines.stable_audio.loading import DTYPES, prepare
        from stemforge.engines.torch_runtime import apply_threads

        with self._lock:
            on_gpu = self._loaded.device.type == "cuda"
            dtype = DTYPES[config.gpu_dtype if on_gpu else config.cpu_dtype]
            if dtype != self._loaded.dtype:
                loaded = self._loaded
                self._loaded = prepare(loaded.pipeline, loaded.name, loaded.path, loaded.device, dtype)
            apply_threads(config.num_threads)
            self._config = config

    @property
    def device(self) -> str:
        return str(self._loaded.device)

    @property
    def config(self) -> StableAudioConfig:
        return self._config

    @property
    def loaded(self) -> "LoadedPipeline":
        return self._loaded

    def status(self) -> EngineStatus:
        if self._loaded.device.type == "cuda":
            return EngineStatus()
        # A CPU replica is honest about what it renders (the full model takes tens of seconds
        # per step here): nobody should take its output for the GPU engine's.
        return EngineStatus(
            problems=(
                f"CPU preview: {self._config.cpu_num_inference_steps} denoising steps per stem "
                f"(GPU replicas: {self._config.num_inference_steps}); not GPU quality",
            )
        )

    def details(self) -> dict[str, Any]:
        on_gpu = self._loaded.device.type == "cuda"
        return {
            "model": self._loaded.name,
            "steps": self._config.steps(on_gpu),
            "dtype": str(self._loaded.dtype).removeprefix("torch."),
            "preview": not on_gpu,
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
        lengths and ``max_rows_per_call`` allow; one result per job, in order."""
        if not jobs:
            return []
        reports: list[Progress] = list(progress) if progress is not None else [no_progress] * len(jobs)
        with self._lock:
            return self._generate_locked(list(jobs), reports, self._config, self._loaded)

    # --- the work -----------------------------------------------------------------------------

    def _window_seconds(self, config: StableAudioConfig) -> float:
        longest = self._loaded.max_seconds
        return min(longest, config.window_seconds) if config.window_seconds else longest

    def _plan(self, spec: MusicSpec, config: StableAudioConfig) -> tuple[list[AudioWindow], float, float]:
        """The stem's windows and what each generates beyond its length for alignment:
        ``(windows, factor, extra_seconds)``."""
        factor, extra = alignment_margin(spec.bpm) if _stretches(spec, config) else (1.0, 0.0)
        usable = (self._window_seconds(config) - extra) / factor
        try:
            windows = plan_windows(spec.duration_seconds, bar_seconds(spec.bpm), usable, config.overlap_bars)
        except ValueError as exc:
            raise GenerationFailed(f"stable_audio: {exc}") from exc
        return windows, factor, extra

    def _generate_locked(
        self,
        jobs: list[EngineJob],
        progress: list[Progress],
        config: StableAudioConfig,
        loaded: "LoadedPipeline",
    ) -> list[EngineResult]:
        requests = [resolve_request(job.spec) for job in jobs]
        plans = [self._plan(job.spec, config) for job in jobs]
        rows = [
            _Row(
                job=index,
                stem=stem,
                window=k,
                prompt=build_prompt(job.spec, stem, requests[index]),
                negative=negative_prompt(stem),
                # Window 0 has the stem's own seed: a stem that fits one window is that window.
                seed=stem_seed(job.spec.seed, stem if k == 0 else f"{stem}:{k}"),
                guidance=guidance_for(config, job.spec.temperature),
                seconds=min(self._window_seconds(config), window.length * plans[index][1] + plans[index][2]),
            )
            for index, job in enumerate(jobs)
            for stem in job.stems
            for k, window in enumerate(plans[index][0])
        ]
        steps = config.steps(loaded.device.type == "cuda")
        results = [
            EngineResult(stems=[], applied=self._applied(requests[i], config, jobs[i].spec))
            for i in range(len(jobs))
        ]
        if not rows:
            return results

        started = time.monotonic()
        tracker = _StepTracker(rows, steps, progress)
        audio: dict[tuple[int, str, int], np.ndarray] = {}
        calls = 0
        for chunk in _calls(rows, loaded, config.max_rows_per_call):
            for row, waveform in zip(chunk, self._call(chunk, steps, loaded, tracker), strict=True):
                audio[(row.job, row.stem, row.window)] = waveform
            calls += 1
        generated = time.monotonic() - started

        for index, job in enumerate(jobs):
            windows = plans[index][0]
            for stem in job.stems:
                pieces = [audio[(index, stem, k)] for k in range(len(windows))]
                rendered = self._finish_stem(job.spec, stem, pieces, windows, config, loaded)
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
            "stable_audio: %d rows from %d requests in %d pipeline calls, %.1f s at %d steps",
            len(rows),
            len(jobs),
            calls,
            generated,
            steps,
        )
        return results

    def _applied(self, request: RequestText, config: StableAudioConfig, spec: MusicSpec) -> dict[str, Any]:
        on_gpu = self._loaded.device.type == "cuda"
        return {
            "stable_audio_model": self._loaded.name,
            "chord_progression": list(request.chord_progression),
            "key": request.key,
            "stable_audio": {
                "steps": config.steps(on_gpu),
                "guidance_scale": round(guidance_for(config, spec.temperature), 3),
                "sampler": SAMPLER,
                "preview": not on_gpu,
                "time_stretch_to_bpm": _stretches(spec, config),
            },
        }

    def _call(
        self, rows: list[_Row], steps: int, loaded: "LoadedPipeline", tracker: "_StepTracker"
    ) -> list[np.ndarray]:
        """One pipeline call for ``rows`` (same latent length): ``(frames, 2)`` float32 audio at
        44.1 kHz per row, ``rows[i].seconds`` long."""
        import torch

        frames = loaded.latent_frames(max(row.seconds for row in rows))
        generators = [torch.Generator("cpu").manual_seed(row.seed) for row in rows]
        # The initial noise is drawn per row from its own generator, on the CPU, so a row's
        # audio is the same on any device and in any batch.
        latents = torch.stack(
            [
                torch.randn((loaded.latent_channels, frames), generator=g, dtype=torch.float32)
                for g in generators
            ]
        ).to(loaded.device, loaded.dtype)
        # One guidance scale per call: rows of one request share it; merged requests with other
        # temperatures get their own call (see ``_calls``).
        guidance = rows[0].guidance
        tracker.start(rows)
        with torch.inference_mode(), warnings.catch_warnings():
            # torchsde's Brownian tree warns on every step of the cosine DPM-Solver schedule
            # ("Should have ta>=t0"), a float rounding at the schedule's ends it tolerates.
            warnings.filterwarnings("ignore", message="Should have", module="torchsde")
            output = loaded.pipeline(
                prompt=[row.prompt for row in rows],
                negative_prompt=[row.negative for row in rows],
                audio_end_in_s=frames * loaded.hop / loaded.sample_rate,
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generators,
                latents=latents,
                output_type="latent",
                callback=tracker.on_step,
                callback_steps=1,
            )
            denoised = output.audios
            waveforms = [self._decode(denoised[i : i + 1], loaded) for i in range(len(rows))]
        return [
            _to_stem_audio(waveform, loaded.sample_rate, round(row.seconds * SAMPLE_RATE))
            for row, waveform in zip(rows, waveforms, strict=True)
        ]

    @staticmethod
    def _decode(latent: "torch.Tensor", loaded: "LoadedPipeline") -> np.ndarray:
        """One row at a time, in float32: the decoder's activations are large, and fp16 decodes
        are where NaNs come from. Non-finite audio fails the job rather than being stored."""
        import torch

        if not torch.isfinite(latent).all():
            raise GenerationFailed("stable_audio: the denoised latent is not finite (NaN or inf)")
        audio = loaded.pipeline.vae.decode(latent.to(torch.float32)).sample[0]
        result: np.ndarray = audio.float().cpu().numpy()
        if not np.isfinite(result).all():
            raise GenerationFailed("stable_audio: the decoded audio is not finite (NaN or inf)")
        return result

    def _finish_stem(
        self,
        spec: MusicSpec,
        stem: str,
        pieces: list[np.ndarray],
        windows: list[AudioWindow],
        config: StableAudioConfig,
        loaded: "LoadedPipeline",
    ) -> RenderedStem:
        from stemforge.dsp.loudness import normalize_loudness

        info: dict[str, Any] = {"model": loaded.name}
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
        return RenderedStem(stem_type=stem, audio=audio, engine=ENGINE_NAME, info=info)


def _stretches(spec: MusicSpec, config: StableAudioConfig) -> bool:
    return config.time_stretch_to_bpm or spec.align_to_grid


def _calls(rows: list[_Row], loaded: "LoadedPipeline", max_rows: int) -> list[list[_Row]]:
    """Rows grouped into pipeline calls: one latent length and one guidance scale per call, at
    most ``max_rows`` rows. A request's stems share both, so they share a call."""

    def key(row: _Row) -> tuple[int, float]:
        return loaded.latent_frames(row.seconds), row.guidance

    calls = []
    for _, group in groupby(sorted(rows, key=key), key=key):
        members = list(group)
        calls += [members[i : i + max_rows] for i in range(0, len(members), max_rows)]
    return calls


def _to_stem_audio(waveform: np.ndarray, sample_rate: int, num_frames: int) -> np.ndarray:
    """``(channels, samples)`` at the VAE's rate to ``(num_frames, 2)`` at 44.1 kHz."""
    audio = np.ascontiguousarray(waveform.T, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE, "VHQ").astype(np.float32)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    return fit_length(audio[:, :2], num_frames)


class _StepTracker:
    """Each stem's share of its rows' denoising steps done, reported after every step."""

    def __init__(self, rows: list[_Row], steps: int, progress: list[Progress]) -> None:
        self._steps = steps
        self._progress = progress
        self._total: dict[tuple[int, str], int] = {}
        for row in rows:
            self._total[(row.job, row.stem)] = self._total.get((row.job, row.stem), 0) + steps
        self._done = dict.fromkeys(self._total, 0)
        self._active: list[_Row] = []

    def start(self, rows: list[_Row]) -> None:
        self._active = rows

    def on_step(self, step: int, timestep: Any, latents: Any) -> None:
        for row in self._active:
            key = (row.job, row.stem)
            self._done[key] = min(self._total[key], self._done[key] + 1)
            self._progress[row.job](row.stem, DENOISED_SHARE * self._done[key] / self._total[key])
