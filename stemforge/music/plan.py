"""The song plan: one per request, shared by every stem so they play the same song.

Tempo grid, metre, key, one chord per bar, sections with fills at their ends, the arrangement
(who plays in which section, which take of its pattern each player uses, the register each
stem keeps to) and an ending bar that cadences to the tonic and rings out before the requested
duration.
"""

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from stemforge.music.chords import Chord, parse_chord
from stemforge.music.prompt import Feel, read_feel
from stemforge.music.spec import MusicSpec
from stemforge.music.styles import Style, resolve_style
from stemforge.music.theory import Key, estimate_key, progression_from_numerals, roman_to_symbol

SECTION_ENERGY = {"intro": 0.45, "verse": 0.65, "chorus": 1.0, "bridge": 0.55, "outro": 0.5}
METERS = ("4/4", "3/4", "6/8", "12/8")
# Felt beats per bar of each metre; compound metres count dotted quarters (three eighths each).
_PULSES = {"4/4": 4, "3/4": 3, "6/8": 2, "12/8": 4}
# How many takes (patterns, grooves, voicing styles) a stem has to choose from by the seed.
TAKES = 3
# Where each stem plays, as MIDI notes (low, high): the bass at the bottom, the pad under the
# melody, the comping instruments around and below it, strings and counter-lines above it.
REGISTERS: dict[str, tuple[int, int]] = {
    "bass": (28, 50),
    "guitar": (40, 69),
    "piano": (50, 70),
    "piano_left": (36, 48),
    "synth": (45, 64),
    "vocals": (60, 76),
    "strings": (67, 88),
    "brass": (55, 74),
    "counter": (72, 88),
}
# Enough time after the last downbeat for the final chord to ring and fade.
_MIN_TAIL_BEATS = 1.0


def rng_for(seed: int, name: str) -> np.random.Generator:
    """An RNG that depends only on the seed and a name ("plan", "drums", ...), so a stem renders
    the same whichever other stems are requested alongside it."""
    return np.random.default_rng([seed % 2**63, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class Section:
    name: str  # intro, verse, chorus, bridge, outro
    start_bar: int
    bars: int
    energy: float  # 0..1: how hard the band plays here
    tacet: frozenset[str] = frozenset()  # stems that rest through this section
    index: int = 0  # how many sections of this name came before (the first verse is 0)

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars


@dataclass(frozen=True)
class Arrangement:
    """Who plays what: the choices every part reads, drawn once per plan from the seed."""

    takes: dict[str, int] = field(default_factory=dict)  # stem -> its pattern take, 0 .. TAKES-1
    primary_comp: str = "piano"  # the comping stem that always plays; the other answers it
    registers: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(REGISTERS))


@dataclass(frozen=True)
class SongPlan:
    bpm: float
    beats_per_bar: int
    duration_seconds: float
    num_frames: int
    seed: int
    temperature: float
    style: Style
    feel: Feel
    key: Key
    progression: tuple[str, ...]  # the chord symbols as cycled, one per bar
    progression_source: str  # "request" or "style default"
    chords: tuple[Chord, ...]  # the chord of every bar, ending bar included
    sections: tuple[Section, ...]  # cover bars 0 .. ending_bar - 1
    ending_bar: int  # the bar whose downbeat carries the final chord, held to the end
    meter: str = "4/4"  # one of METERS
    arrangement: Arrangement = field(default_factory=Arrangement)

    @property
    def compound(self) -> bool:
        """6/8 and 12/8: each beat (a dotted quarter) divides in three eighths."""
        return self.meter in ("6/8", "12/8")

    @property
    def drive(self) -> float:
        """How much more (or, negative, less) energy the prompt asks than the style's own: an
        energetic prompt plays the verse like a chorus, a mellow one the chorus like a verse."""
        return 0.15 * self.feel.lift

    def section_feel(self, bar: int) -> str:
        """ "intro", "verse" or "chorus": which of its patterns a part plays in ``bar``."""
        name = self.section_of(bar).name
        if name == "intro":
            return "intro"
        big = name in ("chorus", "outro")
        if big and self.drive <= -0.1:
            return "verse"
        if name == "verse" and self.drive >= 0.1:
            return "chorus"
        return "chorus" if big else "verse"

    def take(self, stem: str) -> int:
        return self.arrangement.takes.get(stem, 0)

    def register(self, name: str) -> tuple[int, int]:
        return self.arrangement.registers.get(name, REGISTERS.get(name, (48, 72)))

    def plays(self, stem: str, bar: int) -> bool:
        """Whether ``stem`` plays in ``bar`` (the ending bar: everyone)."""
        return bar >= self.ending_bar or stem not in self.section_of(bar).tacet

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar_seconds(self) -> float:
        return self.beats_per_bar * self.beat_seconds

    @property
    def bars(self) -> int:
        """Bars that start before the end, the ending bar included."""
        return self.ending_bar + 1

    def chord_at(self, bar: int) -> Chord:
        return self.chords[min(bar, len(self.chords) - 1)]

    def section_of(self, bar: int) -> Section:
        for section in self.sections:
            if section.start_bar <= bar < section.end_bar:
                return section
        return self.sections[-1]

    def is_section_end(self, bar: int) -> bool:
        """The last bar before a new section or the ending: where the band plays a fill."""
        return any(section.end_bar - 1 == bar for section in self.sections)

    def is_section_start(self, bar: int) -> bool:
        return any(section.start_bar == bar for section in self.sections) or bar == self.ending_bar

    def time_at(self, bar: int, beat: float, swing: float | None = None, unit: float | None = None) -> float:
        """Seconds at ``beat`` (0-based, fractional) of ``bar``, with the style's swing: in each
        pair of swung notes (``unit`` beats each) the first is stretched to ``swing`` of the
        pair and the second squeezed, so beats stay on the grid and off-beats come late."""
        ratio = self.feel.swing if swing is None else swing
        pair = 2 * (self.swing_unit if unit is None else unit)
        whole, frac = divmod(beat, pair)
        frac /= pair
        warped = frac / 0.5 * ratio if frac < 0.5 else ratio + (frac - 0.5) / 0.5 * (1.0 - ratio)
        return (bar * self.beats_per_bar + (whole + warped) * pair) * self.beat_seconds

    @property
    def swing_unit(self) -> float:
        """The swung note value in beats: eighths of a compound metre, else the style's."""
        return 0.5 if self.compound else self.style.swing_unit

    @property
    def end_seconds(self) -> float:
        return self.num_frames / 44_100

    def to_dict(self) -> dict[str, Any]:
        return {
            "style": self.style.name,
            "bpm": self.bpm,
            "time_signature": self.meter,
            "key": self.key.name,
            "duration_seconds": self.duration_seconds,
            "seed": self.seed,
            "temperature": self.temperature,
            "chord_progression": list(self.progression),
            "chord_progression_source": self.progression_source,
            "bars": self.bars,
            "bar_seconds": self.bar_seconds,
            "swing": self.feel.swing,
            "energy": round(self.feel.energy, 3),
            "density": round(self.feel.density, 3),
            "prompt_words": list(self.feel.words),
            "sections": [
                {
                    "name": s.name,
                    "start_bar": s.start_bar,
                    "bars": s.bars,
                    "energy": round(s.energy, 3),
                    "tacet": sorted(s.tacet),
                    "start_seconds": round(s.start_bar * self.bar_seconds, 4),
                }
                for s in self.sections
            ],
            "ending": {"bar": self.ending_bar, "start_seconds": round(self.ending_bar * self.bar_seconds, 4)},
            "arrangement": {
                "takes": dict(sorted(self.arrangement.takes.items())),
                "primary_comp": self.arrangement.primary_comp,
                "registers": {k: list(v) for k, v in sorted(self.arrangement.registers.items())},
            },
            "chords": [
                {"bar": bar, "symbol": chord.symbol, "start_seconds": round(bar * self.bar_seconds, 4)}
                for bar, chord in enumerate(self.chords)
            ],
        }


def _default_progression(style: Style, rng: np.random.Generator) -> tuple[tuple[str, ...], Key]:
    tonic, mode = style.keys[int(rng.integers(len(style.keys)))]
    numerals = style.progressions[int(rng.integers(len(style.progressions)))]
    key = Key(tonic, mode)
    return tuple(c.symbol for c in progression_from_numerals(numerals, key)), key


def _phrase_bars(progression_length: int) -> int:
    """Section lengths are whole phrases: 4 bars, or the progression's length when it is longer
    and not too long (a 12-bar blues is one phrase)."""
    return progression_length if 4 < progression_length <= 12 else 4


def _short_form(body_bars: int, phrase: int) -> list[tuple[str, int]]:
    """Songs too short for full sections still go somewhere: a verse, then a chorus (after an
    intro of one phrase when there is room), in sections of a phrase or less."""
    if body_bars < 2:
        return [("verse", max(1, body_bars))]
    if body_bars < 2 * phrase:
        verse = body_bars // 2
        return [("verse", verse), ("chorus", body_bars - verse)]
    intro = phrase if body_bars >= 3 * phrase and phrase <= 4 else 0
    out: list[tuple[str, int]] = [("intro", intro)] if intro else []
    remaining = body_bars - intro
    names = ["verse", "chorus"]
    index = 0
    while remaining > 0:
        length = min(phrase, remaining)
        out.append((names[index % 2], length))
        remaining -= length
        index += 1
    return out


def layout_sections(body_bars: int, phrase: int, energy: float) -> tuple[Section, ...]:
    """intro / verse / chorus / (bridge) / outro over ``body_bars`` bars, scaled to fit: a
    short song is a verse and a chorus of a phrase each, a long one has two-phrase sections,
    a bridge and an outro. Sections start on the progression's first chord (they are whole
    phrases), a 12-bar form is never split by an intro, and the song ends in a chorus or outro,
    not in a verse cut short."""
    if body_bars <= 0:
        return (Section("verse", 0, 1, energy * SECTION_ENERGY["verse"]),)
    if phrase > 4 and body_bars < 2 * phrase:
        phrase = 4  # a 12-bar form that cannot fit twice is laid out in four-bar lines
    if body_bars < 6 * phrase:
        names_and_lengths = _short_form(body_bars, phrase)
    else:
        intro = phrase if phrase <= 4 else 0
        names_and_lengths = [("intro", intro)] if intro else []
        pattern = ["verse", "chorus", "verse", "chorus", "bridge", "chorus"]
        remaining = body_bars - intro
        outro = phrase if body_bars >= 12 * phrase and phrase <= 4 else 0
        remaining -= outro
        index = 0
        while remaining > 0:
            name = pattern[index % len(pattern)]
            length = phrase if name == "bridge" else 2 * phrase
            length = min(length, remaining)
            names_and_lengths.append((name, length))
            remaining -= length
            index += 1
        if outro:
            names_and_lengths.append(("outro", outro))
    # A verse cut short at the end (or any leftover under half a phrase) joins the section
    # before it, so the song ends on its chorus.
    while len(names_and_lengths) > 2 and (
        names_and_lengths[-1][1] < max(1, phrase // 2)
        or (names_and_lengths[-1][0] == "verse" and names_and_lengths[-1][1] < 2 * phrase)
    ):
        name, length = names_and_lengths.pop()
        last_name, last_length = names_and_lengths.pop()
        names_and_lengths.append((last_name, last_length + length))
    sections: list[Section] = []
    start = 0
    seen: dict[str, int] = {}
    for name, length in names_and_lengths:
        energy_here = min(1.0, energy * SECTION_ENERGY[name] + 0.15)
        sections.append(Section(name, start, length, energy_here, index=seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
        start += length
    return tuple(sections)


# The comping stem that carries the harmony in each style (the other one answers it).
_PRIMARY_COMP = {
    "pop": "guitar",
    "rock": "guitar",
    "metal": "guitar",
    "blues": "guitar",
    "disco": "guitar",
    "reggae": "guitar",
}


def _entries(sections: tuple[Section, ...], primary: str, other_is_percussion: bool) -> tuple[Section, ...]:
    """Instruments enter and drop out by section, as a band arranges a song: the intro is the
    primary comping instrument, pad, bass and drums; the second comping instrument enters at
    the first chorus (or the second verse) and sits out the bridge; strings, horns and
    counter-lines are for choruses, bridges and later verses. Never a stem silent throughout."""
    names = [s.name for s in sections]
    if len(sections) < 2:
        return sections
    secondary = "piano" if primary == "guitar" else "guitar"
    first_chorus = names.index("chorus") if "chorus" in names else len(sections)
    out = []
    for position, section in enumerate(sections):
        tacet: set[str] = set()
        before_chorus = position < first_chorus
        if section.name == "intro":
            tacet |= {"vocals", secondary}
            if not other_is_percussion:
                tacet.add("other")
        elif section.name == "verse" and section.index == 0 and before_chorus and len(sections) > 2:
            tacet.add(secondary)
            if not other_is_percussion:
                tacet.add("other")
        elif section.name == "bridge":
            tacet.add(secondary)
        elif section.name == "outro":
            tacet.add("vocals")
        out.append(replace(section, tacet=frozenset(tacet)))
    # A stem resting everywhere would be an empty stem: it plays wherever it was told to rest.
    for stem in ("guitar", "piano", "other", "vocals"):
        if all(stem in s.tacet for s in out):
            out = [replace(s, tacet=s.tacet - {stem}) for s in out]
    return tuple(out)


def _arrangement(style: Style, feel: Feel, rng: np.random.Generator) -> Arrangement:
    takes = {
        stem: int(rng.integers(TAKES)) for stem in ("drums", "bass", "guitar", "piano", "synth", "other")
    }
    return Arrangement(takes=takes, primary_comp=_PRIMARY_COMP.get(style.name, "piano"))


def _meter(spec: MusicSpec, feel: Feel) -> str:
    requested = (spec.time_signature or "").strip().replace(" ", "")
    if requested in METERS:
        return requested
    return feel.meter or "4/4"


def _tonic_chord(cycle: tuple[Chord, ...], key: Key) -> Chord:
    """The key's home chord for the final cadence: the progression's own chord on the tonic
    when it has one (its colour: Imaj7, i7, I7), else the plain triad."""
    for chord in cycle:
        if chord.root == key.tonic and chord.bass == chord.root and chord.is_minor == (key.mode == "minor"):
            return chord
    return parse_chord(roman_to_symbol("i" if key.mode == "minor" else "I", key))


def build_plan(spec: MusicSpec) -> SongPlan:
    style = resolve_style(spec.style, spec.prompt)
    feel = read_feel(spec.prompt, style)
    meter = _meter(spec, feel)
    feel = replace(feel, beats_per_bar=_PULSES[meter], meter=meter)
    if meter in ("6/8", "12/8"):  # each beat divides in three: eighths fall on the triplet grid
        feel = replace(feel, swing=2.0 / 3.0)
    rng = rng_for(spec.seed, "plan")
    if spec.chord_progression:
        progression = tuple(s.strip() for s in spec.chord_progression)
        source = "request"
        cycle = tuple(parse_chord(symbol) for symbol in progression)
        key = estimate_key(cycle)
    else:  # the style's key is known: no need to guess it
        progression, key = _default_progression(style, rng)
        source = "style default"
        cycle = tuple(parse_chord(symbol) for symbol in progression)
    bar_seconds = feel.beats_per_bar * 60.0 / spec.bpm
    tail = _MIN_TAIL_BEATS * 60.0 / spec.bpm
    ending_bar = max(0, int(np.floor((spec.duration_seconds - tail) / bar_seconds + 1e-9)))
    if ending_bar * bar_seconds >= spec.duration_seconds - 1e-9:
        ending_bar = max(0, ending_bar - 1)
    # One chord a bar from the cycle; the ending bar cadences home to the tonic, unless the song
    # accompanies the user's music: then every bar, the last included, is the music's chord.
    follows = spec.reference is not None and spec.reference.mode == "accompany"
    ending = cycle[ending_bar % len(cycle)] if follows else _tonic_chord(cycle, key)
    chords = (*(cycle[bar % len(cycle)] for bar in range(ending_bar)), ending)
    arrangement = _arrangement(style, feel, rng_for(spec.seed, "arrangement"))
    other = feel.instruments.get("other", style.other_instrument)
    sections = _entries(
        layout_sections(ending_bar, _phrase_bars(len(cycle)), feel.energy),
        arrangement.primary_comp,
        other.is_drum,
    )
    return SongPlan(
        bpm=spec.bpm,
        beats_per_bar=feel.beats_per_bar,
        duration_seconds=spec.duration_seconds,
        num_frames=spec.num_frames,
        seed=spec.seed,
        temperature=spec.temperature,
        style=style,
        feel=feel,
        key=key,
        progression=progression,
        progression_source=source,
        chords=chords,
        sections=sections,
        ending_bar=ending_bar,
        meter=meter,
        arrangement=arrangement,
    )
