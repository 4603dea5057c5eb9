"""The "other" stem: strings that sustain and move by step, brass stabs, hand percussion, or a
counter-line that answers the vocal."""

import numpy as np

from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import section_velocity
from stemforge.music.parts.melody import compose_melody
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument
from stemforge.music.theory import spread_voicing, voice_chord

SHAKER, TAMBOURINE, COWBELL, CONGA_MUTE, CONGA_OPEN, CONGA_LOW, CLAVES = 70, 54, 56, 62, 63, 64, 75

# 16 steps a bar (12 in 3/4 after trimming), like the drum grooves.
_PERCUSSION = {
    "verse": {SHAKER: "xoxoxoxoxoxoxoxo", CONGA_MUTE: "..x.......x.....", CONGA_OPEN: "...x..x....x..x."},
    "chorus": {
        SHAKER: "xoxoxoxoxoxoxoxo",
        TAMBOURINE: "....x.......x...",
        CONGA_OPEN: "...x..x....x..x.",
        CONGA_LOW: "x.......x.......",
        COWBELL: "x.x.x.x.x.x.x.x.",
    },
}


_PERCUSSION_PANS = {
    SHAKER: 0.55,
    TAMBOURINE: -0.5,
    COWBELL: 0.3,
    CONGA_MUTE: -0.3,
    CONGA_OPEN: -0.35,
    CONGA_LOW: -0.2,
    CLAVES: 0.4,
}


def compose_strings(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    """Sustained strings above the melody in an open voicing (never the pad's cluster), with a
    top line an octave up in choruses."""
    part = Part("other", instrument, pan=-0.3)
    previous: list[int] | None = None
    low, high = plan.register("strings")
    for bar in range(plan.bars):
        section = plan.section_of(bar)
        chord = plan.chord_at(bar)
        start = plan.time_at(bar, 0.0)
        voices = 4 if section.name in ("chorus", "outro") or bar == plan.ending_bar else 3
        notes = spread_voicing(chord, previous, low, high - 5, voices)
        previous = notes
        if bar != plan.ending_bar and not plan.plays("other", bar):
            continue
        length = plan.end_seconds - start if bar == plan.ending_bar else plan.bar_seconds
        velocity = section_velocity(plan, bar, 80)
        take = plan.take("other") if bar != plan.ending_bar else 0
        if plan.feel.density > 1.1 and take == 0 and bar != plan.ending_bar:
            take = 1  # busy: swells instead of held chords
        if take == 1 and plan.beats_per_bar >= 2:  # swells: the chord bowed again each half bar
            half = plan.bar_seconds / 2
            for pitch in notes:
                part.add(start, half, pitch, velocity)
                part.add(start + half, half, pitch, velocity * 0.9)
        elif take == 2:  # the top voice moves through the chord's tones on each beat
            for pitch in notes[:-1]:
                part.add(start, length, pitch, velocity)
            tones = sorted({p for p in range(notes[-1] - 5, notes[-1] + 6) if p % 12 in chord.pitch_classes})
            for beat in range(plan.beats_per_bar):
                pitch = tones[min(len(tones) - 1, beat)] if beat % 2 else notes[-1]
                part.add(plan.time_at(bar, float(beat)), plan.beat_seconds, pitch, velocity * 0.85)
        else:
            for pitch in notes:
                part.add(start, length, pitch, velocity)
        if section.name in ("chorus", "outro") and bar != plan.ending_bar and notes[-1] + 12 <= high + 7:
            part.add(start, length, notes[-1] + 12, velocity * 0.7)
    return part


def compose_brass(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    part = Part("other", instrument, pan=0.25)
    human = Humanizer(rng, plan.style.humanize_ms, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    previous: list[int] | None = None
    takes = (
        ((0.0, 0.4), (1.5, 0.3), (2.5, 0.8)),
        ((0.5, 0.3), (1.5, 0.3), (3.0, 0.8)),
        ((0.0, 1.5), (2.5, 0.3), (3.5, 0.4)),
    )
    hits = takes[plan.take("other") % len(takes)]
    low, high = plan.register("brass")
    for bar in range(plan.bars):
        chord = plan.chord_at(bar)
        notes = voice_chord(chord, previous, low, high, 3)
        previous = notes
        section = plan.section_of(bar)
        if bar == plan.ending_bar:
            start = plan.time_at(bar, 0.0)
            for pitch in notes:
                part.add(start, plan.end_seconds - start, pitch, 100)
            continue
        if section.name == "intro" or (section.name == "verse" and bar % 2) or not plan.plays("other", bar):
            continue
        pattern = list(hits)
        if rng.random() < chance:
            pattern.append((3.5, 0.4))
            part.variations += 1
        for beat, length in pattern:
            if beat >= plan.beats_per_bar:
                continue
            start = human.time(plan.time_at(bar, beat))
            for pitch in notes:
                part.add(
                    start, length * plan.beat_seconds, pitch, human.velocity(section_velocity(plan, bar, 95))
                )
    return part


def compose_percussion(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    part = Part("other", instrument, key_pans=dict(_PERCUSSION_PANS))
    human = Humanizer(rng, plan.style.humanize_ms, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    levels = {"x": 90, "o": 55}
    for bar in range(plan.bars):
        section = plan.section_of(bar)
        if bar == plan.ending_bar:
            part.add(plan.time_at(bar, 0.0), 0.3, CONGA_LOW, 100)
            continue
        if not plan.plays("other", bar):
            continue
        rows = dict(_PERCUSSION["chorus" if section.name in ("chorus", "outro") else "verse"])
        if plan.take("other") == 1:
            rows[CLAVES] = "x..x..x...x.x..."  # a son clave over the groove
        elif plan.take("other") == 2:
            rows[SHAKER] = "x.xxx.xxx.xxx.xx"
        if section.name == "intro":
            rows = {SHAKER: rows[SHAKER]}
        if rng.random() < chance:
            row = list(rows.get(CONGA_OPEN, "." * 16))
            row[int(rng.integers(16))] = "x"
            rows[CONGA_OPEN] = "".join(row)
            part.variations += 1
        steps = plan.beats_per_bar * 4
        for drum, pattern in rows.items():
            for step, char in enumerate(pattern[:steps]):
                if char == ".":
                    continue
                start = human.time(plan.time_at(bar, step / 4))
                part.add(start, 0.15, drum, human.velocity(section_velocity(plan, bar, levels[char])))
    return part


def compose_counter(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    """A line above the voice that starts a bar later, so it answers in the vocal's rests."""
    return compose_melody(
        plan,
        rng,
        "other",
        instrument,
        transpose=12,
        phrase_offset=1,
        density_scale=0.6,
        skip_sections=("intro",),
    )
