"""The sung pitch and the re-articulation dips, as curves over time (pure numpy).

Pitch is in MIDI note numbers (fractional): the notes as steps, a portamento glide into each
new pitch of a legato line, a vibrato that sets in after a short delay on held notes, a small
scoop up into the first note of a phrase and a slow random drift of a few cents.
"""

import itertools
from collections.abc import Sequence

import numpy as np

from stemforge.music.notes import Note

VIBRATO_RATE_HZ = 5.5
VIBRATO_DEPTH_CENTS = 40.0  # half the swing: the pitch goes +-40 cents
VIBRATO_DELAY_S = 0.22  # straight tone first, then the vibrato grows in
VIBRATO_RAMP_S = 0.25
VIBRATO_MIN_NOTE_S = 0.35  # shorter notes are sung straight
GLIDE_MIN_S, GLIDE_MAX_S = 0.04, 0.12
SCOOP_SEMITONES = 0.45
SCOOP_S = 0.08
DRIFT_CENTS = 4.0


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def vibrato(
    t: np.ndarray,
    duration: float,
    rate_hz: float = VIBRATO_RATE_HZ,
    depth_cents: float = VIBRATO_DEPTH_CENTS,
    delay_s: float = VIBRATO_DELAY_S,
    ramp_s: float = VIBRATO_RAMP_S,
) -> np.ndarray:
    """Cents at times ``t`` (seconds from the note's start) of a note of ``duration``: none
    before the delay (at most a third of the note), then growing to ``depth_cents`` over
    ``ramp_s``. Notes shorter than ``VIBRATO_MIN_NOTE_S`` get none."""
    t = np.asarray(t, dtype=np.float64)
    if duration < VIBRATO_MIN_NOTE_S:
        return np.zeros_like(t)
    onset = min(delay_s, duration / 3.0)
    since = t - onset
    envelope = smoothstep(since / ramp_s) * (t < duration)
    return depth_cents * envelope * np.sin(2.0 * np.pi * rate_hz * np.maximum(since, 0.0))


def glide_seconds(a: Note, b: Note) -> float:
    """How long the voice takes to slide from ``a`` into ``b``."""
    return float(np.clip(0.25 * min(a.duration, b.duration), GLIDE_MIN_S, GLIDE_MAX_S))


def portamento(t: np.ndarray, start_pitch: float, end_pitch: float, at: float, glide_s: float) -> np.ndarray:
    """A smooth slide from ``start_pitch`` to ``end_pitch``: 70 % of it before the new note
    begins at ``at``, so the voice arrives just after the beat."""
    x = (np.asarray(t, dtype=np.float64) - (at - 0.7 * glide_s)) / glide_s
    return start_pitch + (end_pitch - start_pitch) * smoothstep(x)


def pitch_curve(
    notes: Sequence[Note], t: np.ndarray, rng: np.random.Generator | None = None, *, expressive: bool = True
) -> np.ndarray:
    """The sung pitch (MIDI, fractional) at times ``t`` for one legato phrase of ``notes``
    (sorted). Before the first note the voice is at the first pitch, after the last at the last.
    ``rng`` varies each note's vibrato rate and depth a little and draws the drift; without it
    (and with ``expressive=False``: steps and glides only) the curve is exact."""
    t = np.asarray(t, dtype=np.float64)
    if not notes:
        return np.zeros_like(t)
    starts = np.array([n.start for n in notes])
    index = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(notes) - 1)
    pitches = np.array([n.pitch for n in notes], dtype=np.float64)
    curve = pitches[index]
    # Glides: each replaces the step between two different pitches.
    glides = [glide_seconds(a, b) for a, b in itertools.pairwise(notes)]
    for i, (a, b) in enumerate(itertools.pairwise(notes)):
        if a.pitch == b.pitch:
            continue
        window = (t >= b.start - 0.7 * glides[i]) & (t < b.start + 0.3 * glides[i])
        curve[window] = portamento(t[window], a.pitch, b.pitch, b.start, glides[i])
    if not expressive:
        return curve
    cents = np.zeros_like(t)
    for i, note in enumerate(notes):
        # The vibrato runs from the note's start to where the glide into the next note begins.
        end = notes[i + 1].start - 0.7 * glides[i] if i + 1 < len(notes) else note.start + note.duration
        rate, depth = VIBRATO_RATE_HZ, VIBRATO_DEPTH_CENTS
        if rng is not None:
            rate *= 1.0 + rng.uniform(-0.05, 0.05)
            depth *= 1.0 + rng.uniform(-0.15, 0.15)
        inside = (t >= note.start) & (t < end)
        taper = np.clip((end - t[inside]) / 0.06, 0.0, 1.0)
        cents[inside] += taper * vibrato(t[inside] - note.start, end - note.start, rate, depth)
    first = notes[0].start
    scoop = SCOOP_SEMITONES * (1.0 - smoothstep((t - first) / SCOOP_S))
    curve = curve - scoop
    if rng is not None and t.size:
        # A slow wander (a point every 0.15 s, interpolated): no voice holds a pitch exactly.
        grid = np.arange(t[0], t[-1] + 0.3, 0.15)
        cents += np.interp(t, grid, rng.normal(0.0, DRIFT_CENTS, grid.size))
    return curve + cents / 100.0


def rearticulation_gain(
    notes: Sequence[Note],
    t: np.ndarray,
    soft: Sequence[bool] | None = None,
    depth_db: float = 16.0,
    at: Sequence[float | None] | None = None,
) -> np.ndarray:
    """Linear gain at ``t`` with a dip where a note follows one of the same pitch, so the two
    are heard as two. ``soft[i]``: note ``i`` has no consonant of its own (a vowel onset or a
    melisma), so its dip is deeper (``depth_db`` + 8 dB). ``at[i]``: where note ``i``'s dip
    goes (its consonant), when not just before the note."""
    t = np.asarray(t, dtype=np.float64)
    gain_db = np.zeros_like(t)
    for i in range(1, len(notes)):
        a, b = notes[i - 1], notes[i]
        if a.pitch != b.pitch:
            continue
        depth = depth_db + (8.0 if soft is not None and soft[i] else 0.0)
        sigma = min(0.018, 0.15 * min(a.duration, b.duration))
        centre = at[i] if at is not None and at[i] is not None else b.start - 0.008
        gain_db -= depth * np.exp(-0.5 * ((t - centre) / sigma) ** 2)
    return np.asarray(10.0 ** (gain_db / 20.0))
