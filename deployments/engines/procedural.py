"""The procedural engine: stems from music theory and synthesis, no model, no GPU.

First version: drums on the beat grid, bass on chord roots, chord instruments playing the
progression and a sung line, all rendered from the same spec so the stems line up.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from deployments.engines.base import EngineResult, RenderedStem
from deployments.music.chords import parse_chord
from deployments.music.spec import SAMPLE_RATE, MusicSpec
from deployments.settings import Settings

DEFAULT_PROGRESSION = ("C", "G", "Am", "F")


def _midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def _tone(freq: float, seconds: float, decay: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.sin(2 * np.pi * freq * t) * np.exp(-t / decay)


def _render(spec: MusicSpec, stem: str, rng: np.random.Generator) -> np.ndarray:
    n = spec.num_frames
    out = np.zeros(n)
    beat = 60.0 / spec.bpm
    bar = 4 * beat
    chords = [parse_chord(s) for s in (spec.chord_progression or DEFAULT_PROGRESSION)]

    def add(signal: np.ndarray, start_s: float, gain: float) -> None:
        start = int(start_s * SAMPLE_RATE)
        if start >= n:
            return
        end = min(n, start + len(signal))
        out[start:end] += gain * signal[: end - start]

    bars = int(np.ceil(spec.duration_seconds / bar))
    for b in range(bars):
        chord = chords[b % len(chords)]
        t0 = b * bar
        if stem == "drums":
            for i in range(8):
                add(rng.standard_normal(int(0.03 * SAMPLE_RATE)) * 0.3, t0 + i * beat / 2, 0.5)
            for i in (0, 2):
                add(_tone(55.0, 0.3, 0.08), t0 + i * beat, 1.0)
            for i in (1, 3):
                add(rng.standard_normal(int(0.15 * SAMPLE_RATE)) * np.exp(-np.arange(int(0.15 * SAMPLE_RATE)) / 2000), t0 + i * beat, 0.6)
        elif stem == "bass":
            for i in range(4):
                add(_tone(_midi_to_hz(36 + chord.bass), beat, beat), t0 + i * beat, 0.8)
        elif stem == "vocals":
            tones = sorted(chord.pitch_classes)
            for i in range(4):
                note = 60 + tones[int(rng.integers(len(tones)))]
                add(_tone(_midi_to_hz(note), beat * 0.9, beat), t0 + i * beat, 0.5)
        else:
            octave = {"piano": 60, "guitar": 52, "synth": 64}.get(stem, 72)
            for pc in sorted(chord.pitch_classes):
                add(_tone(_midi_to_hz(octave + pc), bar, bar / 2), t0, 0.3)
    peak = float(np.max(np.abs(out))) or 1.0
    mono = (out / peak * 0.5).astype(np.float32)
    return np.stack([mono, mono], axis=1)


class ProceduralEngine:
    name = "procedural"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def reconfigure(self, config: Mapping[str, Any]) -> None:
        pass

    def status(self) -> str:
        return "available"

    def generate(self, spec: MusicSpec, stems: Sequence[str]) -> EngineResult:
        rendered = []
        for index, stem in enumerate(stems):
            rng = np.random.default_rng([spec.seed, index])
            rendered.append(RenderedStem(stem_type=stem, audio=_render(spec, stem, rng), engine=self.name))
        return EngineResult(
            stems=rendered,
            applied={"chord_progression": list(spec.chord_progression or DEFAULT_PROGRESSION)},
        )
