"""The song plan: one per request, shared by every stem so they play the same song.

Tempo grid, metre, key, one chord per bar, sections with fills at their ends, and an ending bar
where the last chord rings out before the requested duration.
"""

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from stemforge.music.chords import Chord, parse_chord
from stemforge.music.prompt import Feel, read_feel
from stemforge.music.spec import MusicSpec
from stemforge.music.styles import Style, resolve_style
from stemforge.music.theory import Key, estimate_key, progression_from_numerals

SECTION_ENERGY = {"intro": 0.45, "verse": 0.65, "chorus": 1.0, "bridge": 0.55, "outro": 0.5}
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

    @property
    def end_bar(self) -> int:
        return self.start_bar + self.bars


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
        pair = 2 * (self.style.swing_unit if unit is None else unit)
        whole, frac = divmod(beat, pair)
        frac /= pair
        warped = frac / 0.5 * ratio if frac < 0.5 else ratio + (frac - 0.5) / 0.5 * (1.0 - ratio)
        return (bar * self.beats_per_bar + (whole + warped) * pair) * self.beat_seconds

    @property
    def end_seconds(self) -> float:
        return self.num_frames / 44_100

    def to_dict(self) -> dict[str, Any]:
        return {
            "style": self.style.name,
            "bpm": self.bpm,
            "time_signature": f"{self.beats_per_bar}/4",
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
                    "start_seconds": round(s.start_bar * self.bar_seconds, 4),
                }
                for s in self.sections
            ],
            "ending": {"bar": self.ending_bar, "start_seconds": round(self.ending_bar * self.bar_seconds, 4)},
            "chords": [
                {"bar": bar, "symbol": chord.symbol, "start_seconds": round(bar * self.bar_seconds, 4)}
                for bar, chord in enumerate(self.chords)
            ],
        }


def _default_progression(style: Style, rng: np.random.Generator) -> tuple[str, ...]:
    tonic, mode = style.keys[int(rng.integers(len(style.keys)))]
    numerals = style.progressions[int(rng.integers(len(style.progressions)))]
    return tuple(c.symbol for c in progression_from_numerals(numerals, Key(tonic, mode)))


def _phrase_bars(progression_length: int) -> int:
    """Section lengths are whole phrases: 4 bars, or the progression's length when it is longer
    and not too long (a 12-bar blues is one phrase)."""
    return progression_length if 4 < progression_length <= 12 else 4


def layout_sections(body_bars: int, phrase: int, energy: float) -> tuple[Section, ...]:
    """intro / verse / chorus / (bridge) / outro over ``body_bars`` bars, scaled to fit."""
    if body_bars <= 0:
        return (Section("verse", 0, 1, energy * SECTION_ENERGY["verse"]),)
    if body_bars < 2 * phrase:
        names_and_lengths = [("verse", body_bars)]
    else:
        intro = phrase // 2 if body_bars < 6 * phrase else phrase
        names_and_lengths = [("intro", intro)]
        pattern = ["verse", "chorus", "verse", "chorus", "bridge", "chorus"]
        remaining = body_bars - intro
        outro = phrase if body_bars >= 12 * phrase else 0
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
        # A leftover shorter than a phrase joins the section before it.
        if len(names_and_lengths) > 2 and names_and_lengths[-1][1] < phrase // 2 + 1:
            name, length = names_and_lengths.pop()
            last_name, last_length = names_and_lengths.pop()
            names_and_lengths.append((last_name, last_length + length))
    sections: list[Section] = []
    start = 0
    for name, length in names_and_lengths:
        sections.append(Section(name, start, length, min(1.0, energy * SECTION_ENERGY[name] + 0.15)))
        start += length
    return tuple(sections)


def build_plan(spec: MusicSpec) -> SongPlan:
    style = resolve_style(spec.style, spec.prompt)
    feel = read_feel(spec.prompt, style)
    rng = rng_for(spec.seed, "plan")
    if spec.chord_progression:
        progression = tuple(s.strip() for s in spec.chord_progression)
        source = "request"
    else:
        progression = _default_progression(style, rng)
        source = "style default"
    cycle = tuple(parse_chord(symbol) for symbol in progression)
    bar_seconds = feel.beats_per_bar * 60.0 / spec.bpm
    tail = _MIN_TAIL_BEATS * 60.0 / spec.bpm
    ending_bar = max(0, int(np.floor((spec.duration_seconds - tail) / bar_seconds + 1e-9)))
    if ending_bar * bar_seconds >= spec.duration_seconds - 1e-9:
        ending_bar = max(0, ending_bar - 1)
    chords = tuple(cycle[bar % len(cycle)] for bar in range(ending_bar + 1))
    sections = layout_sections(ending_bar, _phrase_bars(len(cycle)), feel.energy)
    return SongPlan(
        bpm=spec.bpm,
        beats_per_bar=feel.beats_per_bar,
        duration_seconds=spec.duration_seconds,
        num_frames=spec.num_frames,
        seed=spec.seed,
        temperature=spec.temperature,
        style=style,
        feel=feel,
        key=estimate_key(cycle),
        progression=progression,
        progression_source=source,
        chords=chords,
        sections=sections,
        ending_bar=ending_bar,
    )
