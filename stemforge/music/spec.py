"""What every engine is asked to make: the request's musical conditioning, fully resolved."""

from dataclasses import dataclass
from enum import StrEnum

from stemforge.music.notes import Note

SAMPLE_RATE = 44_100
CHANNELS = 2


class StemType(StrEnum):
    VOCALS = "vocals"
    DRUMS = "drums"
    BASS = "bass"
    GUITAR = "guitar"
    PIANO = "piano"
    SYNTH = "synth"
    OTHER = "other"


STEM_TYPES: tuple[str, ...] = tuple(stem.value for stem in StemType)


REFERENCE_MODES = ("accompany", "style", "continue")


@dataclass(frozen=True)
class ReferenceSpec:
    """The user's own music a request plays along with: what engines use of it, resolved at the
    ingress (its tempo, key and chords are already in the spec's fields).

    ``accompany``: stems at its tempo, key and chords, bar 1 on its first downbeat (stems begin
    ``offset_seconds`` in, silent before). ``style``: its tempo, key, chords and sound, not
    aligned to it. ``continue``: new music that carries it on (the stems start where it ends)."""

    mode: str  # one of REFERENCE_MODES
    kind: str  # "audio" or "midi"
    duration_seconds: float  # of the reference
    offset_seconds: float = 0.0  # where bar 1 of the stems falls (accompany); 0 otherwise
    # The decoded reference (mono, 44.1 kHz, FLAC) in storage, for engines that hear it; the
    # engine replica loads it (engines never touch storage).
    audio_path: str | None = None
    # The MIDI's notes of each stem it plays (seconds from the MIDI's start): those parts are
    # played as written, the others composed to fit.
    midi_parts: tuple[tuple[str, tuple[Note, ...]], ...] = ()

    def midi_notes(self, stem: str) -> tuple[Note, ...] | None:
        return next((notes for name, notes in self.midi_parts if name == stem), None)


@dataclass(frozen=True)
class MusicSpec:
    """The conditioning shared by all stems of one request.

    Every field is resolved (no ``None`` but ``style``/``prompt``/``chord_progression``, which
    engines fill with their own defaults) so that the same spec always gives the same audio.
    """

    bpm: float
    duration_seconds: float
    seed: int
    temperature: float = 1.0
    style: str | None = None
    prompt: str | None = None
    chord_progression: tuple[str, ...] | None = None
    time_signature: str | None = None  # "4/4", "3/4", "6/8", "12/8"; None: the style's (or 4/4)
    lyrics: str | None = None  # words for the vocals; None: neutral syllables
    # Set when the request's stems come from more than one engine: every model engine then lines
    # its stems up on the tempo grid (stretch and shift), whatever its own time_stretch_to_bpm.
    align_to_grid: bool = False
    reference: ReferenceSpec | None = None  # the user's track or MIDI to play along with

    @property
    def num_frames(self) -> int:
        """Length of every stem in samples at ``SAMPLE_RATE``."""
        return round(self.duration_seconds * SAMPLE_RATE)
