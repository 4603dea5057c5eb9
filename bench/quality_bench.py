"""What the quality analysis costs: per stem, and how much later the callback payload is ready
for a whole request (the uploader's ``store`` with the analysis on, against off). Prints
figures; asserts nothing.

    OMP_NUM_THREADS=1 .venv/bin/python bench/quality_bench.py [--seconds 10,30] [--stems 4] [--runs 3]

Stems are the procedural engine's (pop, 97 BPM), stored on local disk in a temporary folder.
CPU time of this process is reported next to wall time: a shared machine's wall clock also
counts other people's work.
"""

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stemforge.engines.base import EngineResult
from stemforge.engines.procedural import ProceduralEngine
from stemforge.jobs.publisher import ResultPublisher
from stemforge.jobs.ticket import JobTicket
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from stemforge.quality.assessment import warm_up
from stemforge.quality.bounds import QualityConfig
from stemforge.quality.report import RequestContext, analyse_stem
from stemforge.settings import Settings
from stemforge.storage.local import LocalDiskStorage

STEMS = ("drums", "bass", "guitar", "piano", "synth", "vocals", "other")


def _render(seconds: float, stems: tuple[str, ...]) -> tuple[MusicSpec, EngineResult]:
    engine = ProceduralEngine(Settings())
    engine.reconfigure({})
    spec = MusicSpec(
        bpm=97.0, duration_seconds=seconds, seed=5, style="pop", chord_progression=("C", "G", "Am", "F")
    )
    return spec, engine.generate(spec, stems)


def _ticket(spec: MusicSpec, stems: tuple[str, ...], run: int) -> JobTicket:
    return JobTicket(
        generation_request_id=f"bench-{run}",
        audio_file_id="bench",
        callback_url=None,
        accepted_at=time.time(),
        stems=stems,
        routes={"procedural": stems},
        spec=spec,
        parameters={"target_bpm": spec.bpm, "random_seed": spec.seed},
    )


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def per_stem(seconds: float, runs: int) -> None:
    spec, result = _render(seconds, STEMS)
    context = RequestContext.from_parameters(
        {"target_bpm": spec.bpm, **result.applied}, spec.bpm, SAMPLE_RATE
    )
    print(f"\nper stem, {seconds:g} s (wall / CPU, median of {runs}):")
    for stem in result.stems:
        analyse = functools.partial(analyse_stem, stem.stem_type, stem.audio, context)
        times = [_timed(analyse) for _ in range(runs)]
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"  {stem.stem_type:7s} {wall * 1000:7.0f} ms / {cpu * 1000:7.0f} ms")


def per_request(seconds: float, count: int, runs: int) -> None:
    stems = STEMS[:count]
    spec, result = _render(seconds, stems)
    figures: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as root:
        storage = LocalDiskStorage(Path(root), "audio-files", "http://bench")
        for label, config in (("off", QualityConfig(enabled=False)), ("on", QualityConfig())):
            publisher = ResultPublisher(storage, quality=config)
            times = []
            for run in range(runs):
                ticket = _ticket(spec, stems, run)
                times.append(_timed(functools.partial(asyncio.run, publisher.store(ticket, [result]))))
            figures[label] = (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))
    (off, off_cpu), (on, on_cpu) = figures["off"], figures["on"]
    print(
        f"\nrequest of {count} stems x {seconds:g} s: store {off:.2f} s without analysis, {on:.2f} s with "
        f"it: the callback is {on - off:.2f} s later ({(on - off) / count:.2f} s per stem); "
        f"CPU {off_cpu:.2f} s / {on_cpu:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", default="10,30")
    parser.add_argument("--stems", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    warm_up(SAMPLE_RATE)
    print(
        f"warm-up (librosa import and JIT, once per uploader replica): {time.perf_counter() - started:.2f} s"
    )
    for seconds in (float(s) for s in args.seconds.split(",")):
        per_stem(seconds, args.runs)
        per_request(seconds, args.stems, args.runs)


if __name__ == "__main__":
    main()
