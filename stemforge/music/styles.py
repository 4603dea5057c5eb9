"""Styles as data: groove, default harmony, instrumentation and feel of each genre we play.

The names of grooves and patterns (``drums="rock"``, ``bass="walking"``) are looked up by the
part composers in ``stemforge/music/parts``; instruments are General MIDI programs (the
SoundFont renderer plays them) with a DSP voice for the synthesis fallback.
"""

import re
from dataclasses import dataclass

DRUM_BANK = 128


@dataclass(frozen=True)
class Instrument:
    name: str
    program: int  # General MIDI program, or the drum kit's preset when bank is DRUM_BANK
    voice: str  # DSP fallback voice: kit, bass, sub808, pluck, keys, epiano, pad, lead, voice, strings, organ
    bank: int = 0

    @property
    def is_drum(self) -> bool:
        return self.bank == DRUM_BANK


def _kit(name: str, preset: int) -> Instrument:
    return Instrument(name, preset, "kit", DRUM_BANK)


GRAND_PIANO = Instrument("grand piano", 0, "keys")
RHODES = Instrument("rhodes", 4, "epiano")
ORGAN = Instrument("organ", 17, "organ")
STEEL_GUITAR = Instrument("steel-string acoustic guitar", 25, "pluck")
NYLON_GUITAR = Instrument("nylon-string guitar", 24, "pluck")
JAZZ_GUITAR = Instrument("jazz guitar", 26, "pluck")
CLEAN_GUITAR = Instrument("clean electric guitar", 27, "pluck")
OVERDRIVE_GUITAR = Instrument("overdrive guitar", 29, "pluck")
DISTORTION_GUITAR = Instrument("distortion guitar", 30, "pluck")
ACOUSTIC_BASS = Instrument("upright bass", 32, "bass")
FINGER_BASS = Instrument("fingered bass", 33, "bass")
PICKED_BASS = Instrument("picked bass", 34, "bass")
SLAP_BASS = Instrument("slap bass", 36, "bass")
SYNTH_BASS = Instrument("synth bass", 38, "bass")
SUB_808 = Instrument("808 sub bass", 38, "sub808")
STRINGS = Instrument("string ensemble", 48, "strings")
SLOW_STRINGS = Instrument("slow strings", 49, "strings")
OOH_VOICE = Instrument("ooh voice", 53, "voice")
AAH_CHOIR = Instrument("aah choir", 52, "voice")
SYNTH_VOICE = Instrument("synth voice", 54, "voice")
BRASS = Instrument("brass section", 61, "lead")
ALTO_SAX = Instrument("alto sax", 65, "lead")
FLUTE = Instrument("flute", 73, "lead")
VIBRAPHONE = Instrument("vibraphone", 11, "keys")
SAW_LEAD = Instrument("saw synth", 81, "lead")
SQUARE_LEAD = Instrument("square synth", 80, "lead")
WARM_PAD = Instrument("warm pad", 89, "pad")
POLYSYNTH = Instrument("polysynth", 90, "pad")

STANDARD_KIT = _kit("standard kit", 0)
ROOM_KIT = _kit("room kit", 8)
POWER_KIT = _kit("power kit", 16)
ELECTRONIC_KIT = _kit("electronic kit", 24)
TR808_KIT = _kit("TR-808 kit", 25)
JAZZ_KIT = _kit("jazz kit", 32)
BRUSH_KIT = _kit("brush kit", 40)


@dataclass(frozen=True)
class Style:
    name: str
    aliases: tuple[str, ...]
    # Roman numerals relative to the key's tonic (see theory.roman_to_symbol), one chord a bar.
    progressions: tuple[tuple[str, ...], ...]
    keys: tuple[tuple[int, str], ...]  # (tonic pitch class, mode) the style likes
    drums: str
    bass: str
    guitar: str
    piano: str
    synth: str
    other: str
    kit: Instrument
    bass_instrument: Instrument
    guitar_instrument: Instrument
    piano_instrument: Instrument
    synth_instrument: Instrument
    vocal_instrument: Instrument
    other_instrument: Instrument
    swing: float = 0.5  # share of a swing unit taken by its first half: 0.5 straight, 0.67 triplet
    swing_unit: float = 0.5  # in beats: 0.5 swings eighths, 0.25 swings sixteenths
    humanize_ms: float = 6.0  # timing spread of a player
    energy: float = 0.6  # 0 calm .. 1 full-on
    distortion: float = 0.0  # drive on the guitar: 0 clean .. 1 heavy
    reverb: float = 0.2  # room size 0 dry .. 1 hall


STYLES: dict[str, Style] = {
    style.name: style
    for style in (
        Style(
            "pop",
            ("pop", "synthpop", "indie", "dance pop", "top40"),
            (("I", "V", "vi", "IV"), ("vi", "IV", "I", "V"), ("I", "vi", "IV", "V")),
            ((0, "major"), (7, "major"), (2, "major"), (9, "major"), (5, "major")),
            "pop",
            "pop",
            "strum",
            "block",
            "pad",
            "strings",
            STANDARD_KIT,
            FINGER_BASS,
            STEEL_GUITAR,
            GRAND_PIANO,
            POLYSYNTH,
            OOH_VOICE,
            STRINGS,
            humanize_ms=5.0,
            energy=0.6,
            reverb=0.3,
        ),
        Style(
            "rock",
            ("rock", "classic rock", "alternative", "grunge", "punk", "indie rock", "hard rock"),
            (("I", "bVII", "IV", "I"), ("I", "IV", "V", "IV"), ("vi", "IV", "I", "V")),
            ((4, "major"), (9, "major"), (2, "major"), (7, "major")),
            "rock",
            "eighths",
            "power",
            "block",
            "pad",
            "strings",
            ROOM_KIT,
            PICKED_BASS,
            OVERDRIVE_GUITAR,
            GRAND_PIANO,
            WARM_PAD,
            OOH_VOICE,
            STRINGS,
            humanize_ms=6.0,
            energy=0.75,
            distortion=0.6,
            reverb=0.25,
        ),
        Style(
            "metal",
            ("metal", "heavy metal", "thrash", "metalcore", "djent"),
            (("i", "bVI", "bVII", "i"), ("i", "bVII", "bVI", "bVII"), ("i", "iv", "bVI", "V")),
            ((4, "minor"), (2, "minor"), (9, "minor")),
            "metal",
            "chug",
            "power",
            "block",
            "pad",
            "strings",
            POWER_KIT,
            PICKED_BASS,
            DISTORTION_GUITAR,
            GRAND_PIANO,
            WARM_PAD,
            AAH_CHOIR,
            SLOW_STRINGS,
            humanize_ms=2.5,
            energy=0.95,
            distortion=1.0,
            reverb=0.25,
        ),
        Style(
            "hip-hop",
            ("hip-hop", "hiphop", "hip hop", "rap", "boom bap", "trap", "boombap"),
            (("i7", "iv7", "bVImaj7", "V7"), ("i7", "bVI", "bIII", "bVII"), ("vi7", "ii7", "V7", "Imaj7")),
            ((9, "minor"), (0, "minor"), (2, "minor"), (5, "minor")),
            "hip-hop",
            "sub808",
            "arpeggio",
            "epiano",
            "pad",
            "counter",
            TR808_KIT,
            SUB_808,
            CLEAN_GUITAR,
            RHODES,
            WARM_PAD,
            SYNTH_VOICE,
            VIBRAPHONE,
            swing=0.58,
            swing_unit=0.25,
            humanize_ms=8.0,
            energy=0.55,
            reverb=0.2,
        ),
        Style(
            "house",
            ("house", "deep house", "garage", "tech house", "dance"),
            (("i7", "bVII", "bVI", "bVII"), ("vi", "IV", "I", "V"), ("ii7", "V7", "Imaj7", "vi7")),
            ((9, "minor"), (5, "minor"), (7, "minor"), (0, "major")),
            "house",
            "offbeat",
            "muted",
            "stabs",
            "arp",
            "percussion",
            ELECTRONIC_KIT,
            SYNTH_BASS,
            CLEAN_GUITAR,
            GRAND_PIANO,
            SAW_LEAD,
            SYNTH_VOICE,
            STANDARD_KIT,
            humanize_ms=1.5,
            energy=0.75,
            reverb=0.35,
        ),
        Style(
            "edm",
            (
                "edm",
                "electronic",
                "electro",
                "techno",
                "trance",
                "progressive house",
                "future bass",
                "synthwave",
            ),
            (("vi", "IV", "I", "V"), ("i", "bVI", "bIII", "bVII"), ("i", "bVII", "bVI", "bVII")),
            ((9, "minor"), (2, "minor"), (7, "minor"), (4, "minor")),
            "edm",
            "octave",
            "muted",
            "stabs",
            "arp",
            "percussion",
            ELECTRONIC_KIT,
            SYNTH_BASS,
            CLEAN_GUITAR,
            GRAND_PIANO,
            SAW_LEAD,
            SYNTH_VOICE,
            STANDARD_KIT,
            humanize_ms=1.0,
            energy=0.9,
            reverb=0.4,
        ),
        Style(
            "disco",
            ("disco", "nu disco", "nu-disco", "boogie"),
            (("vi7", "ii7", "V7", "Imaj7"), ("i7", "iv7", "i7", "iv7"), ("ii7", "V7", "iii7", "vi7")),
            ((9, "minor"), (2, "major"), (5, "major")),
            "disco",
            "octave",
            "scratch",
            "stabs",
            "pad",
            "strings",
            STANDARD_KIT,
            FINGER_BASS,
            CLEAN_GUITAR,
            GRAND_PIANO,
            POLYSYNTH,
            OOH_VOICE,
            STRINGS,
            humanize_ms=3.0,
            energy=0.8,
            reverb=0.3,
        ),
        Style(
            "funk",
            ("funk", "soul", "r&b", "rnb", "neo soul", "neo-soul", "motown"),
            (("i7", "iv7", "i7", "V7"), ("I9", "IV9", "I9", "IV9"), ("ii7", "V7", "ii7", "V7")),
            ((4, "minor"), (9, "minor"), (2, "minor"), (7, "major")),
            "funk",
            "funk",
            "funk",
            "comp",
            "pad",
            "brass",
            ROOM_KIT,
            SLAP_BASS,
            CLEAN_GUITAR,
            RHODES,
            POLYSYNTH,
            OOH_VOICE,
            BRASS,
            swing=0.54,
            swing_unit=0.25,
            humanize_ms=4.0,
            energy=0.75,
            reverb=0.2,
        ),
        Style(
            "jazz",
            ("jazz", "swing", "bebop", "big band", "bossa", "bossa nova", "smooth jazz"),
            (("ii7", "V7", "Imaj7", "vi7"), ("Imaj7", "vi7", "ii7", "V7"), ("iii7", "vi7", "ii7", "V7")),
            ((5, "major"), (10, "major"), (0, "major"), (3, "major")),
            "jazz",
            "walking",
            "comp",
            "comp",
            "pad",
            "counter",
            JAZZ_KIT,
            ACOUSTIC_BASS,
            JAZZ_GUITAR,
            GRAND_PIANO,
            WARM_PAD,
            OOH_VOICE,
            VIBRAPHONE,
            swing=0.66,
            swing_unit=0.5,
            humanize_ms=9.0,
            energy=0.5,
            reverb=0.3,
        ),
        Style(
            "reggae",
            ("reggae", "dub", "ska", "dancehall", "roots"),
            (("I", "IV", "V", "IV"), ("vi", "IV", "I", "V"), ("I", "vi", "IV", "V")),
            ((7, "major"), (0, "major"), (2, "major"), (9, "major")),
            "reggae",
            "reggae",
            "skank",
            "bubble",
            "pad",
            "percussion",
            ROOM_KIT,
            FINGER_BASS,
            CLEAN_GUITAR,
            ORGAN,
            WARM_PAD,
            OOH_VOICE,
            STANDARD_KIT,
            swing=0.56,
            swing_unit=0.25,
            humanize_ms=6.0,
            energy=0.5,
            reverb=0.35,
        ),
        Style(
            "lo-fi",
            ("lo-fi", "lofi", "lo fi", "chillhop", "chill", "study beats", "jazzhop"),
            (
                ("IVmaj7", "iii7", "ii7", "Imaj7"),
                ("ii7", "V7", "Imaj7", "vi7"),
                ("Imaj7", "vi7", "ii7", "V7"),
            ),
            ((0, "major"), (5, "major"), (2, "major"), (3, "major")),
            "lo-fi",
            "pop",
            "arpeggio",
            "epiano",
            "pad",
            "counter",
            BRUSH_KIT,
            FINGER_BASS,
            NYLON_GUITAR,
            RHODES,
            WARM_PAD,
            OOH_VOICE,
            VIBRAPHONE,
            swing=0.6,
            swing_unit=0.25,
            humanize_ms=12.0,
            energy=0.35,
            reverb=0.4,
        ),
        Style(
            "ballad",
            ("ballad", "piano ballad", "slow", "soft rock", "singer-songwriter", "acoustic", "folk"),
            (("I", "V", "vi", "IV"), ("I", "vi", "IV", "V"), ("I", "V", "vi", "iii", "IV", "I", "IV", "V")),
            ((0, "major"), (7, "major"), (5, "major"), (10, "major"), (3, "major")),
            "ballad",
            "ballad",
            "arpeggio",
            "ballad",
            "pad",
            "strings",
            STANDARD_KIT,
            FINGER_BASS,
            STEEL_GUITAR,
            GRAND_PIANO,
            WARM_PAD,
            OOH_VOICE,
            SLOW_STRINGS,
            humanize_ms=7.0,
            energy=0.35,
            reverb=0.5,
        ),
        Style(
            "blues",
            ("blues", "shuffle", "country", "rockabilly", "boogie woogie"),
            (("I7", "IV7", "I7", "I7", "IV7", "IV7", "I7", "I7", "V7", "IV7", "I7", "V7"),),
            ((4, "major"), (9, "major"), (7, "major")),
            "blues",
            "walking",
            "strum",
            "comp",
            "pad",
            "brass",
            ROOM_KIT,
            FINGER_BASS,
            OVERDRIVE_GUITAR,
            GRAND_PIANO,
            WARM_PAD,
            OOH_VOICE,
            ALTO_SAX,
            swing=0.66,
            swing_unit=0.5,
            humanize_ms=7.0,
            energy=0.6,
            distortion=0.3,
            reverb=0.3,
        ),
    )
}

DEFAULT_STYLE = "pop"


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9&]+", " ", text.lower()).strip()


def _alias_table() -> list[tuple[str, str]]:
    """(alias, style name), longest alias first so "hip hop" wins over "hop"."""
    pairs = [(_normalize(alias), style.name) for style in STYLES.values() for alias in style.aliases]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


_ALIASES = _alias_table()


def find_style(text: str | None) -> Style | None:
    """The style named in ``text`` (a style field or a prompt), matching whole words."""
    if not text:
        return None
    words = f" {_normalize(text)} "
    exact = STYLES.get(_normalize(text).replace(" ", "-"))
    if exact is not None:
        return exact
    for alias, name in _ALIASES:
        if f" {alias} " in words:
            return STYLES[name]
    return None


def resolve_style(style: str | None, prompt: str | None) -> Style:
    """The request's style; else one named in the prompt; else pop."""
    return find_style(style) or find_style(prompt) or STYLES[DEFAULT_STYLE]
