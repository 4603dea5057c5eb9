"""Chord instruments: guitar, piano and synth play the bar's chord in a style's rhythm, with
voicings that move as little as possible from bar to bar."""

import numpy as np

from stemforge.music.chords import Chord
from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import bass_pitch, fifth_interval, section_velocity, third_interval
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument
from stemforge.music.theory import voice_chord

# A hit: (beat, length in beats, velocity factor, how): "block" all notes together, "down"/"up"
# strums, "roll" a slow arpeggiated chord, "mute" a dead scratch.
Hit = tuple[float, float, float, str]

_RHYTHMS: dict[str, dict[str, list[Hit]]] = {
    "strum": {
        "intro": [(0, 4, 0.9, "down")],
        "verse": [
            (0, 1, 1.0, "down"),
            (1, 0.5, 0.8, "down"),
            (1.5, 1, 0.6, "up"),
            (2.5, 0.5, 0.6, "up"),
            (3, 0.5, 0.9, "down"),
            (3.5, 0.5, 0.6, "up"),
        ],
        "chorus": [
            (i * 0.5, 0.5, 1.0 if i % 2 == 0 else 0.65, "down" if i % 2 == 0 else "up") for i in range(8)
        ],
    },
    "block": {
        "intro": [(0, 4, 0.85, "block")],
        "verse": [(0, 2, 1.0, "block"), (2, 1.5, 0.85, "block"), (3.5, 0.5, 0.75, "block")],
        "chorus": [(i * 0.5, 0.5, 1.0 if i % 2 == 0 else 0.75, "block") for i in range(8)],
    },
    "ballad": {
        "intro": [(0, 4, 0.8, "roll")],
        "verse": [(0, 2, 0.9, "roll"), (2, 2, 0.8, "block")],
        "chorus": [(0, 1, 1.0, "block"), (1, 1, 0.8, "block"), (2, 1, 0.95, "block"), (3, 1, 0.8, "block")],
    },
    "comp": {
        "intro": [(0, 2, 0.8, "block")],
        "verse": [(0, 1.5, 0.9, "block"), (1.5, 0.5, 0.8, "block"), (3.5, 0.5, 0.7, "block")],
        "chorus": [
            (0, 1, 0.95, "block"),
            (1.5, 1, 0.85, "block"),
            (2.5, 0.5, 0.7, "block"),
            (3.5, 0.5, 0.8, "block"),
        ],
    },
    "epiano": {
        "intro": [(0, 4, 0.8, "roll")],
        "verse": [(0, 2.5, 0.9, "roll"), (2.5, 1.5, 0.75, "roll")],
        "chorus": [(0, 1.5, 0.95, "roll"), (1.5, 1, 0.8, "block"), (2.5, 1.5, 0.85, "roll")],
    },
    "stabs": {
        "intro": [(0.5, 0.3, 0.8, "block"), (2.5, 0.3, 0.8, "block")],
        "verse": [
            (0, 0.35, 1.0, "block"),
            (0.75, 0.35, 0.85, "block"),
            (1.5, 0.35, 0.9, "block"),
            (2.5, 0.35, 0.9, "block"),
            (3.25, 0.35, 0.8, "block"),
        ],
        "chorus": [
            (i * 0.5 + 0.5 * (i % 2 == 0) * 0, 0.35, 1.0 if i % 2 else 0.85, "block") for i in range(8)
        ],
    },
    "bubble": {
        "intro": [(1.5, 0.3, 0.8, "block"), (3.5, 0.3, 0.8, "block")],
        "verse": [(b + 0.5, 0.3, 0.85, "block") for b in range(4)],
        "chorus": [(b + 0.5, 0.3, 0.95, "block") for b in range(4)]
        + [(b + 0.75, 0.2, 0.6, "block") for b in range(4)],
    },
    "skank": {
        "intro": [(1, 0.3, 0.8, "down"), (3, 0.3, 0.8, "down")],
        "verse": [(1, 0.3, 0.95, "down"), (3, 0.3, 0.95, "down")],
        "chorus": [
            (1, 0.3, 1.0, "down"),
            (1.5, 0.2, 0.6, "up"),
            (3, 0.3, 1.0, "down"),
            (3.5, 0.2, 0.6, "up"),
        ],
    },
    "funk": {
        "intro": [(0, 0.2, 1.0, "down"), (1.5, 0.2, 0.8, "down"), (2.75, 0.2, 0.8, "up")],
        "verse": [
            (0, 0.2, 1.0, "down"),
            (0.5, 0.1, 0.4, "mute"),
            (0.75, 0.2, 0.8, "up"),
            (1.5, 0.2, 0.9, "down"),
            (2.25, 0.1, 0.4, "mute"),
            (2.5, 0.2, 0.85, "down"),
            (3.25, 0.2, 0.8, "up"),
            (3.5, 0.1, 0.4, "mute"),
        ],
        "chorus": [
            (
                i * 0.25,
                0.15,
                1.0 if i % 4 == 0 else 0.75 if i % 2 == 0 else 0.45,
                "down" if i % 2 == 0 else "up",
            )
            for i in range(16)
        ],
    },
    "scratch": {
        "intro": [(b + 0.5, 0.2, 0.8, "up") for b in range(4)],
        "verse": [
            (i * 0.25, 0.12, 0.9 if i % 4 == 2 else 0.35, "down" if i % 4 == 2 else "mute") for i in range(16)
        ],
        "chorus": [
            (i * 0.25, 0.12, 1.0 if i % 2 == 0 else 0.45, "down" if i % 2 == 0 else "mute") for i in range(16)
        ],
    },
    "pad": {
        "intro": [(0, 4, 0.75, "block")],
        "verse": [(0, 4, 0.85, "block")],
        "chorus": [(0, 4, 1.0, "block")],
    },
}


def _waltz(hits: list[Hit]) -> list[Hit]:
    """Fit a 4/4 rhythm into 3/4 by dropping what starts on beat 4 and trimming lengths."""
    return [(b, min(length, 3 - b), v, how) for b, length, v, how in hits if b < 3]


def _guitar_voicing(chord: Chord, previous: list[int] | None, kind: str) -> list[int]:
    """Power chords (root, fifth, octave; a tenth on top for rock's bigger chords) or an
    open-position shape: a bass note under a close voicing on the top strings."""
    root = bass_pitch(chord, 40, 51) if kind != "power" else 40 + (chord.root - 40) % 12
    if kind == "power":
        fifth = fifth_interval(chord)
        return [root, root + fifth, root + 12]
    upper = voice_chord(chord, previous, 52, 72, max(4, min(5, len(chord.intervals))))
    low = bass_pitch(chord, 40, 51)
    return [low, *[p for p in upper if p > low]]


def _arpeggio_hits(plan: SongPlan, notes: list[int], density: float) -> list[tuple[float, float, int, float]]:
    """(beat, length, pitch, velocity factor): the bass note on 1 (and 3) then chord tones in
    eighths up and down, each left to ring."""
    upper = notes[1:] or notes
    order = upper + upper[-2:0:-1]
    step = 0.5 if density >= 0.8 else 1.0
    hits: list[tuple[float, float, int, float]] = []
    beat = 0.0
    index = 0
    while beat < plan.beats_per_bar - 1e-9:
        if beat in (0.0, 2.0):
            hits.append((beat, 2.0, notes[0], 1.0))
            if beat == 2.0 and plan.beats_per_bar == 4:
                beat += step
                continue
        else:
            hits.append((beat, 1.5, order[index % len(order)], 0.75))
            index += 1
        beat += step
    return hits


def compose_harmony(
    plan: SongPlan, rng: np.random.Generator, stem: str, instrument: Instrument, mode: str
) -> Part:
    """``mode``: a rhythm name above, or "power", "arpeggio", "muted", "arp"."""
    part = Part(stem, instrument, pan={"guitar": -0.35, "piano": 0.2, "synth": 0.3}.get(stem, 0.0))
    human = Humanizer(rng, plan.style.humanize_ms, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    previous: list[int] | None = None
    beat_seconds = plan.beat_seconds
    register = {"guitar": (52, 72), "piano": (55, 76), "synth": (57, 79)}.get(stem, (55, 76))
    for bar in range(plan.bars):
        chord = plan.chord_at(bar)
        section = plan.section_of(bar)
        bar_start = plan.time_at(bar, 0.0)
        base_velocity = section_velocity(plan, bar, 92)
        if stem == "guitar":
            voicing_kind = "power" if mode == "power" else "open"
            notes = _guitar_voicing(chord, previous, voicing_kind)
            if mode == "power" and plan.style.name != "metal" and section.name in ("chorus", "outro"):
                third = third_interval(chord)
                if third is not None:
                    notes = [*notes, notes[0] + 12 + third]
            if mode in ("funk", "skank", "scratch"):
                notes = voice_chord(chord, previous, 57, 76, max(3, min(4, len(chord.intervals))))
        else:
            size = max(4, min(5, len(chord.intervals)))
            notes = voice_chord(chord, previous, register[0], register[1], size)
        previous = [p for p in notes if p >= register[0] - 12]
        if bar == plan.ending_bar:
            length = plan.end_seconds - bar_start
            for i, pitch in enumerate(notes):
                part.add(bar_start + 0.012 * i * (stem == "guitar"), length, pitch, base_velocity)
            _add_piano_bass(part, plan, stem, chord, bar, float(plan.beats_per_bar), base_velocity)
            continue
        if mode == "arpeggio" or (mode == "muted" and stem == "guitar"):
            density = plan.feel.density * (1.0 if section.name != "intro" else 0.6)
            arp = _arpeggio_hits(plan, notes, density)
            if mode == "muted":
                arp = [(b, 0.3, p, v) for b, _, p, v in _sixteenth_arp(plan, notes)]
            for beat, length, pitch, factor in arp:
                part.add(
                    human.time(plan.time_at(bar, beat)),
                    length * beat_seconds,
                    pitch,
                    human.velocity(base_velocity * factor),
                )
            continue
        if mode == "arp":
            for beat, length, pitch, factor in _sixteenth_arp(plan, notes):
                part.add(
                    human.time(plan.time_at(bar, beat)),
                    length * beat_seconds,
                    pitch,
                    human.velocity(base_velocity * factor * 0.9),
                )
            if section.name in ("chorus", "outro"):  # a pad under the arpeggio fills the chorus out
                for pitch in notes[:3]:
                    part.add(bar_start, plan.bar_seconds, pitch - 12, base_velocity * 0.55)
            continue
        rhythm_name = "block" if mode in ("power", "open") else mode
        table = _RHYTHMS.get(rhythm_name, _RHYTHMS["block"])
        key = (
            "chorus"
            if section.name in ("chorus", "outro")
            else "intro"
            if section.name == "intro"
            else "verse"
        )
        hits = table[key]
        if mode == "power" and key != "intro":
            hits = (
                [(i * 0.5, 0.4, 1.0 if i % 2 == 0 else 0.8, "block") for i in range(8)]
                if key == "verse"
                else [
                    (0, 1.5, 1.0, "block"),
                    (1.5, 0.5, 0.8, "block"),
                    (2, 1.5, 0.95, "block"),
                    (3.5, 0.5, 0.8, "block"),
                ]
            )
        if plan.beats_per_bar == 3:
            hits = _waltz(hits)
        if plan.feel.density < 0.8:
            hits = [h for h in hits if h[0] == int(h[0])] or hits[:1]
        if rng.random() < chance and len(hits) > 1:
            # A variation: drop one hit and push another a sixteenth early (an anticipation).
            hits = list(hits)
            hits.pop(int(rng.integers(1, len(hits))))
            part.variations += 1
        for beat, length, factor, how in hits:
            start = human.time(plan.time_at(bar, beat))
            velocity = human.velocity(base_velocity * factor)
            duration = length * beat_seconds * 0.95
            if how == "mute":
                for pitch in notes[-3:]:
                    part.add(start, 0.03, pitch, velocity * 0.6)
                continue
            if how in ("down", "up", "roll"):
                ordered = notes if how != "up" else list(reversed(notes[-4:]))
                spread = 0.035 if how == "roll" else 0.009 if stem == "guitar" else 0.004
                for i, pitch in enumerate(ordered):
                    part.add(start + i * spread, duration - i * spread, pitch, velocity * (1 - 0.03 * i))
            else:
                for pitch in notes:
                    part.add(start, duration, pitch, velocity)
        if mode in ("block", "ballad", "comp", "epiano") and stem == "piano":
            _add_piano_bass(part, plan, stem, chord, bar, float(plan.beats_per_bar), base_velocity)
    return part


def _sixteenth_arp(plan: SongPlan, notes: list[int]) -> list[tuple[float, float, int, float]]:
    """An up-and-down arpeggio of the voicing in sixteenths (eighths when fast), octave on top."""
    tones = [*sorted(set(notes)), sorted(set(notes))[0] + 12]
    order = tones + tones[-2:0:-1]
    step = 0.25 if plan.bpm < 140 else 0.5
    count = round(plan.beats_per_bar / step)
    return [(i * step, step * 0.9, order[i % len(order)], 1.0 if i % 4 == 0 else 0.8) for i in range(count)]


def _add_piano_bass(
    part: Part, plan: SongPlan, stem: str, chord: Chord, bar: int, beats: float, velocity: float
) -> None:
    """The pianist's left hand: the bass note of the chord, an octave below the voicing."""
    if stem != "piano":
        return
    low = bass_pitch(chord, 36, 47)
    start = plan.time_at(bar, 0.0)
    length = plan.end_seconds - start if bar == plan.ending_bar else beats * plan.beat_seconds * 0.98
    part.add(start, length, low, velocity * 0.85)
