"""What a user's reference track is: its tempo and beat grid, where its bars start, its key and
the chord of each bar. Pure numpy/librosa over an array (no I/O, no Ray), deterministic.

The approach (all on the mono mix at 22.05 kHz, as the quality metrics hear stems):

* Tempo candidates. librosa's tempo estimate on the onset-strength envelope (log-mel spectral
  flux, the quality metrics' ``onset_envelope``) often lands an octave off (hats in eighths) or
  on a dotted relative, and the onsets alone cannot tell (they repeat at every level), so its
  metrical relatives (x1/2, 2/3, 1, 3/2, 2) are all candidates. Each is refined by a comb over
  the envelope's autocorrelation at every multiple of the period: over the whole track the
  period is measured to well under 0.1 % (constant tempo is assumed).
* Metre. Harmony changes at bar lines, where the bass lands on the root and the kick plays.
  The harmonic part of the constant-Q spectrum (median filtering across time and pitch: drum
  hits are not chord changes) is explained as notes (NNLS, see Chords) in blocks of 93 ms, so
  the treble and bass chroma of any span is a difference of running sums. Every hypothesis is
  scored: each candidate tempo, its grid's phase (where the most onset strength falls, or half a
  beat from it: a skank or off-beat hats can outweigh the kick) and each beat of the bar as the
  downbeat (the metre is the caller's). Its score, over the sounding bars: how well one triad
  fits each half of each bar (a bar straddling a change, or holding two chords as at half the
  true tempo, fits worse); plus how far the bass moves to that triad's root from the beat
  before the line to the beat after it (a difference, as the constant-Q's long bass windows
  smear each note over its neighbours); less a share of the lines over which the chord is held
  (half of them at twice the true tempo); plus a quarter of the low-frequency onset strength
  (kick and bass) on the lines over the most any half beat of the bar carries (a funk band
  pushes its chords half a beat early, its kick stays on the one); less, for the phase the
  onsets favour less, their margin (so a skank can still be off the beat where the harmony
  says so); times a weak (fourth root) log-normal tempo prior around 110 BPM. The best wins.
  Without pitch to go by (no key in the chroma: drums alone) librosa's tempo stands and the
  downbeat is the beat with the most low-frequency onsets.
* Beats. The winning phase is refined on a flux of short windows, which follows the attack
  within a few ms; the beats are that grid over the whole track. The first downbeat is the
  earliest one at or after the first sound, so a pickup is skipped.
* Chords. The harmonic constant-Q spectrum (a third of a semitone a bin) is averaged over each
  bar (its first eighth left out: the previous chord rings into it) and explained as a
  non-negative sum of notes with decaying partials (NNLS chroma, after Mauch & Dixon 2010), so a
  bass note's upper partials (its fifth is a major third) go back to it rather than turning a
  minor chord major. The notes from C3 up give the treble chroma, matched (cosine) against the
  24 major and minor triads; the notes below vote for the root, the more so the less treble the
  bar has. Once the key is known the bars are read again with a small bonus for the key's own
  triads (a bar whose third is barely heard is the key's triad). The confidence is the chord's
  share of a softmax over the 24.
* Key. Krumhansl-Kessler profiles over the bars' chroma give the scale; between that key and its
  relative (the same notes: chroma alone cannot tell them apart) the chords decide: the one
  whose tonic chord the first bar is on, then the last, then the one the bars dwell on.

Limits, as measured on synthetic and procedurally rendered songs (drums, bass and piano in
pop, rock, funk, house, ballad, reggae, blues; 3/4 pop and rock; tests/reference): the metre
relies on chords changing at bar lines (a song whose harmony changes every two bars reads at
half its tempo); the chords are triads (a seventh chord is read as whichever triad inside it fits
best, Dm7 as F or Dm); constant tempo is assumed. Known misses: the procedural jazz band
(swung ride and brushes, walking bass) gives no steady tempo at all (the onsets' periodicity
stays under the threshold); where the bass plays alone (a procedural verse whose comping is on
the guitar, not rendered) its arpeggios can read as the triad a third up (D as F#m: 3/4 pop at
150 and rock at 90-120 BPM, 58-81 % of bars), and a blues at 120 BPM reads A7 as C#m in two
bars of nine.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from stemforge.music.theory import Key
from stemforge.quality.harmony import estimate_key
from stemforge.quality.rhythm import (
    ANALYSIS_RATE,
    HOP,
    ONSET_LAG_SECONDS,
    autocorrelation,
    first_sound_seconds,
    periodicity,
    to_analysis_mono,
)

# Quieter than this (peak, full scale = 1) is silence: nothing to analyse.
_SILENCE_PEAK = 1e-4
_MIN_BPM, _MAX_BPM = 40.0, 240.0
# Below this autocorrelation at the beat period the onsets keep no steady tempo: noise and held
# chords (their partials beat slowly) reach ~0.2, songs 0.45-0.8.
_MIN_TEMPO_CONFIDENCE = 0.3
# Nor is there a beat where the onsets on it are this faint (mean flux on the grid, dB a mel
# band): a held chord's beating partials reach ~0.2, noise ~0.6, songs 1.4-8.
_MIN_BEAT_FLUX = 0.8
# Relatives of librosa's estimate that may be the beat: octaves (hats in eighths, a half-time
# feel) and dotted relatives (a shuffle's accents).
_TEMPO_RELATIONS = (0.5, 2.0 / 3.0, 1.0, 1.5, 2.0)
# A relative the onsets repeat at less than this share of the best one's periodicity is no beat.
_PERIODIC_SHARE = 0.6
_REFINE_SPAN = 0.03  # each candidate's period is refined within +-3 %
_REFINE_STEPS = 601
_PHASE_STEPS = 256
_MEL_BANDS = 128
_LOW_HZ = 160.0  # kick and bass fundamentals: the downbeat's accent without harmony
# The beat's phase is refined within +-25 ms on a flux of short windows (23 ms, 2.9 ms hops),
# which peaks 2-5 ms after an attack (clicks, kicks, noise bursts, plucks).
_FINE_FFT, _FINE_HOP, _FINE_MEL_BANDS = 512, 64, 40
_FINE_LAG_SECONDS = 0.0035
_PHASE_SEARCH, _PHASE_SEARCH_STEPS = 0.025, 50
_PRIOR_BPM = 110.0
# The prior is a tie-break under the harmony's evidence: this power of it counts.
_PRIOR_WEIGHT = 0.25
# The onsets' share on the beat (against half a beat off) counts this much against the harmony:
# the drums mostly play on the beat, but a skank or off-beat hats can outweigh them.
_ACCENT_WEIGHT = 0.5
_KICK_WEIGHT = 0.25  # the low onsets' share on the bar line (0..1) counts this much
_HELD_PENALTY = 0.2  # per share of bar lines over which the chord is held
_CHROMA_BLOCK = 4  # NNLS chroma for the metre: one per 4 constant-Q frames (93 ms)
# Pitch: a constant-Q transform from C2 up six octaves, three bins a semitone, and the notes
# E1-B6 (each with decaying partials) that explain it.
_CQT_HOP = 512
_CQT_FMIN_MIDI = 36
_CQT_OCTAVES = 6
_BINS_PER_OCTAVE = 36
_LOWEST_NOTE, _HIGHEST_NOTE = 28, 95
_PARTIALS = 8
_PARTIAL_DECAY = 0.5
_BASS_BELOW_MIDI = 48  # notes below C3 are the bass
_BAR_SKIP = 0.125  # a bar's chroma leaves out its first eighth (the previous chord's ring)
_IN_KEY_BONUS = 0.05  # added to the fit of a triad in the key (rival triads' fits differ ~0.15)
_SOFTMAX_TEMPERATURE = 0.05
_REST_SHARE = 0.05  # a bar this much quieter (chroma energy) than the loudest is a rest
_KEY_SPAN_SECONDS = 1.0  # without a beat grid the key is heard over spans of this length
# Chroma whose best key profile correlates less than this has no key (noise, drums: ~0.5;
# music: 0.7-0.95).
_MIN_KEY_CORRELATION = 0.6
# Between a key and its relative: a first bar on the tonic counts this much, a last bar this much,
# against the share of bars on it (0..1).
_FIRST_BAR_WEIGHT, _LAST_BAR_WEIGHT = 1.0, 0.5
# A downbeat this much before the first sound still counts as bar 1 (the grid's own error).
_FIRST_SOUND_TOLERANCE = 0.06


@dataclass(frozen=True)
class ReferenceAnalysis:
    duration_seconds: float
    bpm: float | None  # None when no steady tempo was found
    tempo_confidence: float  # 0..1: autocorrelation of the onsets at the beat period
    beats_per_bar: int  # as asked: the metre is given by the caller
    beats_seconds: tuple[float, ...]  # the tempo grid's beats over the whole track
    first_downbeat_seconds: float | None  # bar 1's downbeat (after any pickup)
    key: str | None  # "A minor", "Eb major" (``Key.name``); None for silence
    chords: tuple[str, ...]  # one symbol per bar from the first downbeat (``parse_chord`` reads them)
    chord_confidence: tuple[float, ...]  # per bar, 0..1 (0: a rest, which repeats the chord before)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly and rounded: times to the millisecond, the tempo to 0.01 BPM; the beats
        are counted, not listed (the grid follows from the tempo and first downbeat)."""
        return {
            "duration_seconds": round(self.duration_seconds, 3),
            "bpm": None if self.bpm is None else round(self.bpm, 2),
            "tempo_confidence": round(self.tempo_confidence, 2),
            "beats_per_bar": self.beats_per_bar,
            "beats": len(self.beats_seconds),
            "first_downbeat_seconds": (
                None if self.first_downbeat_seconds is None else round(self.first_downbeat_seconds, 3)
            ),
            "key": self.key,
            "chords": list(self.chords),
            "chord_confidence": [round(c, 2) for c in self.chord_confidence],
        }


@dataclass(frozen=True)
class _Features:
    """What is measured on the audio once."""

    flux: np.ndarray  # log-mel spectral flux (``HOP`` frames): when things start
    low: np.ndarray  # amplitude flux below ``_LOW_HZ`` (``HOP`` frames): the kick and bass
    spectrum: np.ndarray  # (bins, frames) constant-Q magnitude, ``_CQT_HOP`` frames
    # Running sums over ``_CQT_HOP`` frames (first column 0) of the NNLS treble and bass chroma,
    # each (12, frames + 1): any span's chroma is a difference of two columns.
    treble_sums: np.ndarray
    bass_sums: np.ndarray


@dataclass(frozen=True)
class _Metre:
    bpm: float
    confidence: float
    first_beat: float  # seconds: the grid's beat nearest the start, within half a beat of 0
    downbeat: int  # which beat from first_beat on (0..beats_per_bar-1) is a downbeat

    @property
    def period(self) -> float:
        return 60.0 / self.bpm


def _librosa() -> Any:
    import librosa  # a heavy import: only when a reference is analysed

    return librosa


def analyse_reference(audio: np.ndarray, sample_rate: int, beats_per_bar: int = 4) -> ReferenceAnalysis:
    """Tempo, beat grid, first downbeat, key and chord per bar of ``audio`` (float,
    ``(frames,)`` or ``(frames, channels)``) in the metre ``beats_per_bar`` asks for."""
    if beats_per_bar < 1:
        raise ValueError("beats_per_bar must be at least 1")
    duration = len(audio) / sample_rate
    mono = to_analysis_mono(np.asarray(audio, dtype=np.float32), sample_rate)
    silent = ReferenceAnalysis(duration, None, 0.0, beats_per_bar, (), None, None, (), ())
    if len(mono) < ANALYSIS_RATE // 4 or not float(np.max(np.abs(mono), initial=0.0)) > _SILENCE_PEAK:
        return silent
    features = _features(mono)
    metre = _metre(mono, features, beats_per_bar)
    if metre is None:  # no beats to hang chords on; the key is still heard
        return replace(silent, key=_name(_spans_key(features.spectrum, duration)))
    beats = _beats(metre, duration)
    downbeat = _first_downbeat(beats, metre, beats_per_bar, first_sound_seconds(mono, ANALYSIS_RATE) or 0.0)
    bars = _bars(features.spectrum, downbeat, metre.period * beats_per_bar, duration)
    triads: list[tuple[int, bool]] = []
    chord_confidence: list[float] = []
    if bars is None:
        key = _spans_key(features.spectrum, duration)
    else:
        key, triads, chord_confidence = _key_and_chords(bars)
    return ReferenceAnalysis(
        duration_seconds=duration,
        bpm=metre.bpm,
        tempo_confidence=metre.confidence,
        beats_per_bar=beats_per_bar,
        beats_seconds=tuple(float(b) for b in beats),
        first_downbeat_seconds=downbeat,
        key=_name(key),
        chords=tuple(_chord_symbol(triad, key) for triad in triads),
        chord_confidence=tuple(chord_confidence),
    )


# --- features ---------------------------------------------------------------------------------


def _features(mono: np.ndarray) -> _Features:
    librosa = _librosa()
    mel = librosa.feature.melspectrogram(y=mono, sr=ANALYSIS_RATE, hop_length=HOP, n_mels=_MEL_BANDS)
    # The same envelope as the quality metrics' onset_envelope (librosa's default: flux of dB
    # mel), so their measured onset lag applies. hop_length matters even with S given: librosa
    # shifts the envelope by half a window's worth of hops.
    flux = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=ANALYSIS_RATE, hop_length=HOP)
    mel_hz = librosa.mel_frequencies(n_mels=_MEL_BANDS, fmax=ANALYSIS_RATE / 2)
    low_bands = max(1, int(np.searchsorted(mel_hz, _LOW_HZ)))
    low = librosa.onset.onset_strength(S=np.sqrt(mel[:low_bands]), sr=ANALYSIS_RATE, hop_length=HOP)
    # The harmonic part only (median filtering across time and pitch, librosa's defaults): drums
    # smear chroma and their hits read as chord changes.
    spectrum = librosa.decompose.hpss(_constant_q(mono))[0]
    treble, bass = _block_chroma(spectrum)
    zero = np.zeros((12, 1))
    return _Features(
        flux=np.asarray(flux, dtype=np.float64),
        low=np.asarray(low, dtype=np.float64),
        spectrum=spectrum,
        treble_sums=np.concatenate([zero, np.cumsum(treble, axis=1)], axis=1),
        bass_sums=np.concatenate([zero, np.cumsum(bass, axis=1)], axis=1),
    )


def _block_chroma(spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(treble, bass) NNLS chroma, each ``(12, frames)``, of blocks of ``_CHROMA_BLOCK`` frames
    (each frame carries its block's share): fine enough to be summed over any beat."""
    frames = spectrum.shape[1]
    blocks = -(-frames // _CHROMA_BLOCK)
    padded = np.zeros((spectrum.shape[0], blocks * _CHROMA_BLOCK))
    padded[:, :frames] = spectrum
    means = padded.reshape(spectrum.shape[0], blocks, _CHROMA_BLOCK).mean(axis=2).T
    treble, bass = _explain(means)
    return (
        np.repeat(treble.T, _CHROMA_BLOCK, axis=1)[:, :frames] / _CHROMA_BLOCK,
        np.repeat(bass.T, _CHROMA_BLOCK, axis=1)[:, :frames] / _CHROMA_BLOCK,
    )


def _constant_q(mono: np.ndarray) -> np.ndarray:
    librosa = _librosa()
    tuning = float(librosa.estimate_tuning(y=mono, sr=ANALYSIS_RATE, bins_per_octave=_BINS_PER_OCTAVE))
    spectrum = librosa.cqt(
        mono,
        sr=ANALYSIS_RATE,
        hop_length=_CQT_HOP,
        fmin=float(librosa.midi_to_hz(_CQT_FMIN_MIDI)),
        n_bins=_CQT_OCTAVES * _BINS_PER_OCTAVE,
        bins_per_octave=_BINS_PER_OCTAVE,
        tuning=tuning,
    )
    return np.abs(spectrum).astype(np.float64)


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    out: np.ndarray = np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)
    return out


def _frames_per_second() -> float:
    return ANALYSIS_RATE / HOP


# --- tempo, beats and downbeat ------------------------------------------------------------------


def _metre(mono: np.ndarray, features: _Features, beats_per_bar: int) -> _Metre | None:
    """Tempo, beat phase and downbeat; None where the onsets keep no steady tempo."""
    candidates = _tempo_candidates(features.flux)
    if not candidates:
        return None
    period_frames = {bpm: 60.0 * _frames_per_second() / bpm for bpm, _ in candidates}
    phases = {bpm: _coarse_phase(features.flux, period_frames[bpm]) for bpm, _ in candidates}
    duration = len(mono) / ANALYSIS_RATE
    best: tuple[float, float, float, int] | None = None  # evidence, bpm, first beat, downbeat
    if _has_pitch(features, duration):  # harmony to go by
        for bpm, _ in candidates:
            beat = 60.0 / bpm
            on_beat = _on_beat_share(features.flux, phases[bpm], beat)
            for shift in (0.0, 0.5):
                first = phases[bpm] + shift * beat
                # The shift the onsets favour loses nothing, the other the onsets' margin (so the
                # accent sets no tempo against another: hats in eighths favour twice it).
                share = on_beat if shift == 0.0 else 1.0 - on_beat
                accent = _ACCENT_WEIGHT * min(0.0, 2.0 * share - 1.0)
                harmonies = _harmonic_evidence(features, first, beat, beats_per_bar, duration)
                kicks = _low_accents(features.low, first, beat, beats_per_bar, duration)
                for position, (harmony, kick) in enumerate(zip(harmonies, kicks, strict=True)):
                    evidence = (harmony + accent + _KICK_WEIGHT * kick) * _tempo_prior(bpm) ** _PRIOR_WEIGHT
                    if best is None or evidence > best[0]:
                        best = (evidence, bpm, first, position)
    if best is not None:
        _, bpm, first, position = best
    else:  # no harmony to go by: librosa's own tempo, the onsets' phase, the kick's downbeat
        bpm = candidates[0][0]
        first = phases[bpm]
        position = _low_downbeat(features.low, first, 60.0 / bpm, beats_per_bar, duration)
    confidence = dict(candidates)[bpm]
    first = _fine_phase(mono, first, 60.0 / bpm)
    beat = 60.0 / bpm
    # Keep the first beat within half a beat of 0, the downbeat counted from it.
    turns = int(np.floor((first + beat / 2) / beat))
    return _Metre(bpm, confidence, first - turns * beat, (position + turns) % beats_per_bar)


def _tempo_candidates(flux: np.ndarray) -> list[tuple[float, float]]:
    """(bpm, periodicity) of librosa's tempo (first) and its relatives that the onsets repeat at
    nearly as well, each refined; empty when nothing repeats."""
    if len(flux) < 16 or not np.any(flux > 0):
        return []
    tempo = _librosa().feature.tempo(onset_envelope=flux, sr=ANALYSIS_RATE, hop_length=HOP)
    coarse = float(np.atleast_1d(tempo)[0])
    if not coarse > 0:
        return []
    frames_per_minute = 60.0 * _frames_per_second()
    phases = np.linspace(0.0, frames_per_minute / coarse, _PHASE_STEPS, endpoint=False)
    if _comb(flux, frames_per_minute / coarse, phases).max() < _MIN_BEAT_FLUX:
        return []  # a held chord's partials beat, periodically but faintly: no onsets
    correlation = autocorrelation(flux)
    candidates = []
    for relation in sorted(_TEMPO_RELATIONS, key=lambda r: r != 1.0):  # librosa's own first
        if _MIN_BPM <= coarse * relation <= _MAX_BPM:
            bpm = _refine_bpm(correlation, coarse * relation)
            candidates.append((bpm, periodicity(correlation, frames_per_minute / bpm)))
    if not candidates or max(score for _, score in candidates) < _MIN_TEMPO_CONFIDENCE:
        return []
    best = max(score for _, score in candidates)
    return [(bpm, score) for bpm, score in candidates if score >= _PERIODIC_SHARE * best]


def _refine_bpm(correlation: np.ndarray, bpm: float) -> float:
    """The tempo near ``bpm`` whose period lines up the autocorrelation peaks at every multiple of
    it: a comb over the whole track measures the period far more finely than one frame."""
    frames_per_minute = 60.0 * _frames_per_second()
    tempi = bpm * (1.0 + np.linspace(-_REFINE_SPAN, _REFINE_SPAN, _REFINE_STEPS))
    periods = frames_per_minute / tempi
    multiples = np.arange(1, max(2, int(0.6 * len(correlation) / periods.max())))
    lags = periods[:, None] * multiples[None, :]
    weights = 1.0 / np.sqrt(multiples)  # near multiples are measured over more frames
    sampled = np.interp(lags, np.arange(len(correlation)), correlation, right=0.0)
    return float(tempi[int(np.argmax((sampled * weights).sum(axis=1)))])


def _comb(envelope: np.ndarray, period: float, phases: np.ndarray) -> np.ndarray:
    """Mean of ``envelope`` at ``phase + k * period`` (frames, interpolated) for each phase."""
    count = max(1, int((len(envelope) - 1 - phases.max()) // period) + 1)
    positions = phases[:, None] + np.arange(count)[None, :] * period
    result: np.ndarray = np.interp(positions, np.arange(len(envelope)), envelope).mean(axis=1)
    return result


def _coarse_phase(flux: np.ndarray, period: float) -> float:
    """Seconds of a beat: the phase with the most onset strength on the grid, less the flux's
    lag behind the attack."""
    phases = np.linspace(0.0, period, _PHASE_STEPS, endpoint=False)
    best = float(phases[int(np.argmax(_comb(flux, period, phases)))])
    return best / _frames_per_second() - ONSET_LAG_SECONDS


def _has_pitch(features: _Features, duration: float) -> bool:
    """Whether the notes over spans of ``_KEY_SPAN_SECONDS`` fit a key (drums alone do not)."""
    frames = features.treble_sums.shape[1] - 1
    edges = np.arange(0.0, duration + _KEY_SPAN_SECONDS, _KEY_SPAN_SECONDS) * ANALYSIS_RATE / _CQT_HOP
    at = np.clip(np.round(edges).astype(int), 0, frames)
    treble = np.diff(features.treble_sums[:, at], axis=1).T
    bass = np.diff(features.bass_sums[:, at], axis=1).T
    keep = (treble.sum(axis=1) + bass.sum(axis=1)) > 0
    return bool(np.any(keep)) and _chroma_key(treble[keep], bass[keep]) is not None


def _on_beat_share(flux: np.ndarray, phase: float, beat: float) -> float:
    """The onset strength on the grid from ``phase`` over that on it and half a beat from it,
    each the strongest within a frame or two of the grid (as it peaks, by the sound)."""
    period = beat * _frames_per_second()
    at = (phase + ONSET_LAG_SECONDS) * _frames_per_second()
    near = np.arange(-2, 3)
    on = _comb(flux, period, (at + near) % period).max()
    off = _comb(flux, period, (at + period / 2 + near) % period).max()
    return float(on / max(on + off, 1e-12))


def _low_accents(
    low: np.ndarray, first: float, beat: float, beats_per_bar: int, duration: float
) -> list[float]:
    """For each beat of the bar (from ``first``) as the downbeat: the low-frequency onset
    strength (kick and bass) on the bar lines over the most that any half beat of the bar
    carries (the kick and the bass's root land together on the one; a pushed chord comes half a
    beat early, the kick does not)."""
    bar = beat * beats_per_bar
    lines = first + np.arange(int(max(0.0, duration - first - bar) / bar) + 1) * bar
    if len(lines) < 2:
        return [0.0] * beats_per_bar
    frames = np.arange(len(low))
    strength = []
    for half in range(2 * beats_per_bar):
        at = (lines + half * beat / 2 + ONSET_LAG_SECONDS) * _frames_per_second()
        strength.append(float(np.max([np.interp(at + d, frames, low) for d in range(-2, 3)], axis=0).mean()))
    top = max(max(strength), 1e-12)
    return [strength[2 * position] / top for position in range(beats_per_bar)]


def _harmonic_evidence(
    features: _Features, first: float, beat: float, beats_per_bar: int, duration: float
) -> list[float]:
    """For each beat of the bar (from ``first``) as the downbeat: how well one triad explains
    each half of each bar (a bar that straddles a chord change, or holds two, fits worse), plus
    how the bass moves to that triad's root at the bar line (bass players land on the root on
    the one), less a share of the lines over which the chord is held, over the sounding bars."""
    frames_per_second = ANALYSIS_RATE / _CQT_HOP
    frames = features.treble_sums.shape[1] - 1
    times = first + np.arange(int(max(0.0, duration - first) / beat) + 1) * beat
    at = np.clip(np.round(times * frames_per_second).astype(int), 0, frames)
    treble = np.diff(features.treble_sums[:, at], axis=1).T  # (beats, 12)
    bass = np.diff(features.bass_sums[:, at], axis=1).T
    _, names = _triad_templates()
    roots = np.array([root for root, _ in names])
    half = (beats_per_bar + 1) // 2
    halves = [slice(0, half), slice(half, beats_per_bar)] if beats_per_bar > 1 else [slice(0, 1)]
    out = []
    for position in range(beats_per_bar):
        bars = (len(treble) - position) // beats_per_bar
        if bars < 1:
            out.append(0.0)
            continue
        span = slice(position, position + bars * beats_per_bar)
        bar_treble = treble[span].reshape(bars, beats_per_bar, 12)
        bar_bass = bass[span].reshape(bars, beats_per_bar, 12)
        best = np.argmax(_triad_fits(bar_treble.sum(axis=1), bar_bass.sum(axis=1)), axis=1)
        # Each half of the bar is to fit its triad (a bar holding two chords, as at half the
        # true tempo, fits one of them only half the time).
        fits = np.mean(
            [_triad_fits(bar_treble[:, part].sum(axis=1), bar_bass[:, part].sum(axis=1)) for part in halves],
            axis=0,
        )
        # The bass's move to the root: its share on the bar's first beat less that on the beat
        # before (a symmetric measure: the constant-Q's long bass windows smear each note over
        # its neighbours, so the first beat alone favours a grid late enough to miss the last).
        root = roots[best]
        landing = bar_bass[:, 0] / np.maximum(bar_bass[:, 0].sum(axis=1, keepdims=True), 1e-12)
        before_index = position + np.arange(bars) * beats_per_bar - 1
        before = bass[np.maximum(before_index, 0)]
        before = before / np.maximum(before.sum(axis=1, keepdims=True), 1e-12)
        root_move = landing[np.arange(bars), root] - np.where(
            before_index >= 0, before[np.arange(bars), root], 0.0
        )
        energy = bar_treble.sum(axis=(1, 2)) + bar_bass.sum(axis=(1, 2))
        sounding = energy > _REST_SHARE * max(float(energy.max()), 1e-12)
        if not np.any(sounding):
            out.append(0.0)
            continue
        # Chords change at bar lines: lines where one triad carries on (half of them at twice the
        # true tempo) are lines the metre has no need of.
        both = sounding[1:] & sounding[:-1]
        held = float(np.mean(best[1:][both] == best[:-1][both])) if np.any(both) else 0.0
        out.append(float((fits[np.arange(bars), best] + root_move)[sounding].mean()) - _HELD_PENALTY * held)
    return out


def _tempo_prior(bpm: float) -> float:
    """Log-normal around ``_PRIOR_BPM``, an octave wide: listeners tap near it."""
    return float(np.exp(-0.5 * np.log2(bpm / _PRIOR_BPM) ** 2))


def _low_downbeat(low: np.ndarray, first: float, beat: float, beats_per_bar: int, duration: float) -> int:
    """The beat of the bar (from ``first``) with the most low-frequency onset strength."""
    beats = first + np.arange(int(max(0.0, duration - first) / beat)) * beat
    if len(beats) < beats_per_bar:
        return 0
    frames = (beats + ONSET_LAG_SECONDS) * _frames_per_second()
    hits = np.max([np.interp(frames + d, np.arange(len(low)), low) for d in (-1, 0, 1)], axis=0)
    return int(np.argmax([hits[k::beats_per_bar].mean() for k in range(beats_per_bar)]))


def _fine_phase(mono: np.ndarray, first: float, beat: float) -> float:
    """``first`` moved within +-25 ms to where a flux of short windows (which lags the attack by
    only a few ms; the coarse one lags it by 5-20 ms, by the sound) puts the most strength."""
    librosa = _librosa()
    mel = librosa.feature.melspectrogram(
        y=mono, sr=ANALYSIS_RATE, n_fft=_FINE_FFT, hop_length=_FINE_HOP, n_mels=_FINE_MEL_BANDS
    )
    fine = librosa.onset.onset_strength(
        S=librosa.power_to_db(mel), sr=ANALYSIS_RATE, n_fft=_FINE_FFT, hop_length=_FINE_HOP
    )
    rate = ANALYSIS_RATE / _FINE_HOP
    around = first + np.linspace(-_PHASE_SEARCH, _PHASE_SEARCH, 2 * _PHASE_SEARCH_STEPS + 1)
    period = beat * rate
    scores = _comb(np.asarray(fine, dtype=np.float64), period, (around * rate) % period)
    return float(around[int(np.argmax(scores))]) - _FINE_LAG_SECONDS


def _beats(metre: _Metre, duration: float) -> np.ndarray:
    """The grid's beats from the start to the end; one a hair before 0 (the grid's own error)
    is put at 0."""
    first = metre.first_beat
    if first < -_FIRST_SOUND_TOLERANCE:
        first += metre.period
    count = max(0, int(np.ceil((duration - first) / metre.period)))
    beats = first + np.arange(count) * metre.period
    return np.maximum(beats[beats < duration], 0.0)


def _first_downbeat(beats: np.ndarray, metre: _Metre, beats_per_bar: int, first_sound: float) -> float | None:
    """Bar 1's downbeat: the first downbeat at or after the music starts (after any pickup)."""
    if len(beats) == 0:
        return None
    # Beat 0 of the grid is metre.first_beat, or the beat after it where that fell before 0.
    skipped = round((beats[0] - metre.first_beat) / metre.period)
    position = (metre.downbeat - skipped) % beats_per_bar
    downbeats = beats[position::beats_per_bar]
    after = downbeats[downbeats >= first_sound - _FIRST_SOUND_TOLERANCE]
    return float(after[0]) if len(after) else None


# --- chords and key ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _note_dictionary() -> np.ndarray:
    """``(bins, notes)``: each note's partials on the constant-Q bins, unit columns. Partials
    fall between bins (a fifth is not a whole number of thirds of a semitone): split linearly."""
    bins = _CQT_OCTAVES * _BINS_PER_OCTAVE
    per_semitone = _BINS_PER_OCTAVE // 12
    notes = np.arange(_LOWEST_NOTE, _HIGHEST_NOTE + 1)
    atoms = np.zeros((bins, len(notes)))
    for column, note in enumerate(notes):
        for partial in range(1, _PARTIALS + 1):
            position = (note - _CQT_FMIN_MIDI) * per_semitone + _BINS_PER_OCTAVE * np.log2(partial)
            low = int(np.floor(position))
            for index, share in ((low, 1.0 - (position - low)), (low + 1, position - low)):
                if 0 <= index < bins:
                    atoms[index, column] += share * _PARTIAL_DECAY ** (partial - 1)
    return _unit_rows(atoms.T).T


def _spans_mean(spectrum: np.ndarray, starts: np.ndarray, ends: np.ndarray, skip: float) -> np.ndarray:
    """``(spans, bins)``: mean of ``spectrum``'s frames over each span, its first ``skip`` share
    left out (what rings over from before)."""
    times = np.arange(spectrum.shape[1]) * _CQT_HOP / ANALYSIS_RATE
    out = np.zeros((len(starts), spectrum.shape[0]))
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        inside = (times >= start + skip * (end - start)) & (times < end)
        if np.any(inside):
            out[i] = spectrum[:, inside].mean(axis=1)
    return out


def _span_chroma(
    spectrum: np.ndarray, starts: np.ndarray, ends: np.ndarray, skip: float
) -> tuple[np.ndarray, np.ndarray]:
    """(treble, bass) chroma, each ``(spans, 12)``, of the notes that explain each span's mean
    spectrum (its first ``skip`` share left out). Unnormalised: a quiet span stays quiet."""
    return _explain(_spans_mean(spectrum, starts, ends, skip))


def _explain(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(treble, bass) chroma, each ``(rows, 12)``, of the notes whose partials sum to each row
    of ``columns`` (``(rows, bins)`` spectra) with the least error (non-negative least squares)."""
    import scipy.optimize

    atoms = _note_dictionary()
    notes = np.arange(_LOWEST_NOTE, _HIGHEST_NOTE + 1)
    low = notes < _BASS_BELOW_MIDI
    treble = np.zeros((len(columns), 12))
    bass = np.zeros((len(columns), 12))
    for span, column in enumerate(columns):
        if np.any(column > 0):
            activation = scipy.optimize.nnls(atoms, column)[0]
            np.add.at(bass[span], notes[low] % 12, activation[low])
            np.add.at(treble[span], notes[~low] % 12, activation[~low])
    return treble, bass


def _triad_templates() -> tuple[np.ndarray, list[tuple[int, bool]]]:
    """Unit templates of the 24 triads and their (root, minor)."""
    names = [(root, minor) for minor in (False, True) for root in range(12)]
    templates = np.zeros((len(names), 12))
    for row, (root, minor) in enumerate(names):
        templates[row, [root, (root + (3 if minor else 4)) % 12, (root + 7) % 12]] = 1.0
    return _unit_rows(templates), names


def _triad_fits(treble: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """``(spans, 24)``: how well each triad fits each span's (treble, bass) chroma, 0..1. The
    treble's cosine with the triad and the bass's (half the root's share of the bass, half its
    cosine with the triad: a bass line walks the chord's notes, landing most on the root),
    weighed by how much of the span is treble: where the bass plays alone, its upper partials
    are all the treble there is (a bass's fifth and F reads as a C chord)."""
    templates, names = _triad_templates()
    cosine = _unit_rows(treble) @ templates.T
    shares = (bass / np.maximum(bass.sum(axis=1, keepdims=True), 1e-12))[:, [root for root, _ in names]]
    votes = 0.5 * shares + 0.5 * (_unit_rows(bass) @ templates.T)
    treble_weight = np.sqrt(treble.sum(axis=1) / np.maximum(treble.sum(axis=1) + bass.sum(axis=1), 1e-12))
    fits: np.ndarray = treble_weight[:, None] * cosine + (1.0 - treble_weight[:, None]) * votes
    return fits


@dataclass(frozen=True)
class _Bars:
    """The bars from the first downbeat to the last sounding one."""

    treble: np.ndarray  # (bars, 12) chroma of the notes from C3 up
    bass: np.ndarray  # (bars, 12) chroma of the notes below C3
    fits: np.ndarray  # (bars, 24): how well each triad fits, 0..1 (see _bars)
    sounding: np.ndarray  # (bars,) bool: False for a rest


def _bars(spectrum: np.ndarray, downbeat: float | None, bar_seconds: float, duration: float) -> _Bars | None:
    """The bars from ``downbeat`` (those at least half inside the audio) to the last that sounds;
    None where none does."""
    if downbeat is None:
        return None
    count = int((duration - downbeat) / bar_seconds + 0.5)  # bars at least half inside the audio
    if count < 1:
        return None
    starts = downbeat + np.arange(count) * bar_seconds
    treble, bass = _span_chroma(spectrum, starts, starts + bar_seconds, _BAR_SKIP)
    energy = np.linalg.norm(treble, axis=1) + np.linalg.norm(bass, axis=1)
    sounding = energy > max(0.0, _REST_SHARE * float(energy.max()))
    if not np.any(sounding):
        return None
    last = int(np.flatnonzero(sounding)[-1]) + 1  # trailing silence is no bar of the song
    fits = _triad_fits(treble, bass)
    return _Bars(treble[:last], bass[:last], fits[:last], sounding[:last])


def _key_and_chords(bars: _Bars) -> tuple[Key | None, list[tuple[int, bool]], list[float]]:
    """The key and each bar's triad and confidence. The chords first decide the key between the
    chroma's and its relative; then, knowing the key, they are read again with a bonus for the
    triads in it (a bar whose third is barely heard, a power chord, is the key's triad). No key
    (no pitch to speak of, as with drums alone): no chords."""
    chroma_key = _chroma_key(bars.treble, bars.bass)
    if chroma_key is None:
        return None, [], []
    triads, confidence = _label_bars(bars, None)
    key = _decide_key(chroma_key, triads, confidence)
    triads, confidence = _label_bars(bars, key)
    return _decide_key(chroma_key, triads, confidence), triads, confidence


def _label_bars(bars: _Bars, key: Key | None) -> tuple[list[tuple[int, bool]], list[float]]:
    """Each bar's best triad and its share of a softmax over the 24 (0 for a rest, which keeps
    the chord before: there is no "no chord" symbol)."""
    _, names = _triad_templates()
    fits = bars.fits + (_IN_KEY_BONUS * _in_key(key) if key is not None else 0.0)
    triads: list[tuple[int, bool]] = []
    confidence: list[float] = []
    for row, sounding in zip(fits, bars.sounding, strict=True):
        best = int(np.argmax(row))
        if not sounding:
            triads.append(triads[-1] if triads else names[best])
            confidence.append(0.0)
            continue
        weights = np.exp((row - row[best]) / _SOFTMAX_TEMPERATURE)
        triads.append(names[best])
        confidence.append(float(weights[best] / weights.sum()))
    return triads, confidence


def _in_key(key: Key) -> np.ndarray:
    """(24,) 1 for the triads whose notes are all in ``key`` (a minor key's raised seventh
    included: its major dominant is as much at home as the minor one)."""
    scale = set(key.scale)
    if key.mode == "minor":
        scale.add((key.tonic + 11) % 12)
    _, names = _triad_templates()
    return np.array(
        [all((root + step) % 12 in scale for step in (0, 3 if minor else 4, 7)) for root, minor in names],
        dtype=np.float64,
    )


def _spans_key(spectrum: np.ndarray, duration: float) -> Key | None:
    """The key from chroma over spans of ``_KEY_SPAN_SECONDS`` (no bars to go by)."""
    starts = np.arange(0.0, duration, _KEY_SPAN_SECONDS)
    return _chroma_key(*_span_chroma(spectrum, starts, starts + _KEY_SPAN_SECONDS, 0.0))


def _name(key: Key | None) -> str | None:
    return None if key is None else key.name


def _chroma_key(treble: np.ndarray, bass: np.ndarray) -> Key | None:
    """Krumhansl-Kessler over the spans' chroma, each span counted alike (a loud chorus does not
    outweigh a quiet verse)."""
    if len(treble) == 0:
        return None
    estimate = estimate_key(_unit_rows(treble + bass))
    if estimate is None or estimate.confidence < _MIN_KEY_CORRELATION:
        return None
    return estimate.key


def _relative(key: Key) -> Key:
    if key.mode == "major":
        return Key((key.tonic + 9) % 12, "minor")
    return Key((key.tonic + 3) % 12, "major")


def _tonic_weight(key: Key, triads: Sequence[tuple[int, bool]], confidence: Sequence[float]) -> float:
    """How much the bars rest on ``key``'s tonic chord: mostly whether the first sounding bar is
    on it, then the last (songs start and end at home, but an excerpt may stop anywhere), then the
    share of bars on it (by confidence; a progression cycling through both tonics gives both about
    the same)."""
    home = (key.tonic, key.mode == "minor")
    sounding = [t for t, c in zip(triads, confidence, strict=True) if c > 0]
    if not sounding:
        return 0.0
    share = sum(c for triad, c in zip(triads, confidence, strict=True) if triad == home) / len(triads)
    return _FIRST_BAR_WEIGHT * (sounding[0] == home) + _LAST_BAR_WEIGHT * (sounding[-1] == home) + share


def _decide_key(chroma_key: Key, triads: Sequence[tuple[int, bool]], confidence: Sequence[float]) -> Key:
    """The chroma's key or its relative, whichever the chords come home to (ties: the chroma's);
    or, where the chords fit the key a fifth away better (more bars on its own triads: the
    profiles can take a song for its dominant's key when it dwells on the dominant), that key or
    its relative, decided the same way."""
    sounding = [triad for triad, c in zip(triads, confidence, strict=True) if c > 0]

    def fit(key: Key) -> float:
        in_key = _in_key(key)
        _, names = _triad_templates()
        index = {name: row for row, name in enumerate(names)}
        return float(np.mean([in_key[index[triad]] for triad in sounding])) if sounding else 0.0

    def home(key: Key) -> Key:
        relative = _relative(key)
        if _tonic_weight(relative, triads, confidence) > _tonic_weight(key, triads, confidence):
            return relative
        return key

    best = chroma_key
    for step in (7, 5):  # the dominant's key and the subdominant's
        neighbour = Key((chroma_key.tonic + step) % 12, chroma_key.mode)
        if fit(neighbour) > fit(best):
            best = neighbour
    return home(best)


def _chord_symbol(triad: tuple[int, bool], key: Key | None) -> str:
    """``"Bbm"``: spelled as the key spells its notes (sharps without a key)."""
    root, minor = triad
    return (key or Key(0, "major")).note_name(root) + ("m" if minor else "")
