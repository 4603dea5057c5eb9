"""Stable Audio Open 1.0 cost per denoising step on this machine, against the plain diffusers call.

The pipeline is the full stabilityai/stable-audio-open-1.0 architecture (t5-base text encoder,
24-layer 1536-wide DiT with 64 latent channels, Oobleck VAE of width 128, 44.1 kHz stereo, hop 2048)
with random weights, built in memory: the same compute as the real checkpoint, which cannot be
downloaded here. Random weights make noise; speed does not depend on them.

    .venv/bin/python bench/stable_audio_bench.py --quick          # tiny widths: a smoke run
    .venv/bin/python bench/stable_audio_bench.py                  # full size, fp32, 2 measured steps
    .venv/bin/python bench/stable_audio_bench.py --dtype bf16 --steps 50

What is measured (each call runs ``--measured-steps`` denoising steps, guidance 7, so classifier-
free guidance doubles the DiT batch):

* the plain call with diffusers' defaults: it always denoises the full 1024-frame latent (47.55 s)
  and crops afterwards, whatever ``audio_end_in_s`` is;
* the call as the engine makes it: its own ``latents`` sized to the stem
  (ceil(seconds * 44100 / 2048) frames) and one ``torch.Generator`` per stem, for 10 s and 30 s,
  one stem and a batch of 4 stems at 10 s;
* the VAE decode of each (timed inside the same call).

Per-step seconds are the mean over the measured steps (the first step is not slower: the solver's
first-order start costs the same one DiT call). Seconds for ``--steps`` steps are EXTRAPOLATED:
measured overhead (text encoding, decode) + steps x per-step time. Nothing here asserts on time: the
machine may be shared, so the load average is printed next to each figure; compare ratios within one
run. With CUDA, fp16 on the GPU is measured too.

Full size on the 2-core CPU this was written on: about 33 s to build, 49 s per step at 1024 frames
and 114 s to decode 47.55 s of audio, so the whole run takes 15 minutes or more; the
StableAudioEngine call at the end adds about 2 minutes (skip it with ``--no-engine``).
"""

import argparse
import itertools
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "300000")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = (
    "solo drum kit groove, drums only, 120 BPM",
    "funky slap bass line, bass only, 120 BPM, E minor",
    "warm electric piano chords, piano only, 120 BPM, E minor",
    "clean funk guitar, guitar only, 120 BPM, E minor",
)


@dataclass
class Measurement:
    label: str
    stems: int
    seconds: float  # audio per stem the call returns
    frames: int  # latent frames denoised
    wall: float = 0.0  # the whole call
    steps: list[float] = field(default_factory=list)  # seconds of each denoising step
    decode: float = 0.0  # VAE decode
    load_before: float = 0.0
    load_after: float = 0.0

    @property
    def per_step(self) -> float:
        return sum(self.steps) / len(self.steps)

    @property
    def overhead(self) -> float:
        """Everything but the steps: text encoding, latents, VAE decode, cropping."""
        return self.wall - sum(self.steps)

    def extrapolated(self, steps: int) -> float:
        return self.overhead + steps * self.per_step

    def per_stem(self, steps: int) -> float:
        return self.extrapolated(steps) / self.stems


def latent_frames(seconds: float, sample_rate: int = 44_100, hop: int = 2048) -> int:
    return math.ceil(seconds * sample_rate / hop)


def build(quick: bool) -> Any:
    """A random-weight StableAudioPipeline: full stable-audio-open-1.0 size, or tiny for ``--quick``
    (same 1024-frame, 47.55 s window in both)."""
    from tests.support.tiny_stable_audio import build_pipeline, build_tokenizer, stable_audio_open_configs

    tokenizer = build_tokenizer()  # ids stay far below t5-base's 32128; sequence length 128 as real
    vocab_size = len(tokenizer) if quick else 32128
    configs = stable_audio_open_configs(tiny=quick, sample_size=1024, vocab_size=vocab_size)
    started = time.perf_counter()
    pipe = build_pipeline(configs, tokenizer)
    pipe.set_progress_bar_config(disable=True)
    sizes = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6
        for name in ("transformer", "text_encoder", "vae", "projection_model")
    }
    print(
        f"built {'TINY' if quick else 'full-size'} random pipeline in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{name} {millions:.1f}M" for name, millions in sizes.items())
        + " parameters",
        flush=True,
    )
    return pipe


class Timer:
    """Times each denoising step (through the pipeline's step callback) and the VAE decode."""

    def __init__(self, pipe: Any, device: str) -> None:
        self.pipe = pipe
        self.device = device
        self.marks: list[float] = []
        self.decode = 0.0
        self._decode = pipe.vae.decode
        pipe.transformer.register_forward_pre_hook(self._first_step)

    def now(self) -> float:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def _first_step(self, module: Any, args: Any) -> None:
        if not self.marks:
            self.marks.append(self.now())

    def step_done(self, step: int, timestep: Any, latents: Any) -> None:
        self.marks.append(self.now())

    def decode_timed(self, *args: Any, **kwargs: Any) -> Any:
        started = self.now()
        result = self._decode(*args, **kwargs)
        self.decode = self.now() - started
        return result

    def run(self, measurement: Measurement, **call: Any) -> Measurement:
        self.marks, self.decode = [], 0.0
        self.pipe.vae.decode = self.decode_timed
        measurement.load_before = os.getloadavg()[0]
        started = self.now()
        try:
            self.pipe(**call, callback=self.step_done, callback_steps=1)
        finally:
            self.pipe.vae.decode = self._decode
        measurement.wall = self.now() - started
        measurement.load_after = os.getloadavg()[0]
        measurement.steps = [b - a for a, b in itertools.pairwise(self.marks)]
        measurement.decode = self.decode
        return measurement


def engine_call(pipe: Any, seconds: float, stems: int, steps: int, device: str, dtype: Any) -> dict[str, Any]:
    """Arguments as the engine passes them: latents sized to the stem (in the pipeline's dtype:
    ``prepare_latents`` does not cast them), one generator per stem for the SDE noise."""
    import torch

    seeds = list(range(1, stems + 1))
    channels = pipe.transformer.config.in_channels
    frames = latent_frames(seconds, pipe.vae.config.sampling_rate, pipe.vae.hop_length)
    latents = torch.cat(
        [torch.randn(1, channels, frames, generator=torch.Generator().manual_seed(seed)) for seed in seeds]
    ).to(device=device, dtype=dtype)
    return {
        "prompt": [PROMPTS[i % len(PROMPTS)] for i in range(stems)],
        "negative_prompt": ["low quality, noise"] * stems,
        "num_inference_steps": steps,
        "audio_end_in_s": seconds,
        "latents": latents,
        "generator": [torch.Generator().manual_seed(seed) for seed in seeds],
    }


def measure(pipe: Any, device: str, dtype: Any, steps: int) -> list[Measurement]:
    import torch

    timer = Timer(pipe, device)
    window = pipe.transformer.config.sample_size * pipe.vae.hop_length / pipe.vae.config.sampling_rate
    rows: list[Measurement] = []

    def report(row: Measurement) -> None:
        rows.append(row)
        print(
            f"  {row.label:<40} {row.stems} stem(s) x {row.seconds:5.2f} s ({row.frames:4d} frames): "
            f"{row.per_step:7.2f} s/step, decode {row.decode:6.2f} s, call {row.wall:7.1f} s "
            f"[load {row.load_before:.1f}->{row.load_after:.1f}]",
            flush=True,
        )

    with torch.inference_mode():
        # Warm-up (allocator, kernels): 1 s, 1 step.
        timer.run(Measurement("warm-up", 1, 1.0, 22), **engine_call(pipe, 1.0, 1, 1, device, dtype))
        report(
            timer.run(
                Measurement(
                    "plain diffusers call (defaults)", 1, window, pipe.transformer.config.sample_size
                ),
                prompt=PROMPTS[0],
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(0),
            )
        )
        for seconds, stems in ((10.0, 1), (30.0, 1), (10.0, 4)):
            row = Measurement("engine call (sized latents)", stems, seconds, latent_frames(seconds))
            report(timer.run(row, **engine_call(pipe, seconds, stems, steps, device, dtype)))
    return rows


def measure_engine(pipe: Any, device: str, dtype: Any, steps: int, per_step: float, n_steps: int) -> None:
    """One 10 s stem through ``StableAudioEngine`` (prompting, per-row float32 decode, tempo
    alignment, loudness), built on this in-memory pipeline. Its ``prepare`` recasts the VAE to
    float32, so this runs last."""
    try:
        import torch

        from stemforge.engines.diffusion.loading import prepare
        from stemforge.engines.stable_audio import StableAudioEngine
        from stemforge.music.spec import MusicSpec
        from stemforge.settings import Settings

        loaded = prepare(
            pipe,
            "random stable-audio-open-1.0",
            None,
            torch.device(device),
            dtype,
            StableAudioEngine.keep_float32,
        )
        engine = StableAudioEngine(Settings(), loaded=loaded)
        engine.reconfigure(
            {
                "num_inference_steps": steps,
                "cpu_num_inference_steps": steps,
                "measure_tempo": False,
                "cpu_dtype": {torch.float32: "float32", torch.bfloat16: "bfloat16"}.get(dtype, "float32"),
                "gpu_dtype": "float16",
            }
        )
        spec = MusicSpec(bpm=120.0, duration_seconds=10.0, seed=1, style="funk")
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = engine.generate(spec, ["bass"])
        wall = time.perf_counter() - started
    except Exception as exc:  # the engine is optional here; the pipeline figures stand alone
        print(f"  engine: not measured ({type(exc).__name__}: {exc})")
        return
    info = result.stems[0].info if result.stems else {}
    print(
        f"  StableAudioEngine.generate, 1 stem x 10 s ({info.get('steps', steps)} steps, "
        f"{info.get('windows', '?')} window): {wall:.1f} s measured [load {load:.1f}]; "
        f"EXTRAPOLATED to {n_steps} steps with the sized 10 s s/step: "
        f"{wall + (n_steps - steps) * per_step:.1f} s"
    )


def summarize(rows: list[Measurement], steps: int, measured_steps: int) -> None:
    plain = rows[0]
    print(
        f"\n  EXTRAPOLATED to {steps} steps from {measured_steps} measured "
        f"(overhead + {steps} x s/step); speed-up per stem against the plain call:"
    )
    for row in rows:
        print(
            f"  {row.label:<40} {row.stems} stem(s) x {row.seconds:5.2f} s: "
            f"{row.extrapolated(steps):8.1f} s per call, {row.per_stem(steps):8.1f} s per stem, "
            f"{plain.per_stem(steps) / row.per_stem(steps):5.2f}x "
            f"(per step {plain.per_step / (row.per_step / row.stems):5.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=100, help="steps to extrapolate to (diffusers' default 100)"
    )
    parser.add_argument(
        "--measured-steps", type=int, default=2, help="steps actually run per call (default 2)"
    )
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="CPU dtype (default fp32)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (default 2)")
    parser.add_argument("--quick", action="store_true", help="tiny widths, same window: a smoke run")
    parser.add_argument("--no-engine", action="store_true", help="skip the StableAudioEngine call")
    parser.add_argument("--no-gpu", action="store_true", help="skip the CUDA fp16 measurement")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    pipe = build(args.quick)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    pipe.to(dtype=dtype)
    print(f"\nCPU {args.dtype}, {args.measured_steps} measured steps per call, guidance 7:", flush=True)
    rows = measure(pipe, "cpu", dtype, args.measured_steps)
    summarize(rows, args.steps, args.measured_steps)
    if not args.no_engine:
        measure_engine(pipe, "cpu", dtype, args.measured_steps, rows[1].per_step, args.steps)

    if args.no_gpu or not torch.cuda.is_available():
        print("\nGPU: not measured" + (" (--no-gpu)" if args.no_gpu else " (no CUDA device)"))
        return
    pipe.to("cuda", dtype=torch.float16)
    print(f"\nCUDA fp16 ({torch.cuda.get_device_name()}), {args.measured_steps} measured steps per call:")
    rows = measure(pipe, "cuda", torch.float16, args.measured_steps)
    summarize(rows, args.steps, args.measured_steps)
    if not args.no_engine:
        measure_engine(pipe, "cuda", torch.float16, args.measured_steps, rows[1].per_step, args.steps)


if __name__ == "__main__":
    main()
