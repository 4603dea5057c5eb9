"""Pitch: the key a stem sounds in, and how closely each bar follows the chord asked of it.

Bar chroma is ``stemforge.dsp.analysis.bar_chroma`` (librosa's STFT chroma, each bar's first
eighth skipped); chord candidates are that module's (the asked chords and all 24 triads); keys
are Krumhansl-Kessler profiles correlated with the stem's summed chroma.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stemforge.dsp.analysis import bar_chroma, candidate_chords
from stemforge.music.chords import Chord, ChordSymbolError, note_pitch_class, parse_chord
from stemforge.music.theory import Key, chord_pitch_set

# Krumhansl & Kessler (1982) probe-tone ratings, from the tonic up.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# A bar this much quieter (chroma energy) than the stem's loudest bar is a rest: not scored.
_REST_SHARE = 0.05
# How a stem's bars are judged: chordal stems by the whole chord they sound, a bass by its
# strongest pitch class (one note at a time cannot spell a triad).
_TIE = 0.02  # cosine
# Flat chroma has cosine sqrt(n / 12) with every n-note chord: a match must clear that by this.
_ABOVE_NOISE = 0.1
CHORDAL_STEMS = frozenset({"guitar", "piano", "synth", "other"})
ROOT_STEMS = frozenset({"bass"})


@dataclass(frozen=True)
class KeyEstimate:
    key: Key
    confidence: float  # Pearson correlation of the chroma with the key's profile, -1..1


@dataclass(frozen=True)
class ChordAdherence:
    adherence: float | None  # share of sounding bars that follow the asked chord; None: all rests
    bar_scores: list[float | None]  # per bar, 0..1: cosine of its chroma with the asked chord; None: rest
    bars_matched: list[bool | None]  # per bar: did it follow the asked chord; None: rest


def parse_key(name: str) -> Key | None:
    """``"C major"`` / ``"F# minor"`` as the engines report it; None when it does not parse."""
    parts = name.split()
    if len(parts) != 2 or parts[1] not in ("major", "minor"):
        return None
    try:
        return Key(note_pitch_class(parts[0]), parts[1])
    except ChordSymbolError:
        return None


def keys_agree(heard: Key, asked: Key) -> bool:
    """Same key, or its relative (C major and A minor share every note: chroma cannot tell them
    apart without knowing where phrases come to rest)."""
    if heard == asked:
        return True
    relative = (asked.tonic + 9) % 12 if asked.mode == "major" else (asked.tonic + 3) % 12
    return heard.mode != asked.mode and heard.tonic == relative


def estimate_key(chroma: np.ndarray) -> KeyEstimate | None:
    """The best of 24 keys for a 12-bin chroma vector (or ``(n, 12)`` rows, summed)."""
    profile = np.asarray(chroma, dtype=np.float64).reshape(-1, 12).sum(axis=0)
    if not np.any(profile > 0) or np.allclose(profile, profile[0]):
        return None
    best: KeyEstimate | None = None
    for mode, template in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
        for tonic in range(12):
            score = float(np.corrcoef(profile, np.roll(template, tonic))[0, 1])
            if best is None or score > best.confidence:
                best = KeyEstimate(Key(tonic, mode), score)
    return best


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _template(pitch_classes: frozenset[int]) -> np.ndarray:
    vector = np.zeros(12)
    vector[list(pitch_classes)] = 1.0
    return _unit(vector)


def bar_count(seconds: float, bar_seconds: float) -> int:
    """Bars at least half of which lie inside the audio."""
    return max(1, int(seconds / bar_seconds + 0.5))


def chords_per_bar(progression: Sequence[str], bars: int) -> list[Chord] | None:
    """The asked progression cycled over ``bars`` (one chord per bar, as every engine plays it)."""
    try:
        cycle = [parse_chord(symbol) for symbol in progression]
    except ChordSymbolError:
        return None
    return [cycle[bar % len(cycle)] for bar in range(bars)] if cycle else None


def chord_adherence(chroma: np.ndarray, chords: Sequence[Chord], by_root: bool = False) -> ChordAdherence:
    """How each bar of ``chroma`` (``(bars, 12)``) follows ``chords`` (one per bar).

    Chordal: a bar follows its chord when, of the asked chords and all 24 triads, the asked one
    fits its chroma best (a slash chord with or without its bass note). ``by_root``: when its
    strongest pitch class is a tone of the chord."""
    candidates = candidate_chords(chords)
    templates = np.stack([_template(c) for c in candidates])
    energy = np.linalg.norm(chroma, axis=1)
    loudest = float(energy.max()) if len(energy) else 0.0
    scores: list[float | None] = []
    matched: list[bool | None] = []
    for bar, chord in enumerate(chords):
        if loudest <= 0 or energy[bar] < _REST_SHARE * loudest:
            scores.append(None)
            matched.append(None)
            continue
        unit = chroma[bar] / energy[bar]
        scores.append(float(unit @ _template(chord_pitch_set(chord))))
        if by_root:
            matched.append(int(np.argmax(chroma[bar])) in chord_pitch_set(chord))
        else:
            fits = templates @ unit
            spellings = (chord_pitch_set(chord), chord.pitch_classes)
            asked = [i for i, c in enumerate(candidates) if c in spellings]
            # A tie counts: a power chord (root and fifth) fits the major and minor triad alike.
            # But the fit must beat what featureless chroma (noise) gets with any chord.
            tones = len(chord_pitch_set(chord))
            clear = fits[asked].max() >= np.sqrt(tones / 12) + _ABOVE_NOISE
            matched.append(bool(clear and fits[asked].max() >= fits.max() - _TIE))
    sounding = [m for m in matched if m is not None]
    adherence = sum(sounding) / len(sounding) if sounding else None
    return ChordAdherence(adherence, scores, matched)


def stem_bar_chroma(mono: np.ndarray, sample_rate: int, bar_seconds: float) -> np.ndarray:
    """``(bars, 12)`` chroma of a mono stem, one row per bar of the request's grid."""
    return bar_chroma(mono, sample_rate, bar_seconds, bar_count(len(mono) / sample_rate, bar_seconds))
