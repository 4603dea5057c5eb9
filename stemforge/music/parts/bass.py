"""Bass: the chord's root (or slash bass) on every downbeat, then the style's figure: fifths and
approach notes, walking lines, octaves, syncopated funk, sub 808 notes."""

import numpy as np

from stemforge.music.chords import Chord
from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import (
    approach_pitch,
    bass_pitch,
    fifth_interval,
    section_velocity,
    third_interval,
)
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument

LOW, HIGH = 28, 40  # E1 .. E2 for the root of each bar

# (beat, length in beats, degree): R root/slash bass, 5 fifth, 8 octave, 3 third, A approach to next bar.
Figure = list[tuple[float, float, str]]
FIGURES: dict[str, tuple[Figure, Figure]] = {  # (plain, varied)
    "pop": (
        [(0, 1.5, "R"), (1.5, 0.5, "R"), (2, 1.0, "5"), (3, 1.0, "R")],
        [(0, 1.5, "R"), (1.5, 0.5, "R"), (2, 1.0, "5"), (3, 0.5, "8"), (3.5, 0.5, "A")],
    ),
    "eighths": (
        [(i * 0.5, 0.45, "R") for i in range(8)],
        [(i * 0.5, 0.45, "R") for i in range(6)] + [(3.0, 0.45, "5"), (3.5, 0.45, "A")],
    ),
    "chug": (
        [(i * 0.25, 0.22, "R") for i in range(16)],
        [(i * 0.25, 0.22, "R") for i in range(12)] + [(3.0, 0.45, "5"), (3.5, 0.45, "A")],
    ),
    "ballad": (
        [(0, 2.0, "R"), (2, 2.0, "5")],
        [(0, 2.0, "R"), (2, 1.0, "5"), (3, 1.0, "A")],
    ),
    "walking": (
        [(0, 1, "R"), (1, 1, "3"), (2, 1, "5"), (3, 1, "A")],
        [(0, 1, "R"), (1, 1, "5"), (2, 1, "8"), (2.66, 0.34, "5"), (3, 1, "A")],
    ),
    "octave": (
        [(i * 0.5, 0.4, "R" if i % 2 == 0 else "8") for i in range(8)],
        [(i * 0.5, 0.4, "R" if i % 2 == 0 else "8") for i in range(6)] + [(3.0, 0.4, "5"), (3.5, 0.4, "A")],
    ),
    "offbeat": (
        [(0, 0.4, "R"), (0.5, 0.4, "R"), (1.5, 0.4, "R"), (2.5, 0.4, "8"), (3.5, 0.4, "R")],
        [(0, 0.4, "R"), (0.5, 0.4, "R"), (1.5, 0.4, "5"), (2.5, 0.4, "8"), (3.25, 0.2, "5"), (3.5, 0.4, "A")],
    ),
    "funk": (
        [
            (0, 0.4, "R"),
            (0.75, 0.2, "8"),
            (1.5, 0.25, "R"),
            (2, 0.4, "R"),
            (2.75, 0.2, "7"),
            (3, 0.25, "8"),
            (3.5, 0.4, "5"),
        ],
        [
            (0, 0.4, "R"),
            (0.5, 0.2, "R"),
            (0.75, 0.2, "8"),
            (1.5, 0.25, "3"),
            (2, 0.4, "R"),
            (2.75, 0.2, "7"),
            (3, 0.25, "8"),
            (3.25, 0.2, "5"),
            (3.75, 0.2, "A"),
        ],
    ),
    "reggae": (
        [(0, 0.75, "R"), (1.5, 0.5, "5"), (2, 0.75, "8"), (3, 0.5, "5"), (3.5, 0.5, "3")],
        [(0, 0.75, "R"), (1.5, 0.5, "5"), (2, 0.5, "8"), (2.5, 0.5, "5"), (3, 0.5, "3"), (3.5, 0.5, "A")],
    ),
    "sub808": (
        [(0, 1.5, "R"), (1.5, 1.0, "R"), (2.5, 1.5, "R")],
        [(0, 1.5, "R"), (1.5, 0.75, "R"), (2.5, 1.0, "8"), (3.5, 0.5, "A")],
    ),
}
_WALTZ: tuple[Figure, Figure] = (
    [(0, 1, "R"), (1, 1, "5"), (2, 1, "8")],
    [(0, 1, "R"), (1, 1, "5"), (2, 1, "A")],
)


def _degree_pitch(degree: str, chord: Chord, root: int, next_root: int, previous: int, plan: SongPlan) -> int:
    if degree == "R":
        return root
    if degree == "5":
        return (
            root - 12 + fifth_interval(chord)
            if root - 12 + fifth_interval(chord) >= LOW - 2
            else (root + fifth_interval(chord))
        )
    if degree == "8":
        return root + 12
    if degree == "3":
        third = third_interval(chord)
        return root + (third if third is not None else fifth_interval(chord))
    if degree == "7":
        for interval in (10, 11, 9):
            if interval in chord.intervals:
                return root + interval
        return root + 12
    chromatic = plan.style.bass == "walking" or plan.style.name in ("funk", "jazz", "blues")
    return approach_pitch(next_root, previous, plan.key.scale, chromatic)


def compose_bass(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    part = Part("bass", instrument)
    plain, varied = _WALTZ if plan.beats_per_bar == 3 else FIGURES[plan.style.bass]
    human = Humanizer(rng, plan.style.humanize_ms * 0.7, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    beat_seconds = plan.beat_seconds
    previous = bass_pitch(plan.chord_at(0), LOW, HIGH)
    for bar in range(plan.bars):
        chord = plan.chord_at(bar)
        root = bass_pitch(chord, LOW, HIGH)
        next_root = bass_pitch(plan.chord_at(bar + 1), LOW, HIGH)
        if bar == plan.ending_bar:
            part.add(plan.time_at(bar, 0.0), plan.end_seconds - plan.time_at(bar, 0.0), root, 100)
            continue
        section = plan.section_of(bar)
        if section.name == "intro" and plan.style.bass not in ("offbeat", "octave"):
            figure: Figure = [(0, float(plan.beats_per_bar), "R")]
        else:
            use_varied = rng.random() < chance or (plan.is_section_end(bar) and plan.temperature > 0)
            figure = varied if use_varied else plain
            if use_varied:
                part.variations += 1
        if plan.feel.density < 0.8 and len(figure) > 3:
            figure = [note for note in figure if note[0] == int(note[0])]
        for beat, length, degree in figure:
            pitch = _degree_pitch(degree, chord, root, next_root, previous, plan)
            start = plan.time_at(bar, beat)
            # The downbeat stays on the grid: the bass and kick lock the groove together.
            if beat > 0:
                start = human.time(start)
            velocity = section_velocity(plan, bar, 100 if beat == int(beat) else 85)
            part.add(start, length * beat_seconds * 0.95, pitch, human.velocity(velocity))
            previous = pitch
    return part
