"""Render speed of the procedural engine: real-time factor per stem and style, with the time
split into its stages. Prints figures; asserts nothing.

    OMP_NUM_THREADS=1 .venv/bin/python bench/procedural_bench.py [--seconds 30] [--styles pop,rock]

The target is 50x real time per stem on one core (a 30 s stem in 0.6 s; the service budget is
0.5 s). CPU time of this process is reported next to wall time, since a shared machine's wall
clock also counts other people's work.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stemforge.dsp.effects import EffectSettings, apply_effects
from stemforge.dsp.mastering import master_stem
from stemforge.dsp.render import render_part
from stemforge.dsp.soundfont import SoundFontSynth
from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.midi import part_to_midi
from stemforge.music.parts import compose_part
from stemforge.music.plan import SongPlan, build_plan
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.music.styles import STYLES
from stemforge.settings import Settings

T = TypeVar("T")


def _timed(stages: dict[str, float], name: str, work: Callable[[], T]) -> T:
    start = time.process_time()
    result = work()
    stages[name] = stages.get(name, 0.0) + time.process_time() - start
    return result


def _render_stem_in_stages(plan: SongPlan, stem: str, synth: SoundFontSynth | None) -> dict[str, float]:
    """The engine's steps for one stem, each timed in CPU seconds."""
    stages: dict[str, float] = {}
    part = _timed(stages, "compose", lambda: compose_part(plan, stem))
    audio = _timed(stages, "render", lambda: render_part(part, plan.num_frames, SAMPLE_RATE, synth))
    settings = EffectSettings(
        stem, plan.style.reverb, plan.feel.distortion, plan.beat_seconds, plan.style.name == "lo-fi"
    )
    effected = _timed(stages, "effects", lambda: apply_effects(audio, SAMPLE_RATE, settings))
    _timed(stages, "master", lambda: master_stem(effected, SAMPLE_RATE, -14.0, -1.0))
    _timed(stages, "midi", lambda: part_to_midi(part, plan))
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--bpm", type=float, default=120.0)
    args = parser.parse_args()

    load_start = time.perf_counter()
    engine = ProceduralEngine(Settings())
    load_seconds = time.perf_counter() - load_start
    print(f"engine start-up (SoundFont load): {load_seconds:.2f} s, renderer {engine.renderer}")
    synth = engine._synth
    engine.generate(MusicSpec(bpm=args.bpm, duration_seconds=4.0, seed=0), ["drums"])  # warm caches

    header = (
        f"{'style':9} {'stem':7} {'cpu s':>6} {'wall s':>6} {'RTF':>6}   compose render effects master midi"
    )
    print(
        f"\n{args.seconds:.0f} s stems at {args.bpm:.0f} BPM (RTF = audio seconds per CPU second)\n{header}"
    )
    worst = float("inf")
    per_style: dict[str, float] = {}
    for style in args.styles.split(","):
        spec = MusicSpec(bpm=args.bpm, duration_seconds=args.seconds, seed=7, style=style)
        plan = build_plan(spec)
        style_cpu = 0.0
        for stem in STEM_TYPES:
            wall = time.perf_counter()
            stages = _render_stem_in_stages(plan, stem, synth)
            wall = time.perf_counter() - wall
            cpu = sum(stages.values())
            style_cpu += cpu
            rtf = args.seconds / cpu
            worst = min(worst, rtf)
            split = " ".join(f"{stages[k]:.3f}" for k in ("compose", "render", "effects", "master", "midi"))
            print(f"{style:9} {stem:7} {cpu:6.3f} {wall:6.3f} {rtf:6.1f}x  {split}")
        per_style[style] = args.seconds * len(STEM_TYPES) / style_cpu

    wall = time.perf_counter()
    cpu = time.process_time()
    engine.generate(
        MusicSpec(bpm=args.bpm, duration_seconds=args.seconds, seed=7, style="pop"),
        ["drums", "bass", "piano", "vocals"],
    )
    print(
        f"\nengine.generate, four {args.seconds:.0f} s pop stems: cpu {time.process_time() - cpu:.2f} s, "
        f"wall {time.perf_counter() - wall:.2f} s"
    )
    print("mean RTF per style: " + ", ".join(f"{k} {v:.0f}x" for k, v in per_style.items()))
    print(f"slowest stem: {worst:.1f}x real time (target 50x)")


if __name__ == "__main__":
    main()
