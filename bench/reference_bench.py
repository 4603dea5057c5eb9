"""How well a reference is heard and played along with: the analysis's accuracy on tracks of known
tempo, key, chords and first downbeat (procedural bands of several styles, each starting a
little way in), then the procedural accompaniment of each, measured the same way against the
reference, and the analysis's run time.

Prints per case: tempo error, key, chords per bar right, downbeat error; then the accompaniment's
tempo against the reference's, its chords against the reference's per bar, and the difference
of the two first downbeats.
"""

import argparse
import time
from dataclasses import dataclass

import numpy as np

from stemforge.api.requests import resolve_spec
from stemforge.api.schemas import GenerateRequest
from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from stemforge.reference.analysis import analyse_reference
from stemforge.reference.intake import ReferenceIntake
from stemforge.settings import Settings


@dataclass(frozen=True)
class Case:
    style: str
    bpm: float
    key: str
    chords: tuple[str, ...]
    lead_in: float
    meter: str = "4/4"


CASES = (
    Case("pop", 84.0, "A minor", ("Am", "F", "C", "G"), 0.37),
    Case("rock", 97.0, "Eb major", ("Eb", "Ab", "Bb", "Cm"), 0.6),
    Case("house", 124.0, "C major", ("C", "Am", "F", "G"), 0.25),
    Case("funk", 108.0, "F# minor", ("F#m", "D", "A", "E"), 1.1),
    Case("ballad", 72.0, "D major", ("D", "G", "A", "D"), 0.0),
    Case("pop", 150.0, "G major", ("G", "C", "D", "G"), 0.4, "3/4"),
)
BEATS = {"4/4": 4, "3/4": 3}


def render(case: Case, seconds: float, stems: list[str], engine: ProceduralEngine) -> np.ndarray:
    spec = MusicSpec(
        bpm=case.bpm,
        duration_seconds=seconds,
        seed=21,
        style=case.style,
        chord_progression=case.chords,
        time_signature=case.meter,
    )
    band = sum(stem.audio for stem in engine.generate(spec, stems).stems)
    lead = np.zeros((round(case.lead_in * SAMPLE_RATE), 2), dtype=np.float32)
    return np.concatenate([lead, np.asarray(band, dtype=np.float32)])


def agreement(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    bars = min(len(a), len(b))
    return sum(x == y for x, y in zip(a[:bars], b[:bars], strict=True)) / bars if bars else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    engine = ProceduralEngine(Settings())
    analyse_reference(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)  # librosa's JIT, not timed
    print("reference analysis (procedural bands: drums, bass, piano; ending bar not counted)")
    for case in CASES:
        track = render(case, args.seconds, ["drums", "bass", "piano"], engine)
        started = time.perf_counter()
        heard = analyse_reference(track, SAMPLE_RATE, BEATS[case.meter])
        took = time.perf_counter() - started
        bars = len(heard.chords) - 1
        truth = tuple(case.chords[i % len(case.chords)] for i in range(bars))
        tempo_error = (heard.bpm - case.bpm) / case.bpm * 100 if heard.bpm else float("nan")
        downbeat_error = ((heard.first_downbeat_seconds or 0.0) - case.lead_in) * 1000
        key = f"key {heard.key or '-':<9} {'ok' if heard.key == case.key else 'WRONG'}"
        print(
            f"  {case.style:<6} {case.bpm:5.0f} BPM {case.meter} {case.key:<9} | "
            f"tempo {tempo_error:+6.3f} % | {key} | "
            f"chords {agreement(heard.chords, truth):5.0%} of {bars} bars | "
            f"downbeat {downbeat_error:+5.1f} ms | {took:4.2f} s"
        )
        # The accompaniment, as the service resolves it: the reference's tempo, chords, downbeat.
        intake = ReferenceIntake.of_audio(heard, "accompany", None, "WAV")
        request = GenerateRequest.model_validate(
            {
                "generation_request_id": "bench",
                "audio_file_id": "bench",
                "target_stems": ["drums", "bass", "guitar"],
                "parameters": {
                    "reference_audio": "https://example.com/t.wav",
                    "random_seed": 5,
                    "style": case.style,
                    "time_signature": case.meter,
                },
            }
        )
        spec = resolve_spec(request, reference=intake)
        stems = engine.generate(spec, ["drums", "bass", "guitar"]).stems
        played = analyse_reference(sum(stem.audio for stem in stems), SAMPLE_RATE, BEATS[case.meter])
        if played.bpm is None or heard.bpm is None:
            print("    accompaniment: no tempo heard")
            continue
        offset = ((played.first_downbeat_seconds or 0.0) - (heard.first_downbeat_seconds or 0.0)) * 1000
        tempo = (played.bpm - heard.bpm) / heard.bpm * 100
        print(
            f"    accompaniment (drums, bass, guitar): tempo {tempo:+6.3f} % of the reference's | chords "
            f"{agreement(played.chords, heard.chords):5.0%} of the reference's bars | "
            f"first downbeat {offset:+5.1f} ms from the reference's"
        )
    long_track = render(CASES[0], 60.0, ["drums", "bass", "piano"], engine)
    started = time.perf_counter()
    analyse_reference(long_track, SAMPLE_RATE)
    print(f"analysis of a 60 s track: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
