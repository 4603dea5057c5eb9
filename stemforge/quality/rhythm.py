"""Time: measured tempo and how sure it is, where the stem's beat sits against the request's
grid, where its first downbeat falls, and how many onsets it has.

Everything is measured on one onset-strength envelope (librosa, spectral flux on a mel
spectrogram) of the stem's mono mix resampled to 22.05 kHz (soxr); tempo itself is the service's
``stemforge.dsp.tempo.estimate_bpm``. librosa is imported lazily: it is a heavy import.
"""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from stemforge.dsp.tempo import estimate_bpm

ANALYSIS_RATE = 22_050
HOP = 256  # 11.6 ms frames at 22.05 kHz: the grid offset is measured to a few ms
# Tempi a stem may legitimately show against the asked one: a bass in half notes measures half
# the tempo, a shuffle in dotted quarters two thirds of it. Anything else is off tempo.
METRICAL_RELATIONS = tuple(
    Fraction(n, d) for n, d in ((1, 1), (1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (1, 4), (4, 1))
)
_CONFIDENCE_BEATS = 4  # autocorrelation is averaged over lags of 1..4 beats
MIN_JUDGED_BEATS = 8  # shorter stems get no tempo confidence (and no tempo or grid warnings)
MIN_TEMPO_BPM, MAX_TEMPO_BPM = 20.0, 480.0  # readings outside are not tempi
_SETTLE_SPAN = 0.02  # the asked tempo is fine-tuned within +-2 %
_SETTLE_SHARE = 0.9  # ...when the onsets support it at least 90 % as well as the measured one
# The grid is read at eighth notes: an off-beat bass (house) or guitar (reggae) is on the grid.
GRID_DIVISION = 2
# A detected onset peak comes this long after the attack (spectral flux over 93 ms frames);
# measured on click tracks (tests/quality/test_rhythm.py) and taken off every grid offset.
ONSET_LAG_SECONDS = 0.0091
# The first sound: the first 5 ms window within 30 dB of the stem's loudest window.
_FIRST_SOUND_WINDOW_SECONDS = 0.005
_FIRST_SOUND_BELOW_PEAK_DB = 30.0


@dataclass(frozen=True)
class RhythmMetrics:
    tempo_bpm: float | None  # None where the stem has no onsets at all
    tempo_confidence: float | None  # 0..1: how periodic the onsets are; None: too short to judge
    tempo_relation: str | None  # measured / asked as the nearest metrical ratio ("1", "1/2", "2/3"...)
    tempo_error_percent: float | None  # measured against asked x relation, signed
    grid_offset_ms: float | None  # onsets' phase against the request's eighth-note grid, signed
    grid_coherence: float  # 0..1: how tightly onsets cluster at that phase
    first_downbeat_offset_ms: float | None  # first onset against the nearest bar line, signed
    onset_density_per_second: float


def to_analysis_mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The stem's mono mix at ``ANALYSIS_RATE``, float32 (halves the cost of every feature)."""
    import soxr

    mono = (audio.mean(axis=1) if audio.ndim == 2 else audio).astype(np.float32)
    if sample_rate == ANALYSIS_RATE:
        return mono
    return np.asarray(soxr.resample(mono, sample_rate, ANALYSIS_RATE, quality="HQ"), dtype=np.float32)


def onset_envelope(mono: np.ndarray, sample_rate: int = ANALYSIS_RATE) -> np.ndarray:
    import librosa

    envelope = librosa.onset.onset_strength(y=mono, sr=sample_rate, hop_length=HOP)
    return np.asarray(envelope, dtype=np.float64)


def autocorrelation(envelope: np.ndarray) -> np.ndarray:
    """Normalized (lag 0 = 1) autocorrelation of the mean-removed envelope, by FFT: a 300 s stem
    has 26,000 frames, too many for a direct correlation."""
    centred = envelope - envelope.mean()
    size = 1 << int(np.ceil(np.log2(2 * len(centred))))
    spectrum = np.fft.rfft(centred, size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum), size)[: len(centred)]
    return correlation / correlation[0] if correlation[0] > 0 else np.zeros(len(centred))


def periodicity(correlation: np.ndarray, period_frames: float) -> float:
    """Mean autocorrelation at 1..4 periods, 0..1: a click track scores near 1, noise near 0."""
    lags = period_frames * np.arange(1, _CONFIDENCE_BEATS + 1)
    lags = lags[lags < len(correlation) - 1]
    if len(lags) == 0 or period_frames <= 0:
        return 0.0
    return float(np.clip(np.interp(lags, np.arange(len(correlation)), correlation).mean(), 0.0, 1.0))


def settle_tempo(
    correlation: np.ndarray, measured_bpm: float, asked_bpm: float, tolerance_percent: float = 1.0
) -> tuple[float, float]:
    """(tempo, confidence). Beat tracking may pick a tempo that the onsets support no better than
    the asked one or a metrical relative of it (an arpeggio's accents, a pad's swells): then the
    simplest such relative of the asked grid is the reading, fine-tuned to the onsets. A stem
    really off tempo (115 BPM asked 120) supports the asked period far worse and keeps its own."""
    frames_per_minute = 60.0 * ANALYSIS_RATE / HOP
    measured_score = periodicity(correlation, frames_per_minute / measured_bpm)
    if abs(metrical_relation(measured_bpm, asked_bpm)[1]) <= tolerance_percent:
        return measured_bpm, measured_score
    for relation in METRICAL_RELATIONS:  # simplest first
        candidate = asked_bpm * float(relation)
        if not MIN_TEMPO_BPM <= candidate <= MAX_TEMPO_BPM:
            continue
        fine = candidate * (1.0 + np.linspace(-_SETTLE_SPAN, _SETTLE_SPAN, 161))
        scores = [periodicity(correlation, frames_per_minute / bpm) for bpm in fine]
        index = int(np.argmax(scores))
        if scores[index] >= _SETTLE_SHARE * measured_score:
            return float(fine[index]), float(scores[index])
    return measured_bpm, measured_score


def metrical_relation(measured_bpm: float, asked_bpm: float) -> tuple[Fraction, float]:
    """The metrical ratio nearest ``measured / asked`` and the error against it, in percent."""
    ratio = measured_bpm / asked_bpm
    relation = min(METRICAL_RELATIONS, key=lambda r: abs(np.log(ratio / float(r))))
    return relation, (ratio / float(relation) - 1.0) * 100.0


def format_relation(relation: Fraction) -> str:
    if relation.denominator == 1:
        return str(relation.numerator)
    return f"{relation.numerator}/{relation.denominator}"


def grid_phase(times: np.ndarray, weights: np.ndarray, period_seconds: float) -> tuple[float, float]:
    """(offset in seconds within (-period/2, period/2], coherence 0..1) of onsets at ``times``
    against a grid of lines at k x ``period_seconds``: their circular mean, weighted by onset
    strength. Coherence 1: every onset at the same phase; near 0: no common phase."""
    total = float(np.sum(weights))
    if len(times) == 0 or total <= 0:
        return 0.0, 0.0
    phasor = np.sum(weights * np.exp(2j * np.pi * times / period_seconds)) / total
    return float(np.angle(phasor)) / (2 * np.pi) * period_seconds, float(np.abs(phasor))


def first_sound_seconds(mono: np.ndarray, sample_rate: int) -> float | None:
    """Start of the first 5 ms window whose RMS is within 30 dB of the loudest window's."""
    window = max(1, int(_FIRST_SOUND_WINDOW_SECONDS * sample_rate))
    count = len(mono) // window
    if count == 0:
        return None
    rms = np.sqrt(np.mean(mono[: count * window].astype(np.float64).reshape(count, window) ** 2, axis=1))
    peak = float(rms.max())
    if peak <= 0:
        return None
    loud = np.flatnonzero(rms >= peak * 10 ** (-_FIRST_SOUND_BELOW_PEAK_DB / 20))
    return float(loud[0] * window / sample_rate)


def onset_frames(envelope: np.ndarray, sample_rate: int, hop: int) -> np.ndarray:
    """Frames of the envelope's onset peaks (librosa's peak picking)."""
    import librosa

    frames = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=hop)
    return np.asarray(frames, dtype=np.int64)


def rhythm_metrics(mono: np.ndarray, asked_bpm: float, beats_per_bar: int = 4) -> RhythmMetrics:
    """Every time metric of a stem's mono mix at ``ANALYSIS_RATE`` (``to_analysis_mono``)."""
    seconds = len(mono) / ANALYSIS_RATE
    envelope = onset_envelope(mono)
    peaks = onset_frames(envelope, ANALYSIS_RATE, HOP)
    onsets = peaks * HOP / ANALYSIS_RATE
    density = len(onsets) / seconds if seconds > 0 else 0.0
    if not np.any(envelope > 0) or len(envelope) < 8:
        return RhythmMetrics(None, 0.0, None, None, None, 0.0, None, density)
    measured = estimate_bpm(mono, ANALYSIS_RATE, start_bpm=asked_bpm)
    if not measured > 0:
        return RhythmMetrics(None, 0.0, None, None, None, 0.0, None, density)
    measured, settled = settle_tempo(autocorrelation(envelope), measured, asked_bpm)
    # Too few beats for an autocorrelation to mean anything: the tempo is reported, not judged.
    confidence = settled if seconds * asked_bpm / 60.0 >= MIN_JUDGED_BEATS else None
    relation, error = metrical_relation(measured, asked_bpm)
    beat = 60.0 / asked_bpm
    offset, coherence = grid_phase(onsets, envelope[peaks], beat / GRID_DIVISION)
    offset -= ONSET_LAG_SECONDS
    first = first_sound_seconds(mono, ANALYSIS_RATE)
    first_downbeat = None
    if first is not None:
        bar = beats_per_bar * beat
        first_downbeat = float(first - round(first / bar) * bar)
    return RhythmMetrics(
        tempo_bpm=measured,
        tempo_confidence=confidence,
        tempo_relation=format_relation(relation),
        tempo_error_percent=error,
        grid_offset_ms=offset * 1000.0,
        grid_coherence=coherence,
        first_downbeat_offset_ms=None if first_downbeat is None else first_downbeat * 1000.0,
        onset_density_per_second=density,
    )
