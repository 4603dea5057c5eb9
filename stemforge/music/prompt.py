"""Prompt words that steer the arrangement: energy, density, drive, swing, metre, instruments."""

import re
from dataclasses import dataclass, field

from stemforge.music import styles as s
from stemforge.music.styles import Instrument, Style

_MORE_ENERGY = (
    "energetic",
    "upbeat",
    "driving",
    "aggressive",
    "intense",
    "powerful",
    "hype",
    "epic",
    "loud",
    "anthemic",
    "bouncy",
    "party",
    "fast",
    "uplifting",
    "heavy",
)
_LESS_ENERGY = (
    "mellow",
    "calm",
    "chill",
    "soft",
    "relaxed",
    "gentle",
    "laid back",
    "laid-back",
    "quiet",
    "dreamy",
    "sad",
    "melancholic",
    "slow",
    "ambient",
    "peaceful",
    "lazy",
    "smooth",
    "intimate",
)
_SPARSE = ("sparse", "minimal", "minimalist", "simple", "stripped", "stripped back", "empty", "bare")
_BUSY = ("busy", "dense", "complex", "full", "intricate", "technical", "groovy")

# Longest phrases first: "electric piano" must win over "piano".
_INSTRUMENT_WORDS: tuple[tuple[str, str, Instrument], ...] = (
    ("electric piano", "piano", s.RHODES),
    ("rhodes", "piano", s.RHODES),
    ("wurlitzer", "piano", s.RHODES),
    ("grand piano", "piano", s.GRAND_PIANO),
    ("acoustic piano", "piano", s.GRAND_PIANO),
    ("organ", "piano", s.ORGAN),
    ("acoustic guitar", "guitar", s.STEEL_GUITAR),
    ("nylon", "guitar", s.NYLON_GUITAR),
    ("classical guitar", "guitar", s.NYLON_GUITAR),
    ("jazz guitar", "guitar", s.JAZZ_GUITAR),
    ("clean guitar", "guitar", s.CLEAN_GUITAR),
    ("distorted", "guitar", s.DISTORTION_GUITAR),
    ("distortion", "guitar", s.DISTORTION_GUITAR),
    ("overdrive", "guitar", s.OVERDRIVE_GUITAR),
    ("crunchy", "guitar", s.OVERDRIVE_GUITAR),
    ("808", "bass", s.SUB_808),
    ("synth bass", "bass", s.SYNTH_BASS),
    ("slap", "bass", s.SLAP_BASS),
    ("upright bass", "bass", s.ACOUSTIC_BASS),
    ("double bass", "bass", s.ACOUSTIC_BASS),
    ("strings", "other", s.STRINGS),
    ("orchestral", "other", s.STRINGS),
    ("cinematic", "other", s.SLOW_STRINGS),
    ("violin", "other", s.STRINGS),
    ("brass", "other", s.BRASS),
    ("horns", "other", s.BRASS),
    ("trumpet", "other", s.BRASS),
    ("saxophone", "other", s.ALTO_SAX),
    ("sax", "other", s.ALTO_SAX),
    ("flute", "other", s.FLUTE),
    ("vibraphone", "other", s.VIBRAPHONE),
    ("vibes", "other", s.VIBRAPHONE),
    ("choir", "vocals", s.AAH_CHOIR),
    ("vocoder", "vocals", s.SYNTH_VOICE),
    ("robotic", "vocals", s.SYNTH_VOICE),
    ("supersaw", "synth", s.SAW_LEAD),
    ("saw", "synth", s.SAW_LEAD),
    ("chiptune", "synth", s.SQUARE_LEAD),
    ("square", "synth", s.SQUARE_LEAD),
    ("pad", "synth", s.WARM_PAD),
    ("brushes", "drums", s.BRUSH_KIT),
    ("tr 808", "drums", s.TR808_KIT),
    ("electronic drums", "drums", s.ELECTRONIC_KIT),
)


_ACOUSTIC: dict[str, Instrument] = {
    "guitar": s.STEEL_GUITAR,
    "bass": s.ACOUSTIC_BASS,
    "piano": s.GRAND_PIANO,
    "synth": s.SLOW_STRINGS,
    "drums": s.STANDARD_KIT,
}


@dataclass(frozen=True)
class Feel:
    """How the prompt bends the style: the parts read these instead of the raw words."""

    energy: float  # 0 calm .. 1 full-on
    density: float  # note density multiplier: 0.5 sparse .. 1.5 busy
    distortion: float  # guitar drive 0 .. 1
    swing: float  # as Style.swing
    half_time: bool
    beats_per_bar: int
    meter: str | None = None  # a metre the prompt named ("3/4" for a waltz), else None
    lift: int = 0  # energy words minus calm words: how far the prompt pushes the style
    instruments: dict[str, Instrument] = field(default_factory=dict)  # stem -> instrument
    words: tuple[str, ...] = ()  # the prompt words that steered something


def _normalize(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9/&]+", " ", text.lower()).strip() + " "


def _has(words: str, phrase: str) -> bool:
    return f" {_normalize(phrase).strip()} " in words


def read_feel(prompt: str | None, style: Style) -> Feel:
    words = _normalize(prompt or "")
    heard: list[str] = []

    def hits(phrases: tuple[str, ...]) -> int:
        found = [p for p in phrases if _has(words, p)]
        heard.extend(found)
        return len(found)

    lift = hits(_MORE_ENERGY) - hits(_LESS_ENERGY)
    energy = style.energy + 0.15 * lift
    density = 1.0 - 0.3 * hits(_SPARSE) + 0.25 * hits(_BUSY)
    distortion = style.distortion
    instruments: dict[str, Instrument] = {}
    taken = words
    for phrase, stem, instrument in _INSTRUMENT_WORDS:
        if _has(taken, phrase) and stem not in instruments:
            instruments[stem] = instrument
            heard.append(phrase)
            taken = taken.replace(f" {_normalize(phrase).strip()} ", " ")
    if _has(words, "acoustic") or _has(words, "unplugged"):
        # An acoustic band: wooden instruments for every stem the prompt did not name.
        heard.append("acoustic")
        for stem, instrument in _ACOUSTIC.items():
            instruments.setdefault(stem, instrument)
        distortion = 0.0
    if _has(words, "distorted") or _has(words, "distortion") or _has(words, "heavy"):
        distortion = max(distortion, 0.8)
    if _has(words, "clean"):
        distortion = 0.0
        heard.append("clean")
    swing = style.swing
    if hits(("swing", "swung", "shuffle", "triplet feel")):
        swing = 0.66
    elif hits(("straight",)):
        swing = 0.5
    half_time = bool(hits(("half time", "half-time", "halftime")))
    meter = None
    if hits(("12/8",)):
        meter = "12/8"
    elif hits(("6/8",)):
        meter = "6/8"
    elif hits(("waltz", "3/4")):
        meter = "3/4"
    beats_per_bar = {"3/4": 3, "6/8": 2}.get(meter or "", 4)
    return Feel(
        energy=min(1.0, max(0.1, energy)),
        density=min(1.5, max(0.5, density)),
        distortion=min(1.0, distortion),
        swing=swing,
        half_time=half_time,
        beats_per_bar=beats_per_bar,
        meter=meter,
        lift=lift,
        instruments=instruments,
        words=tuple(dict.fromkeys(heard)),
    )
