"""MusicGen engine throughput on this machine's CPU, against plain transformers in the same run.

The model is the full musicgen-small architecture (t5-base text encoder, 24-layer 1024-wide
decoder, 32 kHz EnCodec) with random weights: the same compute as the real checkpoint, which
cannot be downloaded here. Random weights make random tokens; speed does not depend on them.

    .venv/bin/python bench/musicgen_bench.py                                      # everything
    .venv/bin/python bench/musicgen_bench.py --seconds 2 --levers baseline,int8    # a quick look

OpenMP workers spin 3 ms before sleeping (``GOMP_SPINCOUNT=300000``, as the MusicGen deployment
in ``serve_config.yaml`` sets): with ``OMP_WAIT_POLICY=PASSIVE`` alone they sleep after every
operation and two threads lose a third of their speed to waking up.

Figures are wall seconds for one ``generate`` call (text encoding, decoding, codec, resampling,
loudness, tempo measurement: everything the engine does), and the same per 10 s of audio per stem.
The baseline is ``MusicgenForConditionalGeneration.generate`` in fp32, eager, one request per
stem. Nothing here asserts on time: the machine may be shared, so compare ratios within one run.
"""

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "300000")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LEVERS = ("baseline", "fp32", "int8", "modules", "threads", "kv")
STEMS = ("drums", "bass", "piano", "guitar", "synth", "vocals", "other")


@dataclass
class Row:
    variant: str
    stems: int
    seconds: float
    wall: float

    def per_ten_seconds_per_stem(self) -> float:
        return self.wall / self.stems * 10.0 / self.seconds


def build_checkpoint(folder: Path) -> Path:
    """Save random-weight musicgen-small to ``folder`` once; later runs reuse it."""
    if (folder / "config.json").is_file():
        return folder
    from tests.support.tiny_musicgen import build_model, build_tokenizer, musicgen_small_configs

    started = time.monotonic()
    model = build_model(musicgen_small_configs())
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    print(
        f"built and saved random musicgen-small to {folder} in {time.monotonic() - started:.0f} s", flush=True
    )
    return folder


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def bench_baseline(folder: Path, seconds: float, threads: int) -> float:
    """Plain transformers: fp32, eager, one stem per generate call."""
    import torch
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    torch.set_num_threads(threads)
    model = MusicgenForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(["solo drum kit groove, drums only. bpm: 120"], return_tensors="pt")
    tokens = round(seconds * 50) + 3  # 50 frames per second, plus the 3-step delay pattern
    with torch.inference_mode():
        return timed(
            lambda: model.generate(
                **inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=tokens
            )
        )


def bench_engine(
    folder: Path, seconds: float, stems: int, user_config: dict[str, object]
) -> tuple[float, float]:
    """Wall seconds of one engine call for 1 stem, then for ``stems`` stems in one request."""
    from stemforge.engines.musicgen import MusicGenEngine
    from stemforge.music.spec import MusicSpec
    from stemforge.settings import Settings

    engine = MusicGenEngine(Settings(musicgen_model=str(folder)))
    engine.reconfigure(user_config)
    spec = MusicSpec(bpm=120.0, duration_seconds=seconds, seed=1, style="funk")
    engine.generate(
        MusicSpec(bpm=120.0, duration_seconds=0.5, seed=0), ["drums"]
    )  # warm-up: librosa, allocators
    one = timed(lambda: engine.generate(spec, ["drums"]))
    many = timed(lambda: engine.generate(spec, list(STEMS[:stems])))
    return one, many


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per stem (default 10)")
    parser.add_argument("--stems", type=int, default=4, help="stems in the batched request (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the engine (default 2)")
    parser.add_argument("--baseline-threads", type=int, default=1, help="torch threads for the baseline")
    parser.add_argument(
        "--levers",
        default=",".join(LEVERS),
        help=f"comma-separated subset of {','.join(LEVERS)} (default: all)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=Path(tempfile.gettempdir()) / "stemforge-bench-musicgen-small",
        help="folder for the random musicgen-small checkpoint (reused between runs)",
    )
    args = parser.parse_args()
    levers = [lever.strip() for lever in args.levers.split(",") if lever.strip()]
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown:
        parser.error(f"unknown levers {unknown}; choose from {LEVERS}")

    import torch

    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
        f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}, "
        f"load average {os.getloadavg()[0]:.1f}; {args.seconds:g} s of audio per stem",
        flush=True,
    )
    folder = build_checkpoint(args.checkpoint)
    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        print(
            f"  {row.variant:<44} {row.stems} stem(s): {row.wall:7.1f} s wall, "
            f"{row.per_ten_seconds_per_stem():6.1f} s per 10 s of audio per stem",
            flush=True,
        )

    if "baseline" in levers:
        wall = bench_baseline(folder, args.seconds, args.baseline_threads)
        report(
            Row(
                f"baseline: transformers generate fp32 ({args.baseline_threads} thread)",
                1,
                args.seconds,
                wall,
            )
        )
        report(
            Row("baseline: one request per stem (sequential)", args.stems, args.seconds, wall * args.stems)
        )

    variants: list[tuple[str, dict[str, object]]] = []
    if "fp32" in levers:
        variants.append(
            ("engine fp32 (batched stems, own loop)", {"cpu_int8": False, "num_threads": args.threads})
        )
    if "int8" in levers:
        variants.append(("engine int8, lean decoder", {"cpu_int8": True, "num_threads": args.threads}))
    if "modules" in levers:
        variants.append(
            (
                "engine int8, transformers' modules",
                {"cpu_int8": True, "num_threads": args.threads, "lean_decoder": False},
            )
        )
    if "threads" in levers:
        variants.append(("engine int8, 1 thread", {"cpu_int8": True, "num_threads": 1}))
    if "kv" in levers:
        variants.append(
            (
                "engine int8, transformers' dynamic kv cache",
                {
                    "cpu_int8": True,
                    "num_threads": args.threads,
                    "kv_cache": "dynamic",
                    "lean_decoder": False,
                },
            )
        )
    for name, user_config in variants:
        threads = user_config["num_threads"]
        print(f"{name}: load average {os.getloadavg()[0]:.1f}", flush=True)
        one, many = bench_engine(folder, args.seconds, args.stems, user_config)
        report(Row(f"{name} ({threads} thr)", 1, args.seconds, one))
        report(Row(f"{name} ({threads} thr)", args.stems, args.seconds, many))

    baseline = {row.stems: row.wall for row in rows if row.variant.startswith("baseline")}
    print(f"\nsummary ({args.seconds:g} s per stem; speed-up against the baseline with as many stems):")
    for row in rows:
        ratio = f"{baseline[row.stems] / row.wall:5.2f}x" if row.stems in baseline else "   - "
        print(f"  {row.variant:<44} {row.stems} stem(s) {row.wall:7.1f} s  {ratio}")


if __name__ == "__main__":
    main()
