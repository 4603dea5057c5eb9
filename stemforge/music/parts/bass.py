"""Bass: the chord's bass note (the slash note of a slash chord) on every downbeat, then the
style's figure: fifths and approach notes, walking lines, octaves, syncopated funk, sub 808s.

Every note is placed in the octave nearest the note before it (inside the bass register), so a
line moves by steps and small skips; an approach note is a step from the next downbeat in that
same octave. A slash chord's other tones (third, fifth, seventh) come from its root: G/B is B in
the bass with G and D above it, never F#."""

import numpy as np

from stemforge.music.chords import Chord
from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import approach_pitch, fifth_interval, section_velocity, third_interval
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument
from stemforge.music.theory import nearest_pitch

LOW, HIGH = 28, 40  # E1 .. E2: where the downbeats sit (the line may climb above it)
_CENTRE = 34.0

# (beat, length in beats, degree): R root/slash bass, 5 fifth, 8 octave, 3 third, 7 seventh,
# A approach to the next bar's downbeat.
Figure = list[tuple[float, float, str]]
# Per style: the takes (plain figures, one chosen by the seed) and the varied figure.
FIGURES: dict[str, tuple[tuple[Figure, ...], Figure]] = {
    "pop": (
        (
            [(0, 1.5, "R"), (1.5, 0.5, "R"), (2, 1.0, "5"), (3, 1.0, "R")],
            [(0, 0.75, "R"), (0.75, 0.75, "R"), (1.5, 1.0, "R"), (2.5, 0.5, "5"), (3, 1.0, "8")],
            [(0, 1.0, "R"), (1, 0.5, "R"), (1.5, 0.5, "5"), (2, 1.0, "R"), (3, 0.5, "5"), (3.5, 0.5, "R")],
        ),
        [(0, 1.5, "R"), (1.5, 0.5, "R"), (2, 1.0, "5"), (3, 0.5, "8"), (3.5, 0.5, "A")],
    ),
    "eighths": (
        (
            [(i * 0.5, 0.47, "R") for i in range(8)],
            [(i * 0.5, 0.47, "R") for i in range(6)] + [(3.0, 0.47, "8"), (3.5, 0.47, "R")],
            [(i * 0.5, 0.47, "R") for i in range(4)]
            + [(2 + i * 0.5, 0.47, "5" if i == 2 else "R") for i in range(4)],
        ),
        [(i * 0.5, 0.47, "R") for i in range(6)] + [(3.0, 0.47, "5"), (3.5, 0.47, "A")],
    ),
    "chug": (
        (
            [(i * 0.25, 0.23, "R") for i in range(16)],
            [(i * 0.25, 0.23, "R") for i in range(6)]
            + [(1.5, 0.5, "R")]
            + [(2 + i * 0.25, 0.23, "R") for i in range(8)],
            [(i * 0.5, 0.47, "R") for i in range(4)] + [(2 + i * 0.25, 0.23, "R") for i in range(8)],
        ),
        [(i * 0.25, 0.23, "R") for i in range(12)] + [(3.0, 0.47, "5"), (3.5, 0.47, "A")],
    ),
    "ballad": (
        (
            [(0, 2.0, "R"), (2, 2.0, "5")],
            [(0, 3.0, "R"), (3, 1.0, "5")],
            [(0, 1.5, "R"), (1.5, 0.5, "R"), (2, 2.0, "5")],
        ),
        [(0, 2.0, "R"), (2, 1.0, "5"), (3, 1.0, "A")],
    ),
    "octave": (
        (
            [(i * 0.5, 0.4, "R" if i % 2 == 0 else "8") for i in range(8)],
            [(i * 0.5, 0.4, "8" if i % 2 == 0 and i else "R") for i in range(8)],
            [
                (0, 0.4, "R"),
                (0.5, 0.4, "8"),
                (1, 0.4, "R"),
                (1.5, 0.4, "8"),
                (2, 0.9, "R"),
                (3, 0.4, "8"),
                (3.5, 0.4, "8"),
            ],
        ),
        [(i * 0.5, 0.4, "R" if i % 2 == 0 else "8") for i in range(6)] + [(3.0, 0.4, "5"), (3.5, 0.4, "A")],
    ),
    "offbeat": (
        (
            [(0, 0.4, "R"), (0.5, 0.4, "R"), (1.5, 0.4, "R"), (2.5, 0.4, "8"), (3.5, 0.4, "R")],
            [(b + 0.5, 0.4, "R" if b % 2 == 0 else "8") for b in range(4)],
            [
                (0, 0.4, "R"),
                (0.5, 0.4, "R"),
                (1.5, 0.4, "R"),
                (2.5, 0.4, "R"),
                (3, 0.2, "8"),
                (3.5, 0.4, "R"),
            ],
        ),
        [(0, 0.4, "R"), (0.5, 0.4, "R"), (1.5, 0.4, "5"), (2.5, 0.4, "8"), (3.25, 0.2, "5"), (3.5, 0.4, "A")],
    ),
    "funk": (
        (
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
                (0, 0.3, "R"),
                (0.5, 0.2, "R"),
                (1, 0.2, "8"),
                (1.75, 0.2, "R"),
                (2.5, 0.4, "5"),
                (3.25, 0.2, "7"),
                (3.5, 0.4, "8"),
            ],
            [
                (0, 0.6, "R"),
                (0.75, 0.2, "R"),
                (1.25, 0.2, "8"),
                (2, 0.3, "R"),
                (2.5, 0.2, "3"),
                (3, 0.4, "5"),
                (3.75, 0.2, "A"),
            ],
        ),
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
        (
            [(0, 0.75, "R"), (1.5, 0.5, "5"), (2, 0.75, "8"), (3, 0.5, "5"), (3.5, 0.5, "3")],
            [(0.5, 0.5, "R"), (1, 1.0, "R"), (2.5, 0.5, "5"), (3, 0.75, "3")],
            [(0, 1.0, "R"), (1.5, 0.5, "R"), (2, 0.5, "3"), (2.5, 0.5, "5"), (3.5, 0.5, "8")],
        ),
        [(0, 0.75, "R"), (1.5, 0.5, "5"), (2, 0.5, "8"), (2.5, 0.5, "5"), (3, 0.5, "3"), (3.5, 0.5, "A")],
    ),
    "sub808": (
        (
            [(0, 1.5, "R"), (1.5, 1.0, "R"), (2.5, 1.5, "R")],
            [(0, 2.5, "R"), (2.75, 0.75, "R"), (3.5, 0.5, "8")],
            [(0, 0.75, "R"), (0.75, 1.75, "R"), (3, 1.0, "5")],
        ),
        [(0, 1.5, "R"), (1.5, 0.75, "R"), (2.5, 1.0, "8"), (3.5, 0.5, "A")],
    ),
}
_WALTZ: tuple[tuple[Figure, ...], Figure] = (
    (
        [(0, 1, "R"), (1, 1, "5"), (2, 1, "8")],
        [(0, 2, "R"), (2, 1, "5")],
        [(0, 1, "R"), (1, 1, "3"), (2, 1, "5")],
    ),
    [(0, 1, "R"), (1, 1, "5"), (2, 1, "A")],
)


def _near(pitch_class: int, reference: float, low: int, high: int) -> int:
    """The note of ``pitch_class`` nearest ``reference`` inside [low, high]."""
    pitch = nearest_pitch(pitch_class, reference)
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def _tone(chord: Chord, interval: int, near: int) -> int:
    """The chord tone ``interval`` above the chord's root (not its slash bass), nearest ``near``."""
    return _near((chord.root + interval) % 12, near, LOW - 2, HIGH + 12)


def _seventh(chord: Chord) -> int:
    for interval in (10, 11, 9):
        if interval in chord.intervals:
            return interval
    return 12


def _degree_pitch(degree: str, chord: Chord, root: int, next_root: int, previous: int, plan: SongPlan) -> int:
    if degree == "R":
        return root
    if degree == "8":
        return root + 12 if root + 12 <= HIGH + 12 else root - 12
    if degree == "5":
        return _tone(chord, fifth_interval(chord), root)
    if degree == "3":
        third = third_interval(chord)
        return _tone(chord, third if third is not None else fifth_interval(chord), root + 2)
    if degree == "7":
        return _tone(chord, _seventh(chord), root + 9)
    chromatic = plan.style.bass == "walking" or plan.style.name in ("funk", "jazz", "blues")
    return approach_pitch(next_root, previous, plan.key.scale, chromatic)


def _walk(
    plan: SongPlan, chord: Chord, root: int, next_root: int, beats: int, rng: np.random.Generator
) -> list[int]:
    """One bar of a walking line: the root on 1, chord and scale tones by step or small skip
    towards the next root, and on the last beat a chromatic or scale approach to it."""
    if beats <= 1:
        return [root]
    tones = {(chord.root + i) % 12 for i in chord.intervals} | {chord.bass}
    scale = set(plan.key.scale) | tones
    line = [root]
    approach_from = next_root + (1 if rng.random() < 0.5 else -1)
    for beat in range(1, beats - 1):
        goal = root + (approach_from - root) * beat / (beats - 1)
        previous = line[-1]
        strong = beat % 2 == 0
        wanted = tones if strong else scale
        candidates = [
            p
            for p in range(previous - 5, previous + 6)
            if p != previous and LOW - 2 <= p <= HIGH + 10 and p % 12 in wanted
        ]
        if not candidates:
            candidates = [previous + (2 if goal >= previous else -2)]
        line.append(
            min(candidates, key=lambda p: abs(p - goal) + 0.3 * abs(p - previous) + 0.2 * rng.random())
        )
    chromatic = rng.random() < 0.6
    line.append(approach_pitch(next_root, line[-1], plan.key.scale, chromatic))
    return line


def compose_bass(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    part = Part("bass", instrument)
    walking = plan.style.bass == "walking"
    takes, varied = _WALTZ if plan.beats_per_bar == 3 else FIGURES.get(plan.style.bass, FIGURES["pop"])
    plain = takes[plan.take("bass") % len(takes)]
    human = Humanizer(rng, plan.style.humanize_ms * 0.7, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    if plan.feel.density > 1.1:
        chance = max(chance, 0.5)  # busy: the varied, fuller figure most bars
    beat_seconds = plan.beat_seconds
    beats = plan.beats_per_bar
    previous = _near(plan.chord_at(0).bass, _CENTRE, LOW, HIGH)
    for bar in range(plan.bars):
        chord = plan.chord_at(bar)
        # The downbeat in the octave nearest the line so far, pulled a little to the register's centre.
        root = _near(chord.bass, 0.6 * previous + 0.4 * _CENTRE, LOW, HIGH + (5 if walking else 0))
        next_root = _near(plan.chord_at(bar + 1).bass, root, LOW, HIGH + (5 if walking else 0))
        if bar == plan.ending_bar:
            part.add(plan.time_at(bar, 0.0), plan.end_seconds - plan.time_at(bar, 0.0), root, 100)
            continue
        if not plan.plays("bass", bar):
            continue
        section = plan.section_of(bar)
        if walking and section.name != "intro":
            line = _walk(plan, chord, root, next_root, beats, rng)
            half = section.name == "intro" or (
                section.name == "verse" and section.index == 0 and plan.take("bass") == 0
            )
            for step, pitch in enumerate(line):
                if half and step % 2:
                    continue  # a two-feel: half notes before the band opens up
                start = plan.time_at(bar, float(step))
                if step > 0:
                    start = human.time(start)
                length = (2.0 if half else 1.0) * beat_seconds * 0.92
                velocity = section_velocity(plan, bar, 100 if step == 0 else 90)
                part.add(start, length, pitch, human.velocity(velocity))
                previous = pitch
            if rng.random() < chance:  # a skip note: a triplet pickup into the next beat
                skip = int(rng.integers(1, beats))
                part.add(
                    human.time(plan.time_at(bar, skip - 1 / 3)), beat_seconds / 3 * 0.8, line[skip - 1], 70
                )
                part.variations += 1
            continue
        if section.name == "intro" and plan.style.bass not in ("offbeat", "octave"):
            figure: Figure = [(0, float(beats), "R")]
        else:
            use_varied = rng.random() < chance or (plan.is_section_end(bar) and plan.temperature > 0)
            figure = varied if use_varied else plain
            if use_varied:
                part.variations += 1
        if plan.feel.density < 0.8 and len(figure) > 3:
            figure = [note for note in figure if note[0] == int(note[0])]
        for beat, length, degree in figure:
            if beat >= beats:
                continue
            length = min(length, beats - beat)
            pitch = _degree_pitch(degree, chord, root, next_root, previous, plan)
            start = plan.time_at(bar, beat)
            # The downbeat stays on the grid: the bass and kick lock the groove together.
            if beat > 0:
                start = human.time(start)
            velocity = section_velocity(plan, bar, 100 if beat == int(beat) else 85)
            part.add(start, length * beat_seconds * 0.95, pitch, human.velocity(velocity))
            previous = pitch
        if plan.feel.density > 1.1 and all(b < beats - 0.3 for b, _, _ in figure):
            # Busy: a sixteenth pickup into the next downbeat.
            pickup = approach_pitch(next_root, previous, plan.key.scale, True)
            part.add(human.time(plan.time_at(bar, beats - 0.25)), 0.22 * beat_seconds, pickup, 80)
            previous = pickup
    return part
