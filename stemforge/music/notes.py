"""Note events: what a part plays, before any sound is made (and what its MIDI file holds)."""

from dataclasses import dataclass, field

import numpy as np

from stemforge.music.styles import Instrument


@dataclass(frozen=True, slots=True)
class Note:
    start: float  # seconds from the start of the song
    duration: float  # seconds
    pitch: int  # MIDI note number (GM drum map on drum parts)
    velocity: int  # 1..127


@dataclass
class Part:
    """One stem's performance: its instrument and notes, and what the composer decided."""

    stem: str
    instrument: Instrument
    notes: list[Note] = field(default_factory=list)
    variations: int = 0  # bars played differently from the plain pattern (fills, embellishments)
    pan: float = 0.0  # -1 left .. 1 right, for the stereo image of the stem

    def add(self, start: float, duration: float, pitch: int, velocity: float) -> None:
        if duration <= 0:
            return
        self.notes.append(Note(max(0.0, start), duration, int(pitch), int(np.clip(round(velocity), 1, 127))))

    def sorted_notes(self) -> list[Note]:
        return sorted(self.notes, key=lambda n: (n.start, n.pitch))


class Humanizer:
    """A player's small timing and velocity deviations. ``amount`` scales both (0 = machine)."""

    def __init__(self, rng: np.random.Generator, timing_ms: float, amount: float) -> None:
        self._rng = rng
        self._sigma = timing_ms / 1000.0 * amount
        self._amount = amount

    def time(self, seconds: float) -> float:
        if self._sigma <= 0:
            return seconds
        return seconds + float(np.clip(self._rng.normal(0.0, self._sigma), -2 * self._sigma, 2 * self._sigma))

    def velocity(self, velocity: float, spread: float = 6.0) -> float:
        if self._amount <= 0:
            return velocity
        return velocity + float(self._rng.normal(0.0, spread * self._amount))


def humanize_amount(temperature: float) -> float:
    """Half a player's looseness at temperature 0, all of it from 1, more above."""
    return 0.5 + 0.5 * min(temperature, 2.0)


def variation_chance(temperature: float) -> float:
    """Chance that a bar departs from the plain pattern: none at 0, often at 2."""
    return min(0.8, 0.3 * max(temperature, 0.0))
