import numpy as np
import pytest

from stemforge.dsp.render import pan_mono
from stemforge.dsp.voices import VOICES, render_voice
from stemforge.music.notes import Note

SR = 44_100


@pytest.mark.parametrize("voice", sorted(set(VOICES) - {"kit"}))
@pytest.mark.parametrize("pitch", [40, 57, 69])
def test_pitched_voices_sound_at_their_pitch(voice, pitch):
    audio = render_voice(voice, [Note(0.0, 1.0, pitch, 100)], SR, SR)
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0.05
    segment = audio[int(0.3 * SR) : int(0.8 * SR)]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=1 << 17))
    freqs = np.fft.rfftfreq(1 << 17, 1 / SR)
    fundamental = 440.0 * 2 ** ((pitch - 69) / 12)
    strongest = freqs[np.argmax(spectrum)]
    harmonic = strongest / fundamental
    assert abs(harmonic - round(harmonic)) < 0.03 and round(harmonic) >= 1


@pytest.mark.parametrize("drum", [35, 36, 37, 38, 39, 42, 44, 45, 46, 49, 51, 52, 54, 56, 62, 63, 64, 70])
def test_every_drum_we_write_has_a_sound(drum):
    audio = render_voice("kit", [Note(0.0, 0.2, drum, 110)], SR, SR)
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio[:2000])) > 0.01


def test_the_same_notes_render_the_same_samples():
    notes = [Note(0.1 * i, 0.3, 40 + i, 90) for i in range(10)]
    assert np.array_equal(render_voice("pluck", notes, SR, SR), render_voice("pluck", notes, SR, SR))


def test_pan_keeps_power_and_places_the_sound():
    mono = np.ones(100, dtype=np.float32)
    left = pan_mono(mono, -1.0)
    centre = pan_mono(mono, 0.0)
    assert left[0, 0] == pytest.approx(1.0) and left[0, 1] == pytest.approx(0.0, abs=1e-6)
    assert np.sum(centre[0] ** 2) == pytest.approx(1.0)


def test_the_808_releases_smoothly_with_no_tick_at_note_ends():
    from scipy.signal import butter, sosfilt

    from stemforge.dsp.voices import render_sub808_line

    # Gaps, a legato change of pitch and a note cut by the next one.
    notes = [
        Note(0.0, 0.4, 36, 110),
        Note(0.5, 0.25, 36, 100),
        Note(0.75, 0.6, 31, 120),
        Note(1.2, 0.3, 43, 90),
    ]
    audio = render_sub808_line(notes, SR * 2, SR).astype(np.float64)
    assert audio[0] == 0.0 and np.max(np.abs(audio[-100:])) < 1e-6
    # No step anywhere: the largest sample-to-sample move is that of the attack's pitch sweep.
    assert np.max(np.abs(np.diff(audio))) < 2 * np.pi * 400 / SR * np.max(np.abs(audio))
    high = sosfilt(butter(4, 1500, "highpass", fs=SR, output="sos"), audio)
    ends = [round((n.start + n.duration) * SR) for n in notes]
    around = np.concatenate([high[e - 400 : e + 400] for e in ends])
    assert np.sqrt(np.mean(around**2)) < 1e-3 * np.sqrt(np.mean(audio**2))  # below -60 dB
