"""The vocal line as a singer takes it: cut into phrases at the rests (where she breathes),
widened when it barely moves, and moved by whole octaves so it sits above the band's chords,
in a singable range.

The composer (``stemforge.music.parts.melody``) writes the line; this only places it. Octaves
keep every chord tone a chord tone. Widening stretches the intervals up from the line's lowest
note (or down from its highest) and lands each note on the nearest pitch the composer could
have used there (a chord tone on a strong beat or a long note, a scale or chord tone
elsewhere), so the harmony holds.
"""

from collections.abc import Sequence

import numpy as np

from stemforge.music.notes import Note
from stemforge.music.plan import SongPlan
from stemforge.music.theory import chord_pitch_set

# A rest at least this long (and at least half a beat) ends a phrase.
PHRASE_GAP_S = 0.15
# Where a light pop soprano sings: the whole line stays inside, its median near the middle.
VOICE_LOW, VOICE_HIGH = 57, 81  # A3 .. A5
ABOVE_BAND = 2  # the line's median at least this many semitones over the chords' median
# A line spanning fewer semitones than this is widened towards WIDE_RANGE.
NARROW_RANGE, WIDE_RANGE = 8, 10


def split_phrases(notes: Sequence[Note], beat_seconds: float) -> list[list[Note]]:
    """Consecutive notes separated by rests of at least half a beat (and ``PHRASE_GAP_S``)."""
    threshold = max(PHRASE_GAP_S, 0.45 * beat_seconds)
    phrases: list[list[Note]] = []
    end = -np.inf
    for note in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if phrases and note.start < end - 1e-6:
            # Overlaps the note before it (a chord, a humanizing slip): one voice sings one note.
            continue
        if not phrases or note.start - end >= threshold:
            phrases.append([])
        phrases[-1].append(note)
        end = note.start + note.duration
    return phrases


def _violation(pitches: Sequence[int], floor: float) -> float:
    """How far a placed line is from where it should be: semitones outside the voice (counted
    twice) plus semitones its median sits under ``floor``."""
    outside = max(0, VOICE_LOW - min(pitches)) + max(0, max(pitches) - VOICE_HIGH)
    return 2.0 * outside + max(0.0, floor - float(np.median(pitches)))


def _band_floor(band_pitches: Sequence[int]) -> float:
    return float(np.median(band_pitches)) + ABOVE_BAND if band_pitches else 64.0


def octave_shift(pitches: Sequence[int], band_pitches: Sequence[int]) -> int:
    """Semitones (a multiple of 12) that put the line above the band: its median at least
    ``ABOVE_BAND`` over the band's median, as low as that allows, inside the voice's range."""
    if not pitches:
        return 0
    floor = _band_floor(band_pitches)
    median = float(np.median(pitches))
    return min(
        (-24, -12, 0, 12, 24), key=lambda k: (_violation([p + k for p in pitches], floor), median + k, k)
    )


def transpose(notes: Sequence[Note], shift: int) -> list[Note]:
    return [Note(n.start, n.duration, n.pitch + shift, n.velocity) for n in notes]


def allowed_pitch_classes(plan: SongPlan, note: Note) -> frozenset[int]:
    """What the composer allows at ``note``: chord tones on strong beats and long notes, the
    scale and the chord's tones elsewhere."""
    bar = max(0, int(note.start // plan.bar_seconds + 1e-9))
    beat = (note.start - bar * plan.bar_seconds) / plan.beat_seconds
    chord = plan.chord_at(bar)
    strong = (
        min(beat, plan.beats_per_bar - beat) < 0.2
        or (plan.beats_per_bar % 2 == 0 and abs(beat - plan.beats_per_bar / 2) < 0.2)
        or note.duration >= 1.3 * plan.beat_seconds
    )
    return chord_pitch_set(chord) if strong else frozenset(plan.key.scale) | chord.pitch_classes


def widen(notes: Sequence[Note], plan: SongPlan, factor: float, upwards: bool = True) -> list[Note]:
    """The line's intervals stretched by ``factor`` upwards from its lowest note (or downwards
    from its highest), each note on the nearest pitch allowed there (equal notes stay equal
    where the harmony allows)."""
    if not notes or factor == 1.0:
        return list(notes)
    anchor = min(n.pitch for n in notes) if upwards else max(n.pitch for n in notes)
    out = []
    for note in notes:
        target = anchor + factor * (note.pitch - anchor)
        allowed = allowed_pitch_classes(plan, note)
        candidates = [p for p in range(int(target) - 7, int(target) + 8) if p % 12 in allowed]
        pitch = min(candidates, key=lambda p: (abs(p - target), abs(p - note.pitch), p))
        out.append(Note(note.start, note.duration, pitch, note.velocity))
    return out


def place(notes: Sequence[Note], plan: SongPlan, band_pitches: Sequence[int]) -> tuple[list[Note], int]:
    """The line as sung, and the octave shift in it. A line narrower than ``NARROW_RANGE``
    semitones is widened towards ``WIDE_RANGE`` (at most tripled; upwards, else downwards) as
    far as it still fits the voice above the band; then it moves by octaves (``octave_shift``)."""
    if not notes:
        return [], 0
    pitches = [n.pitch for n in notes]
    span = max(pitches) - min(pitches)
    floor = _band_floor(band_pitches)
    best: tuple[float, list[Note], int] | None = None
    if 0 < span < NARROW_RANGE:
        for factor in np.linspace(min(3.0, WIDE_RANGE / span), 1.0, 6)[:-1]:
            for upwards in (True, False):
                line = widen(notes, plan, float(factor), upwards)
                shift = octave_shift([n.pitch for n in line], band_pitches)
                violation = _violation([n.pitch + shift for n in line], floor)
                if violation == 0:
                    return transpose(line, shift), shift
                if best is None or violation < best[0]:
                    best = (violation, line, shift)
    shift = octave_shift(pitches, band_pitches)
    if best is not None and best[0] < _violation([p + shift for p in pitches], floor):
        return transpose(best[1], best[2]), best[2]
    return transpose(notes, shift), shift
