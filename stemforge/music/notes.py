"""Note events: what a part plays, before any sound is made (and what its MIDI file holds)."""

from dataclasses import dataclass, field

import numpy as np

from stemforge.music.styles import Instrument

# The shortest note a part keeps, and the silence left between two notes of one pitch.
MIN_NOTE_SECONDS = 0.012
NOTE_GAP_SECONDS = 0.002


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
    key_pans: dict[int, float] = field(default_factory=dict)  # pitch -> pan where it differs (kit pieces)

    def add(self, start: float, duration: float, pitch: int, velocity: float) -> None:
        if duration <= 0:
            return
        self.notes.append(Note(max(0.0, start), duration, int(pitch), int(np.clip(round(velocity), 1, 127))))

    def sorted_notes(self) -> list[Note]:
        return sorted(self.notes, key=lambda n: (n.start, n.pitch))

    def tidy(self, end_seconds: float) -> None:
        """What a player (and a MIDI file) can actually do with one key: no two notes of a pitch
        at once. A note of a pitch ends where the next one of that pitch starts (less a hair,
        so every MIDI reader pairs the note-off with its own note-on); two that start together
        are one note (the louder); nothing starts too close to the end to be heard or is held
        past it. The SoundFont and DSP renderers play exactly these notes, so the MIDI file
        and the audio agree note for note."""
        by_pitch: dict[int, list[Note]] = {}
        for note in self.notes:
            by_pitch.setdefault(note.pitch, []).append(note)
        tidied: list[Note] = []
        for pitch, same in by_pitch.items():
            same.sort(key=lambda n: (n.start, -n.velocity))
            kept: list[Note] = []
            for note in same:
                if kept and note.start - kept[-1].start < MIN_NOTE_SECONDS + NOTE_GAP_SECONDS:
                    held = kept[-1]
                    end = max(held.start + held.duration, note.start + note.duration)
                    kept[-1] = Note(held.start, end - held.start, pitch, max(held.velocity, note.velocity))
                    continue
                if kept and kept[-1].start + kept[-1].duration > note.start - NOTE_GAP_SECONDS:
                    held = kept[-1]
                    kept[-1] = Note(
                        held.start, note.start - NOTE_GAP_SECONDS - held.start, pitch, held.velocity
                    )
                kept.append(note)
            for note in kept:
                if note.start > end_seconds - MIN_NOTE_SECONDS:
                    continue
                duration = min(note.duration, end_seconds - note.start)
                tidied.append(Note(note.start, duration, pitch, note.velocity))
        self.notes = sorted(tidied, key=lambda n: (n.start, n.pitch))


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
