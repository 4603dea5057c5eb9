"""MusicGen with a reference: continuing a recording from its tail, following its chroma, and
playing along from its first downbeat (tiny random checkpoints: what is checked is what the
engine feeds the model and hands back, not how it sounds)."""

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from stemforge.engines.base import EngineJob
from stemforge.music.spec import SAMPLE_RATE, MusicSpec, ReferenceSpec
from tests.engines.musicgen.conftest import chroma_fed


def _chroma_fed(engine: Any, job: EngineJob, monkeypatch: pytest.MonkeyPatch) -> tuple[np.ndarray, Any]:
    return chroma_fed(monkeypatch, lambda: engine.generate_batch([job])[0])


SPEC = MusicSpec(bpm=120.0, duration_seconds=1.0, seed=7, chord_progression=("Am", "F"))


def _reference_audio(seconds: float = 3.0, hz: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _job(mode: str, audio: np.ndarray | None, offset: float = 0.0, spec: MusicSpec = SPEC) -> EngineJob:
    reference = ReferenceSpec(mode=mode, kind="audio", duration_seconds=3.0, offset_seconds=offset)
    return EngineJob(replace(spec, reference=reference), ("bass",), reference_audio=audio)


def test_continue_returns_only_new_audio_of_the_asked_length(musicgen_engine: Any) -> None:
    result = musicgen_engine.generate_batch([_job("continue", _reference_audio())])[0]

    stem = result.stems[0]
    assert stem.audio.shape == (SPEC.num_frames, 2)
    assert np.isfinite(stem.audio).all()
    assert "audio prompt" in result.applied["reference_use"]["conditioning"]


def test_continue_is_prompted_by_the_reference(musicgen_engine: Any) -> None:
    """The prompt changes what comes next: another reference, other audio; same reference, same."""
    first = musicgen_engine.generate_batch([_job("continue", _reference_audio(hz=220.0))])[0].stems[0].audio
    again = musicgen_engine.generate_batch([_job("continue", _reference_audio(hz=220.0))])[0].stems[0].audio
    other = musicgen_engine.generate_batch([_job("continue", _reference_audio(hz=880.0))])[0].stems[0].audio
    plain = musicgen_engine.generate_batch([EngineJob(SPEC, ("bass",))])[0].stems[0].audio

    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert not np.allclose(first, plain)


def test_continue_without_the_audio_fails_with_a_reason(musicgen_engine: Any) -> None:
    from stemforge.errors import GenerationFailed

    with pytest.raises(GenerationFailed, match="reference audio"):
        musicgen_engine.generate_batch([_job("continue", None)])


def test_accompany_is_silent_until_the_first_downbeat(musicgen_engine: Any) -> None:
    offset = 0.25
    stem = musicgen_engine.generate_batch([_job("accompany", _reference_audio(), offset)])[0].stems[0]

    assert stem.audio.shape == (SPEC.num_frames, 2)
    lead = round(offset * SAMPLE_RATE)
    assert not stem.audio[:lead].any()
    assert np.abs(stem.audio[lead:]).max() > 0


@pytest.mark.parametrize(("hz", "pitch_class"), [(329.63, 4), (466.16, 10)])
def test_a_melody_checkpoint_follows_the_reference_s_chroma(
    melody_engine: Any, monkeypatch: pytest.MonkeyPatch, hz: float, pitch_class: int
) -> None:
    """The melody condition is the reference itself (an E, a Bb), not the chords (Am, F)."""
    chroma, result = _chroma_fed(melody_engine, _job("style", _reference_audio(hz=hz)), monkeypatch)

    assert "chroma of the reference" in result.applied["reference_use"]["conditioning"]
    assert (chroma.argmax(axis=1) == pitch_class).mean() > 0.9


def test_accompanying_melody_chroma_starts_at_the_first_downbeat(
    melody_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bar 1 is ``offset`` into the reference: the condition is the reference from there on."""
    offset = 1.0
    audio = np.concatenate([_reference_audio(offset, hz=466.16), _reference_audio(2.0, hz=329.63)])
    spec = replace(SPEC, duration_seconds=2.5)
    chroma, _ = _chroma_fed(melody_engine, _job("accompany", audio, offset, spec), monkeypatch)

    seconds = np.arange(chroma.shape[0]) * 4096 / 32_000
    heard = chroma[(seconds > 0.2) & (seconds < 1.3)].argmax(axis=1)
    assert (heard == 4).mean() > 0.9  # the E after the downbeat, not the Bb before it


def test_continuations_merged_with_plain_jobs_each_get_their_own_result(musicgen_engine: Any) -> None:
    plain = EngineJob(SPEC, ("bass", "piano"))
    continued = _job("continue", _reference_audio())
    merged = musicgen_engine.generate_batch([plain, continued])
    alone = musicgen_engine.generate_batch([continued])[0]

    assert [s.stem_type for s in merged[0].stems] == ["bass", "piano"]
    np.testing.assert_allclose(merged[1].stems[0].audio, alone.stems[0].audio, atol=1e-6)


def test_a_melody_checkpoint_hears_the_midi_s_own_parts(
    melody_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a MIDI file, the condition is its parts played (a held Bb), not the chords (Am, F)."""
    from stemforge.music.notes import Note

    held = tuple(Note(start=0.5 * i, duration=0.5, pitch=70, velocity=100) for i in range(4))
    reference = ReferenceSpec(
        mode="accompany", kind="midi", duration_seconds=2.0, midi_parts=(("synth", held),)
    )
    job = EngineJob(replace(SPEC, duration_seconds=2.0, reference=reference), ("bass",))

    chroma, result = _chroma_fed(melody_engine, job, monkeypatch)

    assert "MIDI's own parts" in result.applied["reference_use"]["conditioning"]
    seconds = np.arange(chroma.shape[0]) * 4096 / 32_000
    assert (chroma[(seconds > 0.1) & (seconds < 1.8)].argmax(axis=1) == 10).mean() > 0.9
