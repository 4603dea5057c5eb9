"""Per-stem effect chains (pedalboard): compression, drive, filtering, delay and reverb, set by
the stem, the style's room and the prompt's drive."""

from dataclasses import dataclass

import numpy as np
import pedalboard as pb


@dataclass(frozen=True)
class EffectSettings:
    stem: str
    reverb: float  # 0 dry .. 1 hall (the style's room)
    distortion: float  # 0 clean .. 1 heavy (guitar; a little on bass when heavy)
    beat_seconds: float  # delays are timed to the beat
    lofi: bool = False  # dull the top end and crush a little, like a worn tape


def effect_chain(settings: EffectSettings) -> pb.Pedalboard:
    stem, room = settings.stem, settings.reverb
    plugins: list[pb.Plugin] = []
    if stem == "drums":
        plugins += [
            pb.HighpassFilter(30.0),
            pb.Compressor(threshold_db=-18.0, ratio=3.0, attack_ms=6.0, release_ms=120.0),
            pb.Reverb(room_size=0.15 + 0.3 * room, wet_level=0.05 + 0.06 * room, dry_level=1.0, width=0.8),
        ]
    elif stem == "bass":
        plugins += [pb.HighpassFilter(28.0)]
        if settings.distortion > 0.5:
            plugins += [pb.Distortion(drive_db=6.0 * settings.distortion), pb.LowpassFilter(3000.0)]
        plugins += [pb.Compressor(threshold_db=-20.0, ratio=4.0, attack_ms=10.0, release_ms=100.0)]
    elif stem == "guitar":
        plugins += [pb.HighpassFilter(80.0)]
        if settings.distortion > 0:
            # Drive, then a speaker cabinet's roll-off.
            plugins += [pb.Distortion(drive_db=8.0 + 22.0 * settings.distortion), pb.LowpassFilter(5500.0)]
        plugins += [
            pb.Compressor(threshold_db=-18.0, ratio=2.5, attack_ms=10.0, release_ms=150.0),
            pb.Reverb(room_size=0.3 + 0.4 * room, wet_level=0.08 + 0.12 * room, dry_level=1.0),
        ]
    elif stem == "piano":
        plugins += [
            pb.Compressor(threshold_db=-20.0, ratio=2.0, attack_ms=15.0, release_ms=200.0),
            pb.Reverb(room_size=0.35 + 0.4 * room, wet_level=0.1 + 0.15 * room, dry_level=1.0),
        ]
    elif stem == "synth":
        plugins += [
            pb.Chorus(rate_hz=0.6, depth=0.25, mix=0.35),
            pb.Delay(delay_seconds=0.75 * settings.beat_seconds, feedback=0.3, mix=0.15),
            pb.Reverb(room_size=0.6 + 0.35 * room, wet_level=0.2 + 0.15 * room, dry_level=1.0),
        ]
    elif stem == "vocals":
        plugins += [
            pb.HighpassFilter(120.0),
            pb.Compressor(threshold_db=-20.0, ratio=3.0, attack_ms=5.0, release_ms=120.0),
            pb.Delay(delay_seconds=0.5 * settings.beat_seconds, feedback=0.2, mix=0.1),
            pb.Reverb(room_size=0.5 + 0.4 * room, wet_level=0.15 + 0.15 * room, dry_level=1.0),
        ]
    else:
        plugins += [pb.Reverb(room_size=0.45 + 0.4 * room, wet_level=0.12 + 0.15 * room, dry_level=1.0)]
    if settings.lofi:
        plugins += [pb.LowpassFilter(6500.0), pb.Bitcrush(bit_depth=12.0)]
    return pb.Pedalboard(plugins)


def apply_effects(audio: np.ndarray, sample_rate: int, settings: EffectSettings) -> np.ndarray:
    """``audio`` float32 ``(frames, 2)`` through the stem's chain; same length out."""
    processed = effect_chain(settings)(audio.T.copy(), float(sample_rate), reset=True)
    return np.ascontiguousarray(processed.T, dtype=np.float32)
