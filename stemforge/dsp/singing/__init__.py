"""A singing voice for the vocals stem: espeak-ng speaks each syllable, WORLD sets it to the
note (pitch curve with vibrato and portamento, the vowel stretched to the note's length).

    problem = singing_available()      # None, or why not (espeak-ng or pyworld missing)
    audio = sing(part, plan, lyrics, 44_100)   # (frames, 2) float32

Modules: ``phonemes`` (espeak-ng: words to phonemes, syllables, speech), ``lyrics`` (syllables
set to notes, neutral syllables), ``line`` (phrases, octave placement), ``curves`` (pitch,
vibrato, portamento, re-articulation), ``breath``, ``world`` (WORLD analysis, stretching,
synthesis) and ``voice`` (assembly). See docs/singing.md.
"""

import functools

import numpy as np

from stemforge.dsp.singing.phonemes import VOICES, EspeakError, espeak_binary, speak
from stemforge.dsp.singing.voice import VOICE_NAME, SungLine, sing_line
from stemforge.dsp.singing.world import pyworld_problem
from stemforge.music.notes import Part
from stemforge.music.plan import SongPlan

__all__ = ["VOICE_NAME", "SungLine", "sing", "sing_line", "singing_available"]


@functools.lru_cache(maxsize=1)
def singing_available() -> str | None:
    """None when the voice can sing here, else why not."""
    if espeak_binary() is None:
        return "espeak-ng is not installed (apt-get install espeak-ng)"
    problem = pyworld_problem()
    if problem is not None:
        return f"{problem} (pip install pyworld)"
    try:
        speak("l'A:", VOICES[0].name)
    except EspeakError as exc:
        return str(exc)
    return None


def sing(part: Part, plan: SongPlan, lyrics: str | None, sample_rate: int) -> np.ndarray:
    """``part`` sung on ``lyrics`` (None: neutral syllables): ``(frames, 2)`` float32."""
    return sing_line(part, plan, lyrics, sample_rate).audio
