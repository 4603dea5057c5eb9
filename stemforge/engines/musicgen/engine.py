"""The MusicGen engine: stems from a MusicGen (or MusicGen-melody) checkpoint via transformers.

One replica loads one checkpoint once. Every stem of every job handed to ``generate_batch`` (the
replica merges concurrent requests with ``@serve.batch``) goes through one batched decoding loop:
each step reads all decoder weights once whatever the batch, so four stems cost little more than
one. torch and transformers are imported when the engine is built, never at module import, so
the pure parts (prompts, windows, config) work without them.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from stemforge.engines.alignment import align_to_grid, alignment_margin, fit_length
from stemforge.engines.base import (
    Engine,
    EngineJob,
    EngineLimits,
    EngineResult,
    Progress,
    RenderedStem,
    no_progress,
)
from stemforge.engines.musicgen.config import MusicGenConfig, parse_config
from stemforge.engines.musicgen.windows import (
    Window,
    codebook_delays,
    frames_for_seconds,
    plan_windows_after,
)
from stemforge.engines.prompting import RequestText, build_prompt, resolve_request
from stemforge.engines.seeds import stem_seed
from stemforge.errors import ConfigurationError, GenerationFailed
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.settings import Settings

if TYPE_CHECKING:
    import torch

    from stemforge.engines.musicgen.decoding import ForwardHook
    from stemforge.engines.musicgen.lean import LeanDecoder
    from stemforge.engines.musicgen.loading import LoadedModel

logger = logging.getLogger(__name__)

ENGINE_NAME = "musicgen"
# The harmony the melody condition is made of is rendered this many 4-beat bars longer than the
# stem (no metre here has longer bars), and cut: see ``_harmonies``.
HARMONY_PADDING_BARS = 2
HARMONY_SEED = 0
MAX_TEXT_TOKENS = 128
_EXTRA_HINT = 'pip install "stemforge[musicgen]"'


def _require_stack() -> None:
    """Fail with the extra to install rather than a bare ModuleNotFoundError deep in a replica."""
    for module in ("torch", "transformers", "soxr"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"the musicgen engine needs the package {module!r}, which is not installed ({_EXTRA_HINT})"
            ) from exc


@dataclass
class _Row:
    """One stem of one job: a row of the decoding batch."""

    job: int
    stem: str
    prompt: str
    seed: int
    temperature: float
    frames: int  # audio frames to generate (stem duration, plus margin when stretching)
    prefix: int = 0  # frames of audio prompt before them (continue: the reference's tail)


# Decoding is most of a stem's time; the codec, tempo and loudness take the rest.
DECODED_SHARE = 0.95


def _step_reporter(rows: list[_Row], window_start: int, progress: list[Progress]) -> Callable[[int], None]:
    """Reports each row's share of frames decoded after a window's step (a frame per step; the
    codebook delay's last few steps count as the final frame)."""

    def on_step(step: int) -> None:
        for row in rows:
            done = min(row.frames, window_start + step + 1)
            progress[row.job](row.stem, DECODED_SHARE * done / row.frames)

    return on_step


def _seconds_to_generate(spec: MusicSpec, config: MusicGenConfig) -> float:
    """The stem's duration, plus what aligning it to the grid consumes when it is on."""
    if not (config.time_stretch_to_bpm or spec.align_to_grid):
        return spec.duration_seconds
    factor, extra = alignment_margin(spec.bpm)
    return spec.duration_seconds * factor + extra


def _continues(job: EngineJob) -> bool:
    return job.spec.reference is not None and job.spec.reference.mode == "continue"


def _from_bar_one(job: EngineJob) -> EngineJob:
    """An accompaniment starts on the reference's first downbeat: only that much is generated."""
    reference = job.spec.reference
    if reference is None or reference.offset_seconds <= 0:
        return job
    spec = replace(job.spec, duration_seconds=job.spec.duration_seconds - reference.offset_seconds)
    return replace(job, spec=spec)


def _with_lead_in(result: EngineResult, spec: MusicSpec) -> EngineResult:
    """Each stem as long as ``spec`` asks, silent until bar 1 (see ``_from_bar_one``)."""
    for stem in result.stems:
        missing = spec.num_frames - stem.audio.shape[0]
        if missing > 0:
            silence = np.zeros((missing, stem.audio.shape[1]), dtype=np.float32)
            stem.audio = np.concatenate([silence, stem.audio])
    return result


def _heard_harmony(
    job: EngineJob, harmony: np.ndarray, rows: list[_Row], loaded: "LoadedModel"
) -> np.ndarray:
    """The melody condition's audio at the codec rate, on the stems' timeline: the reference
    itself where the job has it (from bar 1 when accompanying; after the prompt's own audio when
    continuing), the chords rendered (``harmony``) where it does not reach."""
    import soxr

    reference = job.spec.reference
    if job.reference_audio is None or reference is None:
        return harmony
    hop = round(loaded.sample_rate / loaded.frame_rate)
    heard = soxr.resample(
        np.asarray(job.reference_audio, dtype=np.float32), SAMPLE_RATE, loaded.sample_rate, "HQ"
    )
    if reference.mode == "continue":
        prefix = max((row.prefix for row in rows), default=0) * hop
        return np.concatenate([heard[-prefix:] if prefix else heard[:0], harmony])
    start = round(reference.offset_seconds * loaded.sample_rate)
    segment = heard[start:]
    return np.concatenate([segment, harmony[segment.shape[0] :]])


class MusicGenEngine(Engine[MusicGenConfig]):
    name = ENGINE_NAME
    config_type = MusicGenConfig
    # Beyond the model's 30 s window the stem continues window by window.
    limits = EngineLimits(max_duration_seconds=300, max_stems=len(STEM_TYPES))
    batches = True
    # A melody checkpoint follows the reference's chroma (or the MIDI's chords, rendered); any
    # checkpoint continues a recording from its tail; without melody conditioning the tempo,
    # key and chords go in as text. What was used is in the callback's reference_use.
    reference_modes = frozenset({"accompany", "style", "continue"})
    reference_kinds = frozenset({"audio", "midi"})
    hears_reference = True

    def __init__(self, settings: Settings) -> None:
        _require_stack()
        from stemforge.engines.musicgen.loading import load_model
        from stemforge.engines.torch_runtime import apply_threads, pick_device

        self._settings = settings
        self._config = MusicGenConfig()
        self._lock = threading.Lock()
        self._device = pick_device(settings.use_gpu, "MusicGen")
        started = time.monotonic()
        self._loaded: LoadedModel = load_model(settings.musicgen_model, self._device, self._config.cpu_int8)
        apply_threads(self._config.num_threads)
        self._apply_attention(self._config)
        self._lean = self._build_lean(self._config, self._loaded)
        self._harmony: Any = None
        if self._loaded.is_melody:
            from stemforge.engines.procedural import ProceduralEngine

            self._harmony = ProceduralEngine(settings)
        # Tests and the benchmark set this to watch the batches the decoder receives.
        self.on_forward: ForwardHook | None = None
        logger.info(
            "musicgen: loaded %s from %s on %s (%s%s) in %.1f s",
            settings.musicgen_model,
            self._loaded.path,
            self._device,
            str(self._loaded.dtype).removeprefix("torch."),
            ", int8 decoder" if self._loaded.quantized else "",
            time.monotonic() - started,
        )

    # --- Engine protocol ----------------------------------------------------------------------

    @classmethod
    def parse_config(cls, raw: Mapping[str, Any]) -> MusicGenConfig:
        return parse_config(raw)

    def configure(self, config: MusicGenConfig) -> None:
        """Sampling and windowing apply from the next batch; switching ``cpu_int8`` reloads the
        weights."""
        from stemforge.engines.musicgen.loading import load_model
        from stemforge.engines.torch_runtime import apply_threads

        with self._lock:
            reloaded = self._device.type == "cpu" and config.cpu_int8 != self._loaded.quantized
            if reloaded:
                self._loaded = load_model(self._settings.musicgen_model, self._device, config.cpu_int8)
            apply_threads(config.num_threads)
            self._apply_attention(config)
            if reloaded or config.lean_decoder != self._config.lean_decoder:
                self._lean = self._build_lean(config, self._loaded)
            self._config = config

    def _apply_attention(self, config: MusicGenConfig) -> None:
        """On CPU the preallocated cache goes with plain-matmul attention (see ``attention``);
        on GPU, and with transformers' dynamic cache, transformers' SDPA kernels stay."""
        from stemforge.engines.musicgen.attention import register

        custom = self._device.type == "cpu" and config.kv_cache == "preallocated"
        self._loaded.model.decoder.set_attn_implementation(register() if custom else "sdpa")

    def _build_lean(self, config: MusicGenConfig, loaded: "LoadedModel") -> "LeanDecoder | None":
        """The lean forward pass where it applies (CPU, MusicGen), else None."""
        from stemforge.engines.musicgen.lean import LeanDecoder

        decoder = loaded.model.decoder
        if not config.lean_decoder or self._device.type != "cpu" or not LeanDecoder.supports(decoder):
            return None
        return LeanDecoder(decoder)

    @property
    def device(self) -> str:
        """Where the decoder runs (``cuda:0``, ``cpu``): /health reports it."""
        return str(self._device)

    @property
    def config(self) -> MusicGenConfig:
        return self._config

    @property
    def loaded(self) -> "LoadedModel":
        return self._loaded

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        return self.generate_batch([EngineJob(spec=spec, stems=tuple(stems))], [progress])[0]

    def generate_batch(
        self, jobs: Sequence[EngineJob], progress: Sequence[Progress] | None = None
    ) -> list[EngineResult]:
        """All stems of all ``jobs`` in one batched decoding loop; one result per job, in order.
        Progress is the share of a stem's frames decoded (the codec and loudness take the last
        few percent)."""
        if not jobs:
            return []
        reports: list[Progress] = list(progress) if progress is not None else [no_progress] * len(jobs)
        # A continuation's window plan starts after its own prompt: each is decoded alone.
        plain = [i for i, job in enumerate(jobs) if not _continues(job)]
        groups = ([plain] if plain else []) + [[i] for i, job in enumerate(jobs) if _continues(job)]
        results: list[EngineResult] = [EngineResult(stems=[]) for _ in jobs]
        with self._lock:
            config, loaded = self._config, self._loaded
            for group in groups:
                rendered = self._generate_locked(
                    [_from_bar_one(jobs[i]) for i in group], [reports[i] for i in group], config, loaded
                )
                for i, result in zip(group, rendered, strict=True):
                    results[i] = _with_lead_in(result, jobs[i].spec)
        return results

    # --- the work -----------------------------------------------------------------------------

    def _generate_locked(
        self, jobs: list[EngineJob], progress: list[Progress], config: MusicGenConfig, loaded: "LoadedModel"
    ) -> list[EngineResult]:
        import torch

        requests = [resolve_request(job.spec) for job in jobs]
        min_frames = max(2, int(loaded.frame_rate // 2))  # the codec needs a little context
        prompts = {
            i: self._audio_prompt(job, config, loaded) for i, job in enumerate(jobs) if _continues(job)
        }
        rows = [
            _Row(
                job=index,
                stem=stem,
                prompt=build_prompt(job.spec, stem, requests[index]),
                seed=stem_seed(job.spec.seed, stem),
                temperature=max(0.0, job.spec.temperature),
                frames=max(
                    min_frames, frames_for_seconds(_seconds_to_generate(job.spec, config), loaded.frame_rate)
                )
                + (prompts[index].shape[-1] if index in prompts else 0),
                prefix=prompts[index].shape[-1] if index in prompts else 0,
            )
            for index, job in enumerate(jobs)
            for stem in job.stems
        ]
        applied = [self._applied(requests[i], config, loaded, job) for i, job in enumerate(jobs)]
        if not rows:
            return [EngineResult(stems=[], applied=applied[i]) for i in range(len(jobs))]

        started = time.monotonic()
        with torch.inference_mode():
            codes = self._generate_codes(jobs, requests, rows, config, loaded, progress, prompts)
            waveforms = self._decode(codes, loaded)
        generated = time.monotonic() - started
        # A continuation was decoded with its prompt, for a seamless start; only the new audio stays.
        hop = round(loaded.sample_rate / loaded.frame_rate)
        waveforms = [waveform[..., row.prefix * hop :] for row, waveform in zip(rows, waveforms, strict=True)]

        results = [EngineResult(stems=[], applied=applied[i]) for i in range(len(jobs))]
        for row, waveform in zip(rows, waveforms, strict=True):
            spec = jobs[row.job].spec
            stem = self._finish_stem(row, waveform, spec, config, loaded)
            stem.info["generation_seconds"] = round(generated, 2)
            stem.info["batch_size"] = len(rows)  # stems decoded together, across merged requests
            results[row.job].stems.append(stem)
            progress[row.job](row.stem, 1.0)
        logger.info(
            "musicgen: %d stems from %d requests in one batch, %.1f s of decoding",
            len(rows),
            len(jobs),
            generated,
        )
        return results

    @staticmethod
    def _applied(
        request: RequestText, config: MusicGenConfig, loaded: "LoadedModel", job: EngineJob | None = None
    ) -> dict[str, Any]:
        reference = job.spec.reference if job is not None else None
        use: dict[str, Any] = {}
        if reference is not None:
            if reference.mode == "continue":
                heard = "the reference's last seconds as the audio prompt, new audio returned"
            elif not loaded.is_melody:
                heard = "text: the reference's tempo, key and chords (this checkpoint has no melody input)"
            elif reference.kind == "audio":
                heard = "chroma of the reference as the melody condition"
            else:
                heard = "the MIDI's own parts, rendered, as the melody condition"
            use = {"reference_use": {"mode": reference.mode, "conditioning": heard}}
        return {
            **use,
            "musicgen_model": loaded.name,
            "chord_progression": list(request.chord_progression),
            "key": request.key,
            # Only a melody checkpoint can be made to follow the chords; others get them as text.
            "chord_conditioning": "chroma" if loaded.is_melody else "text",
            "guidance_scale": config.guidance_scale,
            "top_k": config.top_k,
            "top_p": config.top_p,
        }

    def _generate_codes(
        self,
        jobs: list[EngineJob],
        requests: list[RequestText],
        rows: list[_Row],
        config: MusicGenConfig,
        loaded: "LoadedModel",
        progress: list[Progress],
        prompts: Mapping[int, "torch.Tensor"] | None = None,
    ) -> list["torch.Tensor"]:
        """Audio tokens ``(codebooks, frames)`` per row, window by window, after the audio prompt
        of its job (``prompts``, continuations: then every row has the same prompt length)."""
        import torch

        from stemforge.engines.musicgen.conditioning import (
            CrossAttentionConditioning,
            PrefixConditioning,
            StepConditioning,
            encode_text,
        )
        from stemforge.engines.musicgen.decoding import decode_window
        from stemforge.engines.musicgen.sampling import RowSampler

        model, device = loaded.model, loaded.device
        text = encode_text(
            model,
            loaded.tokenizer,
            [row.prompt for row in rows],
            MAX_TEXT_TOKENS,
            loaded.dtype,
            pad_to_max=True,
        )
        sampler = RowSampler(
            [row.seed for row in rows], [row.temperature for row in rows], config.top_k, config.top_p, device
        )
        delays = codebook_delays(loaded.num_codebooks, loaded.audio_channels)
        prompts = prompts or {}
        windows = plan_windows_after(
            rows[0].prefix,
            max(row.frames for row in rows),
            frames_for_seconds(config.window_seconds, loaded.frame_rate),
            frames_for_seconds(config.stride_seconds, loaded.frame_rate),
        )
        harmonies = self._harmonies(jobs, requests, rows, loaded) if loaded.is_melody else {}
        codes = [
            prompts[row.job].to(device)
            if row.job in prompts
            else torch.zeros((loaded.num_codebooks, 0), dtype=torch.long, device=device)
            for row in rows
        ]
        for window in windows:
            active = [i for i, row in enumerate(rows) if row.frames > window.start]
            new = [min(window.new, rows[i].frames - window.start) for i in active]
            on_step = _step_reporter([rows[i] for i in active], window.start, progress)
            prompt = torch.stack([codes[i][:, window.first_frame : window.start] for i in active])
            conditioning: StepConditioning
            if loaded.is_melody:
                chroma = [
                    self._window_chroma(harmonies[rows[i].job], window, n, loaded)
                    for i, n in zip(active, new, strict=True)
                ]
                conditioning = PrefixConditioning(model, text, active, chroma, config.uses_guidance)
            else:
                conditioning = CrossAttentionConditioning(text, active, config.uses_guidance)
            frames = decode_window(
                model.decoder,
                conditioning,
                prompt,
                new,
                delays=delays,
                start_token=loaded.start_token,
                sampler=sampler,
                rows=active,
                guidance_scale=config.guidance_scale,
                kv_cache=config.kv_cache,
                on_forward=self.on_forward,
                on_step=on_step,
                lean=self._lean,
            )
            for slot, (i, n) in enumerate(zip(active, new, strict=True)):
                codes[i] = torch.cat([codes[i], frames[slot, :, window.prompt : window.prompt + n]], dim=1)
        return codes

    def _harmonies(
        self, jobs: list[EngineJob], requests: list[RequestText], rows: list[_Row], loaded: "LoadedModel"
    ) -> dict[int, np.ndarray]:
        """Each job's chord progression played by the procedural engine, mono at the codec rate."""
        import soxr

        harmonies: dict[int, np.ndarray] = {}
        for index, job in enumerate(jobs):
            frames = max((row.frames for row in rows if row.job == index), default=0)
            if frames == 0:
                continue
            # The chords, not a take: the plain patterns of a fixed seed (the request's seed
            # picks the model's sampling, not the condition), rendered longer than needed and
            # cut, since a procedural song ends with a cadence to the tonic and the condition
            # must be the requested chords to the stem's end.
            padding = HARMONY_PADDING_BARS * 4 * 60.0 / job.spec.bpm
            spec = replace(
                job.spec,
                seed=HARMONY_SEED,
                temperature=0.0,
                chord_progression=requests[index].chord_progression,
                duration_seconds=frames / loaded.frame_rate + padding,
            )
            mono = np.asarray(self._played(spec, job), dtype=np.float32).mean(axis=1)
            harmony = soxr.resample(mono, SAMPLE_RATE, loaded.sample_rate, "HQ")
            harmonies[index] = _heard_harmony(job, harmony, rows, loaded)
        return harmonies

    def _played(self, spec: MusicSpec, job: EngineJob) -> np.ndarray:
        """The melody condition's music: the chords on a piano or, given a MIDI file, its own
        pitched parts (from its bar 1), rendered by the procedural engine."""
        reference = job.spec.reference
        pitched = (
            [name for name, _ in reference.midi_parts if name != "drums"]
            if reference is not None and reference.kind == "midi"
            else []
        )
        if reference is None or not pitched:
            audio: np.ndarray = (
                self._harmony.generate(replace(spec, reference=None), ["piano"]).stems[0].audio
            )
            return audio
        whole = replace(spec, duration_seconds=spec.duration_seconds + reference.offset_seconds)
        parts = self._harmony.generate(whole, pitched).stems
        played: np.ndarray = np.sum([stem.audio for stem in parts], axis=0)
        return played[round(reference.offset_seconds * SAMPLE_RATE) :]

    def _audio_prompt(self, job: EngineJob, config: MusicGenConfig, loaded: "LoadedModel") -> "torch.Tensor":
        """The reference's tail as tokens: as much as leaves the first window room for a stride."""
        import soxr

        from stemforge.engines.musicgen.audio import encode_audio

        if job.reference_audio is None:
            raise GenerationFailed("continue needs the reference audio, which did not reach the engine")
        seconds = max(1.0, config.window_seconds - config.stride_seconds)
        tail = job.reference_audio[-round(seconds * SAMPLE_RATE) :]
        mono = soxr.resample(np.asarray(tail, dtype=np.float32), SAMPLE_RATE, loaded.sample_rate, "HQ")
        return encode_audio(loaded.model.audio_encoder, mono, loaded.audio_channels)

    @staticmethod
    def _window_chroma(
        harmony: np.ndarray, window: Window, new: int, loaded: "LoadedModel"
    ) -> "torch.Tensor":
        from stemforge.engines.musicgen.chroma import chroma_one_hot

        hop = loaded.sample_rate / loaded.frame_rate
        begin = round(window.first_frame * hop)
        end = round((window.start + new) * hop)
        segment = harmony[begin:end]
        if segment.shape[0] < end - begin:
            segment = np.pad(segment, (0, end - begin - segment.shape[0]))
        return chroma_one_hot(segment, loaded.sample_rate, int(loaded.model.config.num_chroma))

    def _decode(self, codes: list["torch.Tensor"], loaded: "LoadedModel") -> list[np.ndarray]:
        """Waveforms ``(channels, samples)`` at the codec rate, one row at a time: the codec's
        activations are large (80 MB per 10 s of audio in its widest layer), and one row's stay
        in cache better than a batch's (about 1.2x faster for 4 x 10 s here). A row's audio
        then never depends on what it was batched with."""
        from stemforge.engines.musicgen.audio import decode_codes

        return [
            decode_codes(loaded.model.audio_encoder, row_codes[None], loaded.audio_channels)[0]
            for row_codes in codes
        ]

    def _finish_stem(
        self, row: _Row, waveform: np.ndarray, spec: MusicSpec, config: MusicGenConfig, loaded: "LoadedModel"
    ) -> RenderedStem:
        from stemforge.engines.musicgen.audio import finish, to_stem_audio

        info: dict[str, Any] = {"seed": row.seed, "model": loaded.name}
        # With stretching the whole margin is kept until the stretch and shift have moved the beats.
        audio = to_stem_audio(
            waveform, loaded.sample_rate, waveform.shape[-1] * SAMPLE_RATE // loaded.sample_rate
        )
        stretch = config.time_stretch_to_bpm or spec.align_to_grid
        if config.measure_tempo or stretch:
            audio, alignment = align_to_grid(audio, SAMPLE_RATE, spec.bpm, spec.num_frames, stretch=stretch)
            info.update(alignment.info())
        audio = fit_length(audio, spec.num_frames)
        audio = finish(audio, config.target_lufs, config.peak_ceiling_dbfs)
        return RenderedStem(stem_type=row.stem, audio=audio, engine=ENGINE_NAME, info=info, prompt=row.prompt)
