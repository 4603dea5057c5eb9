"""A singable melody: two-bar phrases with rests, chord tones on strong beats, stepwise motion
between them, and motifs that come back (a chorus repeats its hook)."""

from dataclasses import dataclass

import numpy as np

from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import section_velocity
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument
from stemforge.music.theory import chord_pitch_set

Rhythm = list[tuple[float, float]]  # (beat, length in beats) within one bar

# First bars of a phrase, from sparse to busy; phrase-ending bars end on a long note and a rest.
_OPENING: tuple[Rhythm, ...] = (
    [(0, 2), (2, 2)],
    [(0, 1.5), (1.5, 0.5), (2, 2)],
    [(0, 1), (1, 0.5), (1.5, 0.5), (2, 1.5)],
    [(0.5, 0.5), (1, 0.5), (1.5, 1), (2.5, 0.5), (3, 1)],
    [(0, 0.5), (0.5, 0.5), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1)],
)
_CLOSING: tuple[Rhythm, ...] = (
    [(0, 2.5)],
    [(0, 1), (1, 2)],
    [(0, 0.5), (0.5, 0.5), (1, 2)],
    [(0, 0.5), (0.5, 0.5), (1, 0.5), (1.5, 1.5)],
)
# The voice sits above the accompaniment (the pad and the piano's right hand stay under it):
# about an octave a section, higher in choruses.
_REGISTERS = {"verse": (60, 72), "chorus": (64, 76), "bridge": (62, 74), "outro": (60, 72), "intro": (60, 72)}


@dataclass(frozen=True)
class Motif:
    rhythm: tuple[Rhythm, Rhythm]
    contour: tuple[float, ...]  # a target height 0..1 in the register for each note


def _is_strong(beat: float, beats_per_bar: int) -> bool:
    return beat == 0 or (beats_per_bar == 4 and beat == 2)


def _make_motif(rng: np.random.Generator, density: float, bpm: float) -> Motif:
    # Fast tempos and sparse prompts get fewer syllables per bar.
    busy = density * (1.3 if bpm < 90 else 1.0 if bpm < 130 else 0.7)
    top = int(np.clip(round(1 + 2.5 * busy), 1, len(_OPENING)))
    opening = _OPENING[int(rng.integers(0, top))]
    closing = _CLOSING[int(rng.integers(0, min(len(_CLOSING), top)))]
    count = len(opening) + len(closing)
    peak = float(rng.uniform(0.45, 0.9))
    contour = tuple(
        float(np.clip(peak * np.sin(np.pi * (i + 0.5) / count) + rng.normal(0, 0.08), 0.0, 1.0))
        for i in range(count)
    )
    return Motif((opening, closing), contour)


def _choose_pitch(
    candidates: list[int], previous: int | None, target: float, rng: np.random.Generator, temperature: float
) -> int:
    def cost(pitch: int) -> float:
        leap = 0.0 if previous is None else abs(pitch - previous)
        leap_cost = leap * 0.6 + (4.0 if leap > 7 else 0.0)
        return leap_cost + abs(pitch - target) * 0.5 + rng.normal(0.0, 0.3 + 0.7 * temperature)

    return min(candidates, key=cost)


def compose_melody(
    plan: SongPlan,
    rng: np.random.Generator,
    stem: str,
    instrument: Instrument,
    *,
    transpose: int = 0,
    phrase_offset: int = 0,
    density_scale: float = 1.0,
    skip_sections: tuple[str, ...] = ("intro",),
) -> Part:
    """The vocal line (or, shifted and sparser, a counter-line that answers it)."""
    part = Part(stem, instrument)
    human = Humanizer(rng, plan.style.humanize_ms * 0.8, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    motifs: dict[str, Motif] = {}
    scale = set(plan.key.scale)
    previous: int | None = None
    beats = plan.beats_per_bar
    bar = phrase_offset
    while bar < plan.ending_bar:
        section = plan.section_of(bar)
        resting = section.name in skip_sections or not plan.plays(stem, bar)
        if resting or bar + 1 >= plan.ending_bar + (1 if phrase_offset else 0):
            bar += 1 if resting else 2
            continue
        motif = motifs.get(section.name)
        if motif is None:
            motif = _make_motif(rng, plan.feel.density * density_scale, plan.bpm)
            motifs[section.name] = motif
        elif rng.random() < chance:
            # Same rhythm, new shape: a varied repeat.
            motif = Motif(
                motif.rhythm, tuple(float(np.clip(c + rng.normal(0, 0.2), 0, 1)) for c in motif.contour)
            )
            part.variations += 1
        low, high = _REGISTERS.get(section.name, (60, 72))
        low, high = low + transpose, high + transpose
        index = 0
        for offset, rhythm in enumerate(motif.rhythm):
            this_bar = bar + offset
            for beat, length in rhythm:
                if beat >= beats:
                    continue
                length = min(length, beats - beat)
                chord = plan.chord_at(this_bar)
                strong = _is_strong(beat, beats) or length >= 1.5
                allowed = chord_pitch_set(chord) if strong else (scale | chord.pitch_classes)
                candidates = [p for p in range(low, high + 1) if p % 12 in allowed]
                target = low + motif.contour[min(index, len(motif.contour) - 1)] * (high - low)
                pitch = _choose_pitch(candidates, previous, target, rng, plan.temperature)
                start = plan.time_at(this_bar, beat)
                if beat > 0:
                    start = human.time(start)
                velocity = section_velocity(plan, this_bar, 88 if strong else 76)
                part.add(start, length * plan.beat_seconds * 0.92, pitch, human.velocity(velocity, 4.0))
                previous = pitch
                index += 1
        bar += 2
    if plan.ending_bar > 0 and "ending" not in skip_sections:
        chord = plan.chord_at(plan.ending_bar)
        start = plan.time_at(plan.ending_bar, 0.0)
        candidates = [p for p in range(60 + transpose, 73 + transpose) if p % 12 in chord_pitch_set(chord)]
        pitch = _choose_pitch(candidates, previous, 65 + transpose, rng, 0.0)
        part.add(start, max(0.05, plan.end_seconds - start - 0.05), pitch, 80)
    return part
