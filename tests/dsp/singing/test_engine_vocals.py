"""The procedural engine's vocals stem: sung when the voice is installed, the SoundFont's (or
DSP) voice when not, and the engine says why."""

import dataclasses
import io

import numpy as np
import pretty_midi
import pytest

from stemforge.dsp.singing import singing_available
from stemforge.engines.procedural import ProceduralEngine
from stemforge.engines.procedural import engine as engine_module
from stemforge.music.spec import MusicSpec
from stemforge.settings import Settings

SPEC = MusicSpec(bpm=120.0, duration_seconds=10.0, seed=8, style="pop")


@pytest.fixture(scope="module")
def engine() -> ProceduralEngine:
    engine = ProceduralEngine(Settings())
    engine.reconfigure({"soundfont": "none"})  # the fallback below needs no SoundFont
    return engine


@pytest.mark.skipif(singing_available() is not None, reason=str(singing_available()))
def test_the_vocals_are_sung_on_the_requests_words(engine):
    (plain,) = engine.generate(SPEC, ["vocals"]).stems
    assert plain.info["voice"] == "espeak-ng+world" and plain.info["renderer"] == "dsp"
    assert plain.info["lyrics"] == "neutral syllables" and plain.info["syllables"] == plain.info["notes"]
    assert plain.audio.shape == (SPEC.num_frames, 2) and plain.audio.dtype == np.float32
    assert not any("singing" in p for p in engine.status().problems)
    # The MIDI file holds the notes as sung.
    (midi,) = plain.attachments
    notes = pretty_midi.PrettyMIDI(io.BytesIO(midi.data)).instruments[0].notes
    assert len(notes) == plain.info["notes"]
    worded = dataclasses.replace(SPEC, lyrics="tell me why the sky is blue")
    (sung,) = engine.generate(worded, ["vocals"]).stems
    assert sung.info["lyrics"] == "given"
    assert sung.audio.tobytes() != plain.audio.tobytes()
    (again,) = engine.generate(worded, ["vocals"]).stems
    assert again.audio.tobytes() == sung.audio.tobytes()


def test_without_the_voice_the_vocals_fall_back_and_status_says_why(engine, monkeypatch):
    monkeypatch.setattr(engine_module, "singing_available", lambda: "espeak-ng is not installed")
    (stem,) = engine.generate(SPEC, ["vocals"]).stems
    assert "voice" not in stem.info and stem.info["renderer"] == "dsp"
    assert stem.audio.shape == (SPEC.num_frames, 2) and np.abs(stem.audio).max() > 0.01
    problems = engine.status().problems
    assert any("no singing voice (espeak-ng is not installed)" in p for p in problems)
    assert engine.status().available
