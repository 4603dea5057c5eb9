"""What every engine is asked to make: the request's musical conditioning, fully resolved."""

from dataclasses import dataclass
from enum import StrEnum

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

    @property
    def num_frames(self) -> int:
        """Length of every stem in samples at ``SAMPLE_RATE``."""
        return round(self.duration_seconds * SAMPLE_RATE)
