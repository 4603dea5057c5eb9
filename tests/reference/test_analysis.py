"""The reference analysis on tracks of known tempo, metre, key and chords: synthesised here
(kick, snare, hats, a bass on each root, a pad with a few harmonics) at several tempi and keys,
some with leading silence or a pickup, and one rendered by the procedural engine."""

import json
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from stemforge.music.chords import parse_chord
from stemforge.reference.analysis import ReferenceAnalysis, analyse_reference

SR = 44_100


@dataclass(frozen=True)
class Track:
    bpm: float
    key: str
    progression: tuple[str, ...]
    beats_per_bar: int = 4
    lead_seconds: float = 0.0  # silence before the music
    pickup_beats: int = 0  # drums before bar 1

    @property
    def beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar(self) -> float:
        return self.beat * self.beats_per_bar

    @property
    def bars(self) -> int:
        return max(4, round(12.0 / self.bar))  # about 12 s of music

    @property
    def first_downbeat(self) -> float:
        return self.lead_seconds + self.pickup_beats * self.beat

    @property
    def chords(self) -> list[str]:
        return [self.progression[bar % len(self.progression)] for bar in range(self.bars)]


TRACKS = [
    Track(84, "A minor", ("Am", "F", "C", "G")),
    Track(97, "Eb major", ("Eb", "Ab", "Bb", "Cm"), lead_seconds=0.37),
    Track(120, "C major", ("C", "Am", "F", "G"), pickup_beats=1),
    Track(138, "F# minor", ("F#m", "D", "A", "E"), lead_seconds=0.37, pickup_beats=1),
    Track(72, "D major", ("D", "G", "A", "D")),
    Track(150, "G major", ("G", "C", "D", "G"), beats_per_bar=3, lead_seconds=0.2),
]
IDS = [f"{t.bpm:g}bpm-{t.key.replace(' ', '-')}-{t.beats_per_bar}beats" for t in TRACKS]


def _hz(midi: int) -> float:
    return float(440.0 * 2.0 ** ((midi - 69) / 12))


def _tone(hz: float, seconds: float, attack: float = 0.01, decay: float | None = None) -> np.ndarray:
    """A note with four harmonics, a linear attack, an optional exponential decay and a 50 ms
    release (no clicks: a click is an onset the analysis would hear)."""
    t = np.arange(int(seconds * SR)) / SR
    harmonics = enumerate((1.0, 0.5, 0.33, 0.25), start=1)
    wave = np.sum([a * np.sin(2 * np.pi * hz * k * t) for k, a in harmonics], axis=0)
    envelope = np.minimum(1.0, t / attack)
    if decay is not None:
        envelope *= np.exp(-t / decay)
    release = int(min(0.05, seconds / 4) * SR)
    envelope[len(t) - release :] *= np.linspace(1.0, 0.0, release)
    return np.asarray(wave * envelope)


def _add(out: np.ndarray, start: float, sound: np.ndarray) -> None:
    at = round(start * SR)
    if at < len(out):
        out[at : at + len(sound)] += sound[: len(out) - at]


def _drums(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 * t + 2.8 * (1 - np.exp(-t / 0.04)))) * np.exp(-t / 0.12)  # 120 -> 50 Hz
    s = t[: int(0.15 * SR)]
    snare = (0.6 * rng.standard_normal(len(s)) + np.sin(2 * np.pi * 190 * s)) * np.exp(-s / 0.05)
    h = t[: int(0.05 * SR)]
    hat = 0.15 * np.diff(rng.standard_normal(len(h) + 1)) * np.exp(-h / 0.012)
    return 0.9 * kick, 0.5 * snare, hat


def render(track: Track, seed: int = 0) -> np.ndarray:
    """Kick on beats 1 and 3 (1 in 3/4), snare on the others' backbeats, hats in eighths, the
    chord's root in the bass every two beats, the triad as a pad held for the bar."""
    kick, snare, hat = _drums(np.random.default_rng(seed))
    kicks, snares = ((0,), (1, 2)) if track.beats_per_bar == 3 else ((0, 2), (1, 3))
    out = np.zeros(int((track.first_downbeat + track.bars * track.bar + 0.5) * SR))
    for beat in range(-track.pickup_beats, track.bars * track.beats_per_bar):
        at = track.first_downbeat + beat * track.beat
        position = beat % track.beats_per_bar
        if beat >= 0 and position in kicks:
            _add(out, at, kick)
        if position in snares:
            _add(out, at, snare)
        _add(out, at, hat)
        _add(out, at + track.beat / 2, hat)
    for bar, symbol in enumerate(track.chords):
        chord = parse_chord(symbol)
        start = track.first_downbeat + bar * track.bar
        for beat in range(0, track.beats_per_bar, 2):
            held = min(2, track.beats_per_bar - beat) * track.beat * 0.95
            _add(out, start + beat * track.beat, 0.35 * _tone(_hz(36 + chord.root), held, decay=0.6))
        for pitch_class in chord.pitch_classes:
            _add(out, start, 0.12 * _tone(_hz(60 + pitch_class), track.bar, attack=0.05))
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


@cache
def analysed(track: Track) -> ReferenceAnalysis:
    return analyse_reference(render(track), SR, track.beats_per_bar)


def _same_triad(heard: str, asked: str) -> bool:
    a, b = parse_chord(heard), parse_chord(asked)
    return (a.root, a.is_minor) == (b.root, b.is_minor)


@pytest.mark.parametrize("track", TRACKS, ids=IDS)
def test_the_tempo_is_found_within_one_percent(track: Track) -> None:
    result = analysed(track)

    assert result.bpm is not None
    assert abs(result.bpm / track.bpm - 1.0) < 0.01
    assert result.tempo_confidence > 0.5


@pytest.mark.parametrize("track", TRACKS, ids=IDS)
def test_the_key_is_named_exactly(track: Track) -> None:
    # Relative keys share every note: these progressions start on the tonic, which settles it.
    assert analysed(track).key == track.key


@pytest.mark.parametrize("track", TRACKS, ids=IDS)
def test_the_chords_follow_the_progression_bar_by_bar(track: Track) -> None:
    result = analysed(track)

    assert len(result.chords) == track.bars == len(result.chord_confidence)
    hits = sum(_same_triad(heard, asked) for heard, asked in zip(result.chords, track.chords, strict=True))
    assert hits >= 0.9 * track.bars
    assert all(0.0 <= c <= 1.0 for c in result.chord_confidence)


@pytest.mark.parametrize("track", TRACKS, ids=IDS)
def test_the_first_downbeat_is_bar_one_after_any_silence_and_pickup(track: Track) -> None:
    result = analysed(track)

    assert result.first_downbeat_seconds is not None
    assert abs(result.first_downbeat_seconds - track.first_downbeat) < 0.020


def test_chords_are_spelled_as_the_key_spells_them() -> None:
    flat, sharp = analysed(TRACKS[1]), analysed(TRACKS[3])  # Eb major, F# minor

    assert flat.chords[:4] == ("Eb", "Ab", "Bb", "Cm")
    assert sharp.chords[:4] == ("F#m", "D", "A", "E")


def test_the_beats_are_a_regular_grid_over_the_whole_track() -> None:
    track = TRACKS[3]
    result = analysed(track)
    beats = np.array(result.beats_seconds)
    duration = result.duration_seconds

    assert result.bpm is not None
    assert np.allclose(np.diff(beats), 60.0 / result.bpm)
    assert 0.0 <= beats[0] < 60.0 / result.bpm
    assert duration - 60.0 / result.bpm <= beats[-1] < duration
    assert result.first_downbeat_seconds in result.beats_seconds


def test_silence_has_no_tempo_downbeat_key_or_chords() -> None:
    for audio in (np.zeros(5 * SR, dtype=np.float32), np.zeros((0, 2), dtype=np.float32)):
        result = analyse_reference(audio, SR)

        assert result.bpm is None
        assert result.first_downbeat_seconds is None
        assert result.key is None
        assert result.chords == () == result.beats_seconds


@pytest.mark.parametrize("harmonics", [False, True], ids=["sines", "harmonic-tones"])
def test_a_held_chord_has_a_key_but_no_tempo(harmonics: bool) -> None:
    # A minor held for 6 s: no onsets, only its partials beating slowly against each other.
    t = np.arange(6 * SR) / SR
    if harmonics:
        pad = np.sum([_tone(_hz(pitch), 6.0, attack=0.5) for pitch in (57, 60, 64)], axis=0)
    else:
        pad = np.sum([np.sin(2 * np.pi * hz * t) for hz in (220.0, 261.63, 329.63)], axis=0)
    result = analyse_reference((0.2 * pad).astype(np.float32), SR)

    assert result.bpm is None
    assert result.first_downbeat_seconds is None
    assert result.chords == ()
    assert result.key == "A minor"


def test_drums_alone_have_a_tempo_but_no_key_or_chords() -> None:
    kick, snare, _ = _drums(np.random.default_rng(1))
    out = np.zeros(12 * SR)
    for beat in range(19):  # 100 BPM
        _add(out, beat * 0.6, kick if beat % 2 == 0 else snare)
    result = analyse_reference(out.astype(np.float32), SR)

    assert result.bpm is not None and abs(result.bpm / 100.0 - 1.0) < 0.01
    assert result.key is None
    assert result.chords == ()


def test_stereo_gives_what_its_mono_mix_gives() -> None:
    mono = render(TRACKS[2])

    assert analyse_reference(np.stack([mono, mono], axis=1), SR, 4) == analysed(TRACKS[2])


def test_to_dict_is_json_and_rounded() -> None:
    result = analysed(TRACKS[1])
    data = result.to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["beats"] == len(result.beats_seconds)
    assert data["bpm"] == round(data["bpm"], 2)
    assert data["first_downbeat_seconds"] == round(result.first_downbeat_seconds or 0.0, 3)
    assert data["chords"] == list(result.chords)
    assert data["key"] == "Eb major"
    assert all(c == round(c, 2) for c in data["chord_confidence"])


def test_a_bar_needs_a_beat() -> None:
    with pytest.raises(ValueError, match="beats_per_bar"):
        analyse_reference(np.zeros(SR, dtype=np.float32), SR, beats_per_bar=0)


def test_a_procedural_song_is_heard_as_it_was_planned() -> None:
    from stemforge.engines.procedural import ProceduralEngine
    from stemforge.music.plan import build_plan
    from stemforge.music.spec import MusicSpec
    from stemforge.settings import Settings

    spec = MusicSpec(bpm=100, duration_seconds=20.0, seed=1, chord_progression=("Am", "F", "C", "G"))
    rendered = ProceduralEngine(Settings()).generate(spec, ["drums", "bass", "piano"])
    mix = np.sum([stem.audio for stem in rendered.stems], axis=0)

    result = analyse_reference(mix, SR)

    assert result.bpm is not None and abs(result.bpm / 100.0 - 1.0) < 0.01
    assert result.key == rendered.applied["key"] == "A minor"
    assert result.first_downbeat_seconds is not None and abs(result.first_downbeat_seconds) < 0.020
    # The plan cycles the progression, then its last bar cadences home and rings out; less than
    # half of that bar is inside the render, so the analysis may stop before it.
    planned = [chord.symbol for chord in build_plan(spec).chords]
    assert len(planned) - 1 <= len(result.chords) <= len(planned)
    hits = sum(_same_triad(heard, asked) for heard, asked in zip(result.chords, planned, strict=False))
    assert hits >= 0.9 * len(result.chords)
