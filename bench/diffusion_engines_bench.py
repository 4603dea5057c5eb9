"""AudioLDM 2 (music) and Riffusion cost per denoising step on this machine, against each pipeline's
plain default call in the same run.

Both pipelines are full-size architectures with random weights, built in memory (the checkpoints
cannot be downloaded here); speed does not depend on the weights:

* AudioLDM 2 music (cvssp/audioldm2-music): CLAP (Roberta-base text branch + HTSAT-base audio
  branch), Flan-T5-large encoder, GPT-2 base generating 8 states, the 350M AudioLDM 2 UNet, the mel
  VAE and a HiFi-GAN vocoder at 16 kHz (``tests/support/tiny_audioldm2.py`` for the numbers);
* Riffusion v1 = Stable Diffusion v1.5: 860M UNet, 84M VAE, CLIP ViT-L/14 text encoder, PNDM.

    .venv/bin/python bench/diffusion_engines_bench.py --quick      # tiny widths, same shapes: a smoke run
    .venv/bin/python bench/diffusion_engines_bench.py              # full size, fp32, 2 measured steps
    .venv/bin/python bench/diffusion_engines_bench.py --measured-steps 1 --batch audioldm2

What is measured (each call runs ``--measured-steps`` denoising steps with each pipeline's default
guidance, so classifier-free guidance doubles the UNet batch):

* AudioLDM 2: the plain call with diffusers' defaults (10.24 s, 200 DDIM steps, guidance 3.5), and
  the call as an engine makes it for 10 s per stem (``audio_length_in_s=10``: latents (n, 8, 250, 16),
  one generator and latents per stem, each stem's embeddings encoded alone so rows do not depend on
  their batch mates), for 1 stem and a batch of 4. transformers 5 broke the pipeline's GPT-2 loop
  (diffusers #12630); ``enable_language_model_generation`` restores it here.
* Riffusion: the plain call with diffusers' defaults (512 x 512 = 5.12 s, 50 steps, guidance 7.5),
  and 10 s per stem as one 1000-pixel-wide image (latents (n, 4, 64, 125)) or as two 512-pixel tiles
  (10.24 s) in one batch, for 1 stem and (one image each) a batch of 4. The spectrogram-to-audio
  inversion is the engine's own code and is not timed here.

Each UNet evaluation is timed (PNDM makes ``steps + 1`` of them, DDIM ``steps``). Seconds for the
full step count are EXTRAPOLATED: measured overhead (text encoding, GPT-2, VAE decode, vocoder) +
evaluations x mean seconds per evaluation. Nothing asserts on time: the machine may be shared, so the
load average is printed next to each figure; compare ratios within one run. With CUDA, fp16 on the
GPU is measured too.
"""

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
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
NEGATIVE = "low quality, noise"
TEN_SECONDS = 10.0


@dataclass
class Measurement:
    label: str
    stems: int
    seconds: float  # audio per stem the call makes
    latents: str  # the latent shape denoised
    evaluations_for: Callable[[int], int]  # UNet evaluations for a number of steps
    wall: float = 0.0
    evaluations: list[float] = field(default_factory=list)  # seconds of each UNet evaluation
    encode: float = 0.0  # text encoding done before the call (engine rows)
    decode: float = 0.0  # VAE decode
    vocoder: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0

    @property
    def per_evaluation(self) -> float:
        return sum(self.evaluations) / len(self.evaluations)

    @property
    def overhead(self) -> float:
        """Everything but the UNet: text encoding, GPT-2, scheduler, VAE decode, vocoder."""
        return self.wall - sum(self.evaluations)

    def extrapolated(self, steps: int) -> float:
        return self.overhead + self.evaluations_for(steps) * self.per_evaluation

    def per_ten_seconds_per_stem(self, steps: int) -> float:
        return self.extrapolated(steps) / self.stems * TEN_SECONDS / self.seconds


def evaluations_counter(scheduler: Any) -> Callable[[int], int]:
    """UNet evaluations the pipeline makes for ``steps`` steps with (a copy of) ``scheduler``."""
    probe = type(scheduler).from_config(scheduler.config)

    def count(steps: int) -> int:
        probe.set_timesteps(steps)
        return len(probe.timesteps)

    return count


class Timer:
    """Times each UNet evaluation (forward hooks), the VAE decode and, for AudioLDM 2, the vocoder."""

    def __init__(self, pipe: Any, device: str) -> None:
        self.pipe = pipe
        self.device = device
        self.evaluations: list[float] = []
        self.decode = 0.0
        self.vocoder = 0.0
        self._started = 0.0
        self._decode = pipe.vae.decode
        pipe.unet.register_forward_pre_hook(self._unet_start)
        pipe.unet.register_forward_hook(self._unet_end)
        vocoder = getattr(pipe, "vocoder", None)
        if vocoder is not None:
            vocoder.register_forward_pre_hook(self._vocoder_start)
            vocoder.register_forward_hook(self._vocoder_end)

    def now(self) -> float:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def _unet_start(self, module: Any, args: Any) -> None:
        self._started = self.now()

    def _unet_end(self, module: Any, args: Any, output: Any) -> None:
        self.evaluations.append(self.now() - self._started)

    def _vocoder_start(self, module: Any, args: Any) -> None:
        self._vocoder_started = self.now()

    def _vocoder_end(self, module: Any, args: Any, output: Any) -> None:
        self.vocoder = self.now() - self._vocoder_started

    def _decode_timed(self, *args: Any, **kwargs: Any) -> Any:
        started = self.now()
        result = self._decode(*args, **kwargs)
        self.decode = self.now() - started
        return result

    def run(
        self, row: Measurement, prepare: Callable[[], dict[str, Any]] | None = None, **call: Any
    ) -> Measurement:
        """One pipeline call; ``prepare`` (timed as ``encode``, inside ``wall``) makes more arguments."""
        self.evaluations, self.decode, self.vocoder = [], 0.0, 0.0
        self.pipe.vae.decode = self._decode_timed
        row.load_before = os.getloadavg()[0]
        started = self.now()
        try:
            if prepare is not None:
                call.update(prepare())
                row.encode = self.now() - started
            self.pipe(**call)
        finally:
            self.pipe.vae.decode = self._decode
        row.wall = self.now() - started
        row.load_after = os.getloadavg()[0]
        row.evaluations, row.decode, row.vocoder = self.evaluations, self.decode, self.vocoder
        return row


def report(row: Measurement) -> None:
    extra = f", vocoder {row.vocoder:6.2f} s" if row.vocoder else ""
    encode = f", encode {row.encode:5.2f} s" if row.encode else ""
    print(
        f"  {row.label:<44} {row.stems} stem(s) x {row.seconds:5.2f} s, latents {row.latents:<16}: "
        f"{row.per_evaluation:7.2f} s/UNet eval x {len(row.evaluations)}{encode}, decode {row.decode:6.2f} s"
        f"{extra}, call {row.wall:7.1f} s [load {row.load_before:.1f}->{row.load_after:.1f}]",
        flush=True,
    )


def summarize(name: str, rows: list[Measurement], steps: int, measured_steps: int) -> None:
    plain = rows[0]
    print(
        f"\n  {name}: EXTRAPOLATED to {steps} steps from {measured_steps} measured "
        f"(overhead + UNet evaluations x s/eval); per 10 s per stem against the plain call:"
    )
    baseline = plain.per_ten_seconds_per_stem(steps)
    for row in rows:
        call, ten = row.extrapolated(steps), row.per_ten_seconds_per_stem(steps)
        print(
            f"  {row.label:<44} {row.stems} stem(s) x {row.seconds:5.2f} s: {call:8.1f} s per call, "
            f"{call / row.stems:8.1f} s per stem, {ten:8.1f} s per 10 s per stem ({baseline / ten:5.2f}x)",
            flush=True,
        )


def parameters(pipe: Any, names: tuple[str, ...]) -> str:
    return ", ".join(
        f"{name} {sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6:.1f}M" for name in names
    )


# --- AudioLDM 2 ---------------------------------------------------------------------------------


def build_audioldm2(quick: bool) -> Any:
    from tests.support import tiny_audioldm2 as a2

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = a2.build_roberta_tokenizer(Path(scratch))
    tokenizer_2 = a2.build_t5_tokenizer()
    # Token ids stay far below the real vocabularies; sequence lengths are the real ones (CLAP pads
    # to 512, T5 to the prompt, GPT-2 generates 8), except that T5 here spells most words out.
    vocab = {"clap_vocab_size": len(tokenizer), "t5_vocab_size": len(tokenizer_2)} if quick else {}
    started = time.perf_counter()
    pipe = a2.build_pipeline(a2.audioldm2_music_configs(tiny=quick, **vocab), tokenizer, tokenizer_2)
    pipe.set_progress_bar_config(disable=True)
    a2.enable_language_model_generation(pipe)
    names = ("unet", "vae", "vocoder", "text_encoder", "text_encoder_2", "language_model", "projection_model")
    size = "TINY" if quick else "full-size"
    print(
        f"built {size} random AudioLDM 2 music in {time.perf_counter() - started:.0f} s: "
        f"{parameters(pipe, names)} parameters",
        flush=True,
    )
    return pipe


def measure_audioldm2(pipe: Any, device: str, dtype: Any, steps: int, batch: bool) -> list[Measurement]:
    import torch

    from tests.support import tiny_audioldm2 as a2

    timer = Timer(pipe, device)
    count = evaluations_counter(pipe.scheduler)
    rows: list[Measurement] = []
    default_seconds = pipe.unet.config.sample_size * pipe.vae_scale_factor * a2.HOP_LENGTH / a2.SAMPLE_RATE

    def engine(stems: int) -> Measurement:
        seeds = list(range(1, stems + 1))
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(stems)]
        latents = torch.cat(
            [
                torch.randn(a2.latent_shape(TEN_SECONDS), generator=torch.Generator().manual_seed(s))
                for s in seeds
            ]
        ).to(device=device, dtype=dtype)
        row = Measurement(
            "engine call (own embeddings, latents)",
            stems,
            TEN_SECONDS,
            _shape(a2.latent_shape(TEN_SECONDS, stems)),
            count,
        )
        return timer.run(
            row,
            prepare=lambda: a2.per_row_embeddings(pipe, prompts, [NEGATIVE] * stems),
            num_inference_steps=steps,
            audio_length_in_s=TEN_SECONDS,
            latents=latents,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
        )

    with torch.inference_mode():
        timer.run(
            Measurement("warm-up", 1, 1.0, "", count),
            prompt=PROMPTS[0],
            num_inference_steps=1,
            audio_length_in_s=1.0,
        )
        plain = Measurement(
            "plain diffusers call (defaults)",
            1,
            default_seconds,
            _shape(a2.latent_shape(default_seconds)),
            count,
        )
        rows.append(
            timer.run(
                plain,
                prompt=PROMPTS[0],
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(0),
            )
        )
        report(rows[-1])
        for stems in (1, 4) if batch else (1,):
            rows.append(engine(stems))
            report(rows[-1])
    return rows


# --- Riffusion ----------------------------------------------------------------------------------


def build_riffusion(quick: bool) -> Any:
    from tests.support import tiny_riffusion as rf

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = rf.build_clip_tokenizer(Path(scratch))
    started = time.perf_counter()
    configs = rf.riffusion_configs(tiny=quick, **({"vocab_size": len(tokenizer)} if quick else {}))
    pipe = rf.build_pipeline(configs, tokenizer)
    pipe.set_progress_bar_config(disable=True)
    size = "TINY" if quick else "full-size"
    print(
        f"built {size} random Riffusion (SD v1.5) in {time.perf_counter() - started:.0f} s: "
        f"{parameters(pipe, ('unet', 'vae', 'text_encoder'))} parameters",
        flush=True,
    )
    return pipe


def measure_riffusion(pipe: Any, device: str, dtype: Any, steps: int, batch: bool) -> list[Measurement]:
    import torch

    from tests.support import tiny_riffusion as rf

    timer = Timer(pipe, device)
    count = evaluations_counter(pipe.scheduler)
    rows: list[Measurement] = []
    ten_seconds_wide = (
        round(TEN_SECONDS * rf.PIXELS_PER_SECOND / rf.VAE_SCALE_FACTOR) * rf.VAE_SCALE_FACTOR
    )  # 1000

    def engine(label: str, images: int, width: int, stems: int) -> Measurement:
        seeds = list(range(1, images + 1))
        latents = torch.cat(
            [torch.randn(rf.latent_shape(width), generator=torch.Generator().manual_seed(s)) for s in seeds]
        ).to(device=device, dtype=dtype)
        seconds = images * width / rf.PIXELS_PER_SECOND / stems
        row = Measurement(label, stems, seconds, _shape(rf.latent_shape(width, images)), count)
        return timer.run(
            row,
            prompt=[PROMPTS[i % len(PROMPTS)] for i in range(images)],
            negative_prompt=[NEGATIVE] * images,
            height=rf.HEIGHT,
            width=width,
            num_inference_steps=steps,
            latents=latents,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            output_type="np",
        )

    with torch.inference_mode():
        timer.run(
            Measurement("warm-up", 1, 1.0, "", count), prompt=PROMPTS[0], width=256, num_inference_steps=1
        )
        plain = Measurement("plain diffusers call (defaults)", 1, 5.12, _shape(rf.latent_shape(512)), count)
        rows.append(
            timer.run(
                plain,
                prompt=PROMPTS[0],
                num_inference_steps=steps,
                output_type="np",
                generator=torch.Generator().manual_seed(0),
            )
        )
        report(rows[-1])
        rows.append(engine(f"engine call, one {ten_seconds_wide}-px image", 1, ten_seconds_wide, 1))
        report(rows[-1])
        rows.append(engine("engine call, two 512-px tiles in a batch", 2, 512, 1))
        report(rows[-1])
        if batch:
            rows.append(engine(f"engine call, 4 stems of {ten_seconds_wide} px", 4, ten_seconds_wide, 4))
            report(rows[-1])
    return rows


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def run_engine(
    key: str,
    name: str,
    build: Callable[[bool], Any],
    measure: Callable[..., list[Measurement]],
    args: argparse.Namespace,
    steps: int,
    cuda: bool,
) -> None:
    import torch

    pipe = build(args.quick)
    print(f"\n{name}, CPU fp32, {args.measured_steps} measured steps per call:", flush=True)
    batch = args.batch in ("both", key)
    rows = measure(pipe, "cpu", torch.float32, args.measured_steps, batch)
    summarize(name, rows, steps, args.measured_steps)
    if cuda:
        pipe.to("cuda", torch.float16)
        gpu = torch.cuda.get_device_name()
        print(f"\n{name}, CUDA fp16 ({gpu}), {args.measured_steps} measured steps per call:")
        rows = measure(pipe, "cuda", torch.float16, args.measured_steps, batch)
        summarize(name, rows, steps, args.measured_steps)
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    del pipe
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny widths, same shapes: a smoke run")
    parser.add_argument("--only", choices=("audioldm2", "riffusion"), help="measure one engine")
    parser.add_argument(
        "--measured-steps", type=int, default=2, help="steps actually run per call (default 2)"
    )
    parser.add_argument(
        "--audioldm2-steps", type=int, default=200, help="steps to extrapolate to (default 200)"
    )
    parser.add_argument(
        "--riffusion-steps", type=int, default=50, help="steps to extrapolate to (default 50)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads on the CPU (default 2)")
    parser.add_argument(
        "--batch",
        choices=("both", "audioldm2", "riffusion", "none"),
        default="both",
        help="which engines' 4-stem batch to measure (default both; Riffusion's is the costliest row)",
    )
    parser.add_argument("--no-gpu", action="store_true", help="skip the CUDA fp16 measurement")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    cuda = torch.cuda.is_available() and not args.no_gpu
    if args.only in (None, "audioldm2"):
        run_engine(
            "audioldm2", "AudioLDM 2", build_audioldm2, measure_audioldm2, args, args.audioldm2_steps, cuda
        )
    if args.only in (None, "riffusion"):
        print()
        run_engine(
            "riffusion", "Riffusion", build_riffusion, measure_riffusion, args, args.riffusion_steps, cuda
        )
    if not cuda:
        print("\nGPU: not measured" + (" (--no-gpu)" if args.no_gpu else " (no CUDA device)"))


if __name__ == "__main__":
    main()
