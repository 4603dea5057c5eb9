"""The singer: a vocal part (notes) and words to a sung take.

For each phrase: every syllable is spoken by espeak-ng, analysed by WORLD, its consonants
kept at speaking speed and its vowel stretched over the syllable's notes; the frames of the
phrase are joined, levelled per syllable, shaped by the notes' velocities and the re-articulation
dips, and resynthesized by WORLD on the phrase's pitch curve (portamento, vibrato, scoop,
drift). Breaths go into the rests before phrases.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal

from stemforge.dsp.render import pan_mono
from stemforge.dsp.singing.breath import BREATH_LEVEL_DB, breath, breath_window
from stemforge.dsp.singing.curves import pitch_curve, rearticulation_gain
from stemforge.dsp.singing.line import place, split_phrases
from stemforge.dsp.singing.lyrics import Span, line_syllables, lyric_lines, neutral_phrase, set_lyrics
from stemforge.dsp.singing.phonemes import VOICES, Voice, is_diphthong
from stemforge.dsp.singing.world import (
    FRAME_S,
    SYNTH_RATE,
    frames_for,
    sample_frames,
    stretch_indices,
    syllable_sound,
    synthesize,
)
from stemforge.music.notes import Note, Part
from stemforge.music.parts import compose_part
from stemforge.music.plan import SongPlan, rng_for

VOICE_NAME = "espeak-ng+world"
_MAX_LEAD_S = 0.09  # a syllable's consonants start at most this long before its note
_RELEASE_S = 0.06  # the voice dies away over this after a phrase's last note
_BAND_STEMS = ("piano", "guitar")
_EDGE_S = 0.004  # fades at a phrase's edges in the mix buffer


@dataclass(frozen=True)
class SungLine:
    audio: np.ndarray  # (frames, 2) float32
    part: Part  # the notes as sung: moved by octaves, split for extra syllables
    phrases: tuple[tuple[Span, ...], ...]
    singer: str  # the espeak-ng voice variant
    shift: int  # semitones the composed line was moved (whole octaves)
    lyrics: bool  # sung on the request's words (else neutral syllables)
    breaths: tuple[tuple[float, float], ...]  # (start, end) seconds of each breath
    seconds: float = 0.0  # how long the singing took to render
    spans: int = field(default=0)

    @property
    def info(self) -> dict[str, Any]:
        """For the stem's ``info``: how the vocals were made."""
        return {
            "renderer": "dsp",
            "voice": VOICE_NAME,
            "singer": self.singer,
            "lyrics": "given" if self.lyrics else "neutral syllables",
            "syllables": self.spans,
            "octave_shift": self.shift,
        }


def band_pitches(plan: SongPlan) -> list[int]:
    """The chords' pitches (piano and guitar above a left-hand or open-string bass)."""
    return [n.pitch for stem in _BAND_STEMS for n in compose_part(plan, stem).notes if n.pitch >= 52]


def _note_index(notes: list[Note], t: np.ndarray) -> np.ndarray:
    starts = np.array([n.start for n in notes])
    return np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(notes) - 1)


def render_phrase(spans: list[Span], voice: Voice, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One phrase, mono at ``SYNTH_RATE``, and the time (seconds) its first sample sounds."""
    sounds = [
        syllable_sound(s.syllable.phonemes, voice.name, is_diphthong(s.syllable.nucleus)) for s in spans
    ]
    leads = []
    for i, (span, sound) in enumerate(zip(spans, sounds, strict=True)):
        lead = min(0.8 * sound.steady[0] * FRAME_S, _MAX_LEAD_S)
        if i:
            lead = min(lead, 0.35 * (span.start - spans[i - 1].start))
        leads.append(lead)
    t0 = spans[0].start - leads[0]
    n = frames_for(spans[-1].end + _RELEASE_S - t0)
    times = t0 + np.arange(n) * FRAME_S
    bounds = [
        min(n, max(0, round((s.start - lead - t0) / FRAME_S))) for s, lead in zip(spans, leads, strict=True)
    ]
    bounds = [*np.maximum.accumulate(bounds).tolist(), n]
    bins = sounds[0].log_sp.shape[1]
    log_sp = np.zeros((n, bins))
    ap = np.ones((n, bins))
    voiced = np.zeros(n, dtype=bool)
    consonant_at: list[float | None] = []  # the middle of each syllable's onset consonants
    for i, sound in enumerate(sounds):
        k0, k1 = bounds[i], bounds[i + 1]
        consonant_at.append(None)
        if k1 <= k0:
            continue
        indices = stretch_indices(k1 - k0, sound.steady, sound.frames)
        if spans[i].syllable.onset:
            consonant_at[-1] = t0 + (k0 + 0.5 * np.count_nonzero(indices < sound.steady[0])) * FRAME_S
        sp_i, ap_i, voiced_i = sample_frames(sound, indices)
        log_sp[k0:k1] = sp_i - sound.log_level  # every syllable's vowel at the same level
        ap[k0:k1], voiced[k0:k1] = ap_i, voiced_i
    # Smooth the joins between syllables over a few frames.
    source = log_sp.copy()
    for k in bounds[1:-1]:
        for j in range(max(1, k - 2), min(n - 1, k + 2)):
            log_sp[j] = 0.25 * source[j - 1] + 0.5 * source[j] + 0.25 * source[j + 1]
    notes = [note for span in spans for note in span.notes]
    soft = [j > 0 or not span.syllable.onset for span in spans for j in range(len(span.notes))]
    dip_at = [
        consonant_at[i] if j == 0 else None for i, span in enumerate(spans) for j in range(len(span.notes))
    ]
    velocity_db = np.array([(note.velocity - 88) * 0.25 for note in notes])[_note_index(notes, times)]
    velocity_db = np.convolve(np.pad(velocity_db, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    gain_db = velocity_db + 20.0 * np.log10(rearticulation_gain(notes, times, soft, at=dip_at))
    edges = np.ones(n)
    edges[: min(3, n)] = np.linspace(0.1, 1.0, min(3, n))
    tail = min(6, n)
    edges[n - tail :] *= np.linspace(1.0, 0.001, tail)
    gain_db += 20.0 * np.log10(edges)
    log_sp += (gain_db * np.log(10.0) / 10.0)[:, None]  # dB (amplitude) to log power
    pitch = pitch_curve(notes, times, rng)
    f0 = np.where(voiced, 440.0 * 2.0 ** ((pitch - 69.0) / 12.0), 0.0)
    return synthesize(f0, log_sp, ap), t0


def _place(buffer: np.ndarray, audio: np.ndarray, start_s: float, rate: int) -> None:
    start = round(start_s * rate)
    if start < 0:
        audio, start = audio[-start:], 0
    audio = audio[: max(0, buffer.size - start)].copy()
    edge = min(audio.size // 2, round(_EDGE_S * rate))
    if edge:
        ramp = np.linspace(0.0, 1.0, edge)
        audio[:edge] *= ramp
        audio[audio.size - edge :] *= ramp[::-1]
    buffer[start : start + audio.size] += audio


def sing_line(part: Part, plan: SongPlan, lyrics: str | None, sample_rate: int) -> SungLine:
    """``part`` (the composed vocal line) sung on ``lyrics`` (None: neutral syllables), as
    ``(frames, 2)`` float32 of the plan's length at ``sample_rate``, centred (``part.pan``)."""
    began = time.perf_counter()
    rng = rng_for(plan.seed, "vocals:singer")
    voice = VOICES[int(rng.integers(len(VOICES)))]
    notes, shift = place(part.sorted_notes(), plan, band_pitches(plan))
    phrases = split_phrases(notes, plan.beat_seconds)
    lines = [line_syllables(words) for words in lyric_lines(lyrics)] if lyrics else []
    lines = [line for line in lines if line]
    setting = set_lyrics(phrases, lines) if lines else [neutral_phrase(phrase, rng) for phrase in phrases]
    setting = [spans for spans in setting if spans]
    length = round(plan.num_frames * SYNTH_RATE / 44_100)
    mono = np.zeros(length)
    starts: list[float] = []
    for spans in setting:
        audio, start = render_phrase(spans, voice, rng)
        _place(mono, audio, start, SYNTH_RATE)
        starts.append(start)
    sounding = np.abs(mono) > 1e-4
    voice_rms = float(np.sqrt(np.mean(mono[sounding] ** 2))) if sounding.any() else 0.0
    breaths: list[tuple[float, float]] = []
    breath_rng = rng_for(plan.seed, "vocals:breath")
    previous_end = 0.0
    for spans, start in zip(setting, starts, strict=True):
        window = breath_window(previous_end, start)
        if window is not None and voice_rms > 0:
            inhale = breath(window[1] - window[0], SYNTH_RATE, breath_rng)
            _place(mono, inhale * voice_rms * 10.0 ** (BREATH_LEVEL_DB / 20.0), window[0], SYNTH_RATE)
            breaths.append(window)
        previous_end = spans[-1].end + _RELEASE_S
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak > 0:
        mono *= 0.5 / peak
    if sample_rate != SYNTH_RATE:
        mono = signal.resample_poly(mono, sample_rate, SYNTH_RATE)
    frames = round(plan.num_frames * sample_rate / 44_100)
    mono = np.pad(mono[:frames], (0, max(0, frames - mono.size)))
    sung_notes = [note for spans in setting for span in spans for note in span.notes]
    sung = Part(part.stem, part.instrument, notes=sung_notes, variations=part.variations, pan=part.pan)
    return SungLine(
        audio=pan_mono(mono.astype(np.float32), part.pan),
        part=sung,
        phrases=tuple(tuple(spans) for spans in setting),
        singer=voice.name,
        shift=shift,
        lyrics=bool(lines),
        breaths=tuple(breaths),
        seconds=time.perf_counter() - began,
        spans=sum(len(spans) for spans in setting),
    )
