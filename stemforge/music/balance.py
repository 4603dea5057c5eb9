"""The band's balance: at what level each stem sits in the mix, per style.

Every stem is first brought to the same loudness (the engine's ``target_lufs``); the offsets
here then place it in the band, so that all seven stems summed at unity gain come to about
``target_lufs`` with the true peak under the ceiling: drums and bass carry the song, the voice
sits on top, the comping instruments under it and pads and strings behind. The relative levels
are a mixing engineer's starting point per style; the last column (``_CALIBRATION``) is measured
(bench: the unity sum of every style over a grid of tempi and seeds) and absorbs how much the
stems add up above their power sum (they share beats and pitches).
"""

import math

from stemforge.music.plan import SongPlan

STEMS = ("drums", "bass", "vocals", "guitar", "piano", "synth", "other")

# Relative level of each stem (dB, the loudest at 0), in the order of STEMS.
_DEFAULT = (0.0, -1.5, -2.0, -6.0, -6.0, -8.5, -8.5)
_RELATIVE: dict[str, tuple[float, ...]] = {
    "pop": (0.0, -2.0, -1.5, -5.0, -6.5, -8.5, -8.5),
    "rock": (0.0, -2.0, -2.0, -2.5, -8.0, -8.5, -8.5),
    "metal": (0.0, -2.5, -3.0, -1.0, -8.5, -8.5, -8.5),
    "hip-hop": (0.0, -0.5, -2.0, -8.0, -5.0, -8.5, -8.5),
    "house": (0.0, -1.0, -3.0, -8.0, -5.0, -6.0, -7.0),
    "edm": (0.0, -1.0, -3.0, -8.0, -6.0, -5.0, -7.0),
    "disco": (0.0, -1.5, -2.0, -5.0, -6.0, -8.5, -8.0),
    "funk": (0.0, -1.0, -2.5, -5.0, -5.5, -8.5, -6.0),
    "jazz": (-2.0, -2.5, -2.0, -6.0, -4.0, -8.5, -6.0),
    "reggae": (0.0, 0.0, -2.0, -5.0, -6.0, -8.5, -7.0),
    "lo-fi": (0.0, -2.0, -3.0, -6.0, -3.5, -8.5, -8.0),
    "ballad": (-2.5, -3.0, -1.0, -5.0, -2.0, -8.5, -7.0),
    "blues": (0.0, -2.0, -2.0, -3.0, -6.0, -8.5, -5.0),
}
# Measured: how far (dB) the unity sum of the stems lands above their power sum, per style.
_CALIBRATION: dict[str, float] = {
    "pop": -0.5,
    "rock": -0.2,
    "metal": -0.3,
    "hip-hop": -0.3,
    "house": 0.0,
    "edm": 0.4,
    "disco": -0.3,
    "funk": 0.2,  # its slap bass and ghost-note kit peak together: held back to stay under -1 dBTP
    "jazz": -0.4,
    "reggae": -0.3,
    "lo-fi": -0.3,
    "ballad": 0.2,
    "blues": -0.4,
}


def mix_offsets(style: str) -> dict[str, float]:
    """dB to add to each stem brought to the target loudness so that the band sums to it."""
    relative = _RELATIVE.get(style, _DEFAULT)
    power = sum(10 ** (level / 10) for level in relative)
    shift = -10 * math.log10(power) - _CALIBRATION.get(style, 0.0)
    return {stem: round(level + shift, 2) for stem, level in zip(STEMS, relative, strict=True)}


def mix_offset_db(plan: SongPlan, stem: str) -> float:
    return mix_offsets(plan.style.name).get(stem, 0.0)
