"""Helpers every part composer uses: registers, chord tones, approach notes, dynamics."""

from stemforge.music.chords import Chord
from stemforge.music.plan import SongPlan
from stemforge.music.theory import nearest_pitch


def fifth_interval(chord: Chord) -> int:
    """The chord's own fifth: 7, or 6 / 8 in diminished and augmented chords."""
    for interval in (7, 6, 8):
        if interval in chord.intervals:
            return interval
    return 7


def third_interval(chord: Chord) -> int | None:
    for interval in (4, 3, 5, 2):  # sus chords stand their 4th or 2nd in for the third
        if interval in chord.intervals:
            return interval
    return None


def bass_pitch(chord: Chord, low: int, high: int) -> int:
    """The chord's lowest note (the slash bass if any) inside [low, high]."""
    pitch = nearest_pitch(chord.bass, (low + high) / 2)
    while pitch < low:
        pitch += 12
    while pitch > high:
        pitch -= 12
    return pitch


def approach_pitch(target: int, previous: int, scale: tuple[int, ...], chromatic: bool) -> int:
    """A note one step from ``target`` on the side we come from: a half step (chromatic, jazz)
    or the scale step."""
    direction = -1 if previous < target else 1
    if chromatic:
        return target + direction
    for step in (1, 2):
        candidate = target + direction * step
        if candidate % 12 in scale:
            return candidate
    return target + direction


def section_velocity(plan: SongPlan, bar: int, base: float) -> float:
    """Louder in choruses, softer in intros; the feel's energy lifts everything."""
    energy = plan.section_of(bar).energy
    return base * (0.75 + 0.35 * energy) * (0.85 + 0.3 * plan.feel.energy)
