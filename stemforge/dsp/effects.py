"""Per-stem effect chains (pedalboard): compression, drive, filtering, delay and reverb, set by
the stem, the style's room and the prompt's drive.

Every chain starts with a high-pass (a DC blocker at the least, higher where the instrument has
nothing useful down there), and every reverb is a send: the dry signal passes untouched and the
reverb hears a high-passed copy, so low notes never turn into a sub-sonic boom and the pad
samples' DC offset is never multiplied by the room.
"""

from dataclasses import dataclass

import numpy as np
import pedalboard as pb

from stemforge.dsp.filters import DC_BLOCK_HZ, highpass

# The head of every chain: a second-order high-pass per stem (Hz).
HEAD_HIGHPASS_HZ = {
    "drums": 28.0,
    "bass": 28.0,
    "guitar": 75.0,
    "piano": 35.0,
    "synth": 45.0,
    "vocals": 90.0,
    "other": 40.0,
}
_REVERB_SEND_HIGHPASS_HZ = 180.0


@dataclass(frozen=True)
class EffectSettings:
    stem: str
    reverb: float  # 0 dry .. 1 hall (the style's room)
    distortion: float  # 0 clean .. 1 heavy (guitar; a little on bass when heavy)
    beat_seconds: float  # delays are timed to the beat
    lofi: bool = False  # dull the top end and crush a little, like a worn tape


def _reverb_send(room_size: float, wet: float, width: float = 1.0) -> pb.Plugin:
    """Dry through, plus a high-passed copy into the reverb (wet only)."""
    return pb.Mix(
        [
            pb.Gain(0.0),
            pb.Pedalboard(
                [
                    pb.HighpassFilter(_REVERB_SEND_HIGHPASS_HZ),
                    pb.Reverb(room_size=room_size, wet_level=wet, dry_level=0.0, width=width),
                ]
            ),
        ]
    )


def effect_chain(settings: EffectSettings) -> pb.Pedalboard:
    """The stem's chain after its head high-pass (see ``apply_effects``)."""
    stem, room = settings.stem, settings.reverb
    plugins: list[pb.Plugin] = []
    if stem == "drums":
        plugins += [
            pb.Compressor(threshold_db=-18.0, ratio=3.0, attack_ms=6.0, release_ms=120.0),
            _reverb_send(0.15 + 0.3 * room, 0.05 + 0.06 * room, width=0.9),
        ]
    elif stem == "bass":
        if settings.distortion > 0.5:
            plugins += [pb.Distortion(drive_db=6.0 * settings.distortion), pb.LowpassFilter(3000.0)]
        plugins += [pb.Compressor(threshold_db=-20.0, ratio=4.0, attack_ms=10.0, release_ms=100.0)]
    elif stem == "guitar":
        if settings.distortion > 0:
            # Drive, then a speaker cabinet's roll-off.
            plugins += [pb.Distortion(drive_db=8.0 + 22.0 * settings.distortion), pb.LowpassFilter(5500.0)]
        plugins += [
            pb.Compressor(threshold_db=-18.0, ratio=2.5, attack_ms=10.0, release_ms=150.0),
            _reverb_send(0.3 + 0.4 * room, 0.08 + 0.12 * room),
        ]
    elif stem == "piano":
        plugins += [
            pb.Compressor(threshold_db=-20.0, ratio=2.0, attack_ms=15.0, release_ms=200.0),
            _reverb_send(0.35 + 0.4 * room, 0.1 + 0.15 * room),
        ]
    elif stem == "synth":
        plugins += [
            pb.Chorus(rate_hz=0.6, depth=0.25, mix=0.35),
            pb.Delay(delay_seconds=0.75 * settings.beat_seconds, feedback=0.3, mix=0.15),
            _reverb_send(0.6 + 0.35 * room, 0.2 + 0.15 * room),
        ]
    elif stem == "vocals":
        plugins += [
            pb.Compressor(threshold_db=-20.0, ratio=3.0, attack_ms=5.0, release_ms=120.0),
            pb.Delay(delay_seconds=0.5 * settings.beat_seconds, feedback=0.2, mix=0.1),
            _reverb_send(0.5 + 0.4 * room, 0.15 + 0.15 * room),
        ]
    else:
        plugins += [_reverb_send(0.45 + 0.4 * room, 0.12 + 0.15 * room)]
    if settings.lofi:
        plugins += [pb.LowpassFilter(6500.0), pb.Bitcrush(bit_depth=12.0)]
    return pb.Pedalboard(plugins)


def apply_effects(audio: np.ndarray, sample_rate: int, settings: EffectSettings) -> np.ndarray:
    """``audio`` float32 ``(frames, 2)`` through the stem's head high-pass and chain; same
    length out."""
    cutoff = HEAD_HIGHPASS_HZ.get(settings.stem, DC_BLOCK_HZ)
    clean = highpass(audio, sample_rate, cutoff, order=2)
    processed = effect_chain(settings)(clean.T.copy(), float(sample_rate), reset=True)
    return np.ascontiguousarray(processed.T, dtype=np.float32)
