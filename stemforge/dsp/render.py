"""A part's notes to stereo audio: through the SoundFont when one is loaded and has the
instrument, else (and for the voices synthesis does better) through the DSP voices."""

import numpy as np

from stemforge.dsp.soundfont import SoundFontSynth
from stemforge.dsp.voices import render_voice
from stemforge.music.notes import Part

# Voices that are always synthesized: an 808 is a sine sweep, not a sample.
SYNTHESIZED_VOICES = frozenset({"sub808"})


def pan_mono(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan of a mono signal to ``(frames, 2)``."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1).astype(np.float32)


def renderer_used(part: Part, synth: SoundFontSynth | None) -> str:
    """ "soundfont" or "dsp": how ``part`` will sound."""
    instrument = part.instrument
    if synth is None or instrument.voice in SYNTHESIZED_VOICES:
        return "dsp"
    return "soundfont" if synth.has_preset(instrument.bank, instrument.program) else "dsp"


def render_part(part: Part, num_frames: int, sample_rate: int, synth: SoundFontSynth | None) -> np.ndarray:
    notes = part.sorted_notes()
    instrument = part.instrument
    if synth is not None and renderer_used(part, synth) == "soundfont":
        return synth.render(notes, num_frames, instrument.program, instrument.bank, part.pan)
    return pan_mono(render_voice(instrument.voice, notes, num_frames, sample_rate), part.pan)
