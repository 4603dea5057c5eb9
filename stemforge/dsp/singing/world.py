"""WORLD (pyworld) as the singer's vocal folds: a spoken syllable analysed into frames of
spectral envelope and aperiodicity, stretched to a note's length, and resynthesized on the
pitch curve we choose.

espeak-ng speaks at 22.05 kHz; WORLD's frames there (FFT 1024) have the same 21.5 Hz bin
spacing as at 44.1 kHz (FFT 2048), so the envelope is carried up by adding the bins above
11 kHz: a falling continuation of the 8-10 kHz level, mostly aperiodic (breath, air).
"""

import functools
import importlib
import importlib.metadata
import math
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

from stemforge.dsp.singing.phonemes import ESPEAK_RATE, speak

FRAME_S = 0.005
SYNTH_RATE = 44_100
_FFT_IN = 1024  # at ESPEAK_RATE
_FFT_OUT = 2048  # at SYNTH_RATE: same bin spacing
_BINS_IN = _FFT_IN // 2 + 1
_TRIM_DB = 45.0  # frames this far under the loudest are the silence around the syllable
_NUCLEUS_DB = 8.0  # the vowel: voiced frames within this of the loudest
_UNVOICED_MAX_DB = -10.0  # unvoiced frames at most this loud, relative to the vowel


def _import_pyworld() -> Any:
    """pyworld 0.3.5's ``__init__`` reads its version through ``pkg_resources``, which newer
    setuptools no longer ship; lend it a stand-in from ``importlib.metadata`` for the import."""
    if "pyworld" in sys.modules:
        return sys.modules["pyworld"]
    stand_in = None
    try:
        importlib.import_module("pkg_resources")
    except ImportError:
        stand_in = types.ModuleType("pkg_resources")
        stand_in.get_distribution = lambda name: types.SimpleNamespace(  # type: ignore[attr-defined]
            version=importlib.metadata.version(name)
        )
        sys.modules["pkg_resources"] = stand_in
    try:
        return importlib.import_module("pyworld")
    finally:
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


@functools.lru_cache(maxsize=1)
def pyworld_problem() -> str | None:
    try:
        _import_pyworld()
    except Exception as exc:
        return f"pyworld cannot be imported ({type(exc).__name__}: {exc})"
    return None


def pyworld() -> Any:
    return _import_pyworld()


@dataclass(frozen=True, eq=False)
class SyllableSound:
    """A spoken syllable as WORLD frames (``FRAME_S`` apart), silence trimmed."""

    log_sp: np.ndarray  # (frames, 513) float32: log of the power spectral envelope
    ap: np.ndarray  # (frames, 513) float32: aperiodicity 0 (harmonic) .. 1 (noise)
    voiced: np.ndarray  # (frames,) bool
    steady: tuple[int, int]  # [start, end) frames of the vowel's steady part: what is stretched
    log_level: float  # mean log power of the steady part (for levelling syllables)

    @property
    def frames(self) -> int:
        return int(self.voiced.size)


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    best, start = (0, 0), None
    for i, on in enumerate([*mask.tolist(), False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def analyse(audio: np.ndarray, diphthong: bool = False) -> SyllableSound:
    """WORLD analysis of one spoken syllable (mono, ``ESPEAK_RATE``)."""
    pw = pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, times = pw.dio(x, ESPEAK_RATE, f0_floor=70.0, f0_ceil=700.0, frame_period=FRAME_S * 1000)
    f0 = pw.stonemask(x, f0, times, ESPEAK_RATE)
    voiced = f0 > 0
    if voiced.any():
        # Our espeak-ng voice is monotone: one f0 for every voiced frame cures octave slips.
        f0 = np.where(voiced, float(np.median(f0[voiced])), 0.0)
    sp = pw.cheaptrick(x, f0, times, ESPEAK_RATE, fft_size=_FFT_IN)
    ap = pw.d4c(x, f0, times, ESPEAK_RATE, fft_size=_FFT_IN)
    energy = 10.0 * np.log10(sp.sum(axis=1) + 1e-30)
    loud = np.flatnonzero(energy > energy.max() - _TRIM_DB)
    first, last = int(loud[0]), int(loud[-1]) + 1
    sp, ap, voiced, energy = sp[first:last], ap[first:last], voiced[first:last], energy[first:last]
    nucleus = voiced & (energy >= energy.max() - _NUCLEUS_DB)
    v0, v1 = _longest_run(nucleus) if nucleus.any() else (0, len(energy))
    length = v1 - v0
    if diphthong:  # hold the first vowel; the glide to the second comes at the end
        s0, s1 = v0 + int(0.15 * length), v0 + int(0.5 * length)
    else:
        s0, s1 = v0 + int(0.2 * length), v1 - int(0.25 * length)
    s1 = max(s1, s0 + 2)
    s1 = min(s1, len(energy))
    s0 = min(s0, s1 - 1)
    level = float(np.log(np.mean(sp[s0:s1].sum(axis=1))))
    # Unvoiced frames (fricatives, bursts, and the odd frame where espeak-ng's voicing stops
    # abruptly) no louder than a fricative should be, next to the vowel.
    excess = np.maximum(0.0, np.log(sp.sum(axis=1) + 1e-30) - level - _UNVOICED_MAX_DB * np.log(10) / 10)
    sp = sp * np.exp(-np.where(voiced, 0.0, excess))[:, None]
    # A sung tone is clean: the voiced frames' aperiodicity under a gentle breathiness curve
    # (espeak-ng's formant voice analyses as half noise above 3 kHz, which sounds hoarse).
    hz = np.arange(_BINS_IN) * ESPEAK_RATE / _FFT_IN
    breathiness = 0.02 + 0.3 * np.clip((hz - 2500.0) / 6000.0, 0.0, 1.0) ** 2
    ap = np.where(voiced[:, None], np.minimum(ap, breathiness[None, :]), ap)
    log_sp = np.log(np.maximum(sp, 1e-30)).astype(np.float32)
    for array in (log_sp, voiced):
        array.setflags(write=False)
    ap32 = ap.astype(np.float32)
    ap32.setflags(write=False)
    return SyllableSound(log_sp, ap32, voiced, (s0, s1), level)


@functools.lru_cache(maxsize=160)
def syllable_sound(phonemes: str, voice_name: str, diphthong: bool) -> SyllableSound:
    return analyse(speak(phonemes, voice_name), diphthong)


def stretch_indices(
    frames: int, steady: tuple[int, int], length: int, consonant_share: float = 0.6
) -> np.ndarray:
    """Fractional source frames for ``frames`` output frames of a syllable ``length`` frames
    long: the consonants before and after the steady vowel at their own speed (squeezed when
    they would take more than ``consonant_share`` of the note), the steady vowel stretched over
    the rest."""
    if frames <= 0:
        return np.zeros(0)
    s0, s1 = steady
    onset, coda = s0, length - s1
    scale = min(1.0, consonant_share * frames / (onset + coda)) if onset + coda else 1.0
    out_onset, out_coda = round(onset * scale), round(coda * scale)
    while out_onset + out_coda > frames - 1 and out_onset + out_coda > 0:
        if out_onset >= out_coda:
            out_onset -= 1
        else:
            out_coda -= 1
    out_steady = frames - out_onset - out_coda
    parts = [
        np.linspace(0.0, s0, out_onset, endpoint=False),
        np.linspace(s0, s1 - 1, out_steady),
        np.linspace(s1, length - 1, out_coda),
    ]
    return np.concatenate(parts)[:frames]


def sample_frames(sound: SyllableSound, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The syllable's frames at fractional ``indices``: envelopes interpolated (in log power),
    voicing from the nearest frame."""
    low = np.clip(np.floor(indices).astype(int), 0, sound.frames - 1)
    high = np.minimum(low + 1, sound.frames - 1)
    w = (indices - low)[:, None]
    log_sp = sound.log_sp[low] * (1 - w) + sound.log_sp[high] * w
    ap = sound.ap[low] * (1 - w) + sound.ap[high] * w
    voiced = sound.voiced[np.clip(np.round(indices).astype(int), 0, sound.frames - 1)]
    return log_sp, ap, voiced


def extend_to_synth_rate(log_sp: np.ndarray, ap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """513-bin frames at 22.05 kHz to 1025-bin frames at 44.1 kHz (see the module's note)."""
    hz = np.arange(_FFT_OUT // 2 + 1) * SYNTH_RATE / _FFT_OUT
    ref_bins = (hz[:_BINS_IN] >= 7000) & (hz[:_BINS_IN] <= 9500)
    ref = np.log(np.mean(np.exp(log_sp[:, ref_bins]), axis=1, keepdims=True))
    high = hz[_BINS_IN:]
    slope = -3.5 * np.log(high / 9000.0)  # power falls about 10 dB per octave above 9 kHz
    log_high = ref + slope[None, :]
    ap_edge = ap[:, -1:]
    ramp = np.clip((high - high[0]) / 4000.0, 0.0, 1.0)[None, :]
    ap_high = ap_edge + (0.95 - ap_edge) * np.maximum(ramp, 0.5)
    sp = np.exp(np.concatenate([log_sp, log_high], axis=1))
    return np.ascontiguousarray(sp, dtype=np.float64), np.ascontiguousarray(
        np.clip(np.concatenate([ap, ap_high], axis=1), 0.0, 1.0), dtype=np.float64
    )


def synthesize(f0: np.ndarray, log_sp: np.ndarray, ap: np.ndarray) -> np.ndarray:
    """WORLD synthesis at ``SYNTH_RATE``: float64 mono, ``len(f0) * FRAME_S`` seconds."""
    sp, ap_full = extend_to_synth_rate(log_sp, ap)
    audio = pyworld().synthesize(
        np.ascontiguousarray(f0, dtype=np.float64), sp, ap_full, SYNTH_RATE, FRAME_S * 1000
    )
    return np.asarray(audio, dtype=np.float64)


def frames_for(seconds: float) -> int:
    return max(1, math.ceil(seconds / FRAME_S - 1e-9))
