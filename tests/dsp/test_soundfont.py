import numpy as np
import pytest

from stemforge.dsp.soundfont import find_soundfont, shared_synth
from stemforge.music.notes import Note

SR = 44_100
SOUNDFONT = find_soundfont()
pytestmark = pytest.mark.skipif(SOUNDFONT is None, reason="no General MIDI SoundFont installed")


@pytest.fixture(scope="module")
def synth():
    assert SOUNDFONT is not None
    return shared_synth(SOUNDFONT, SR)


def test_renders_are_identical_whatever_was_rendered_before(synth):
    chord = [Note(0.1, 0.8, p, 100) for p in (60, 64, 67, 71)]
    first = synth.render(chord, SR, 0, 0, 0.2)
    synth.render([Note(0.0, 0.5, 36, 120), Note(0.25, 0.5, 38, 90)], 30_000, 0, 128, 0.0)
    synth.render(chord[:2], 12_345, 90, 0, -0.4)
    assert np.array_equal(first, synth.render(chord, SR, 0, 0, 0.2))


@pytest.mark.parametrize(("program", "pitch"), [(0, 60), (33, 40), (25, 52), (53, 67)])
def test_a_note_sounds_at_its_pitch_and_starts_on_time(synth, program, pitch):
    audio = synth.render([Note(0.25, 0.6, pitch, 110)], SR, program, 0, 0.0)[:, 0]
    assert np.max(np.abs(audio[: int(0.24 * SR)])) == 0.0
    assert np.max(np.abs(audio[int(0.25 * SR) : int(0.3 * SR)])) > 0.0
    segment = audio[int(0.35 * SR) : int(0.75 * SR)]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=1 << 17))
    freqs = np.fft.rfftfreq(1 << 17, 1 / SR)
    band = (freqs > 30) & (freqs < 2000)
    pitch_classes = np.round(69 + 12 * np.log2(freqs[band] / 440)).astype(int) % 12
    energy = np.bincount(pitch_classes, weights=spectrum[band] ** 2, minlength=12)
    assert int(np.argmax(energy)) == pitch % 12
