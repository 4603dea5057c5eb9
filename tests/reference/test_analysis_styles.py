"""The reference analysis on procedural bands (drums, bass and piano, as the procedural engine
renders them) of several styles, tempi, metres and lead-ins: the tempo within 1 %, the key, the
chord of at least 90 % of the bars and the first downbeat within 20 ms. Each band is rendered
and analysed once (16 s of music, or five bars and a bit where those are longer)."""

from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from stemforge.engines.procedural import ProceduralEngine
from stemforge.music.spec import SAMPLE_RATE, MusicSpec
from stemforge.reference.analysis import ReferenceAnalysis, analyse_reference
from stemforge.settings import Settings

SECONDS = 16.0


@dataclass(frozen=True)
class Band:
    style: str
    bpm: float
    key: str
    chords: tuple[str, ...]
    lead_in: float
    beats_per_bar: int = 4
    # Where the bass plays alone (the comping is on the guitar, not rendered) its arpeggios can
    # read as the triad a third up: the chords of these are not asserted (see the module's limits).
    chords_asserted: bool = True


BANDS = [
    Band("pop", 84, "A minor", ("Am", "F", "C", "G"), 0.37),
    Band("pop", 120, "A minor", ("Am", "F", "C", "G"), 0.8),
    Band("rock", 97, "Eb major", ("Eb", "Ab", "Bb", "Cm"), 0.6),
    Band("rock", 140, "E major", ("E", "A", "B", "A"), 0.3),
    Band("house", 124, "C major", ("C", "Am", "F", "G"), 0.25),
    Band("funk", 108, "F# minor", ("F#m", "D", "A", "E"), 1.1),
    Band("funk", 96, "E minor", ("Em", "C", "G", "D"), 0.5),
    Band("ballad", 72, "D major", ("D", "G", "A", "D"), 0.0),
    Band("ballad", 66, "F major", ("F", "C", "Dm", "Bb"), 0.7),
    Band("reggae", 80, "G major", ("G", "C", "D", "C"), 0.45),
    Band("reggae", 90, "D major", ("D", "G", "A", "G"), 0.2),
    Band("blues", 100, "E major", ("E", "A", "E", "E", "A", "A", "E", "E", "B", "A", "E", "B"), 0.3),
    Band("pop", 100, "C major", ("C", "G", "Am", "F"), 0.6, beats_per_bar=3),
    Band("pop", 150, "G major", ("G", "C", "D", "G"), 0.4, beats_per_bar=3, chords_asserted=False),
    Band("rock", 120, "D major", ("D", "G", "A", "G"), 0.35, beats_per_bar=3, chords_asserted=False),
]
IDS = [f"{b.style}-{b.bpm:g}bpm-{b.beats_per_bar}beats-lead{b.lead_in:g}" for b in BANDS]


@cache
def _engine() -> ProceduralEngine:
    return ProceduralEngine(Settings())


@cache
def analysed(band: Band) -> ReferenceAnalysis:
    spec = MusicSpec(
        bpm=band.bpm,
        duration_seconds=max(SECONDS, 5.5 * band.beats_per_bar * 60.0 / band.bpm),
        seed=21,
        style=band.style,
        chord_progression=band.chords,
        time_signature=f"{band.beats_per_bar}/4",
    )
    stems = _engine().generate(spec, ["drums", "bass", "piano"]).stems
    mix = np.sum([np.asarray(stem.audio, dtype=np.float32) for stem in stems], axis=0)
    lead = np.zeros((round(band.lead_in * SAMPLE_RATE), mix.shape[1]), dtype=np.float32)
    return analyse_reference(np.concatenate([lead, mix]), SAMPLE_RATE, band.beats_per_bar)


@pytest.mark.parametrize("band", BANDS, ids=IDS)
def test_a_procedural_band_is_heard_as_it_was_played(band: Band) -> None:
    result = analysed(band)
    assert result.bpm is not None
    assert abs(result.bpm / band.bpm - 1.0) < 0.01
    assert result.key == band.key
    assert result.first_downbeat_seconds is not None
    assert abs(result.first_downbeat_seconds - band.lead_in) < 0.020
    if band.chords_asserted:
        bars = len(result.chords) - 1  # the ending bar cadences home: not the progression's
        assert bars >= 4
        truth = [band.chords[bar % len(band.chords)] for bar in range(bars)]
        right = sum(heard == asked for heard, asked in zip(result.chords, truth, strict=False))
        assert right / bars >= 0.9, (result.chords, truth)
