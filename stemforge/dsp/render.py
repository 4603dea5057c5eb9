"""A part's notes to stereo audio: through the SoundFont when one is loaded and has the
instrument, else (and for the voices synthesis does better) through the DSP voices.

Whatever renders it, the result leaves here DC-free (SoundFont samples, pads above all, carry a
DC offset) and placed in the stereo field: the part's pan, and per key where the part places
single keys elsewhere (a drum kit's pieces)."""

import numpy as np

from stemforge.dsp.filters import dc_block
from stemforge.dsp.soundfont import SoundFontSynth
from stemforge.dsp.voices import render_sub808_line, render_voice
from stemforge.music.notes import Note, Part

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


def _render_dsp(part: Part, notes: list[Note], num_frames: int, sample_rate: int) -> np.ndarray:
    voice = part.instrument.voice
    if voice == "sub808":
        return pan_mono(render_sub808_line(notes, num_frames, sample_rate), part.pan)
    groups: dict[float, list[Note]] = {}
    for note in notes:
        groups.setdefault(part.key_pans.get(note.pitch, part.pan), []).append(note)
    out = np.zeros((num_frames, 2), dtype=np.float32)
    for pan, group in sorted(groups.items()):
        out += pan_mono(render_voice(voice, group, num_frames, sample_rate), pan)
    return out


def render_part(part: Part, num_frames: int, sample_rate: int, synth: SoundFontSynth | None) -> np.ndarray:
    notes = part.sorted_notes()
    instrument = part.instrument
    if synth is not None and renderer_used(part, synth) == "soundfont":
        audio = synth.render(notes, num_frames, instrument.program, instrument.bank, part.pan, part.key_pans)
    else:
        audio = _render_dsp(part, notes, num_frames, sample_rate)
    return dc_block(audio, sample_rate)
