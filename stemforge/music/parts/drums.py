"""Drums: a groove per style on a step grid (one of a few takes, chosen by the seed), fills
at section ends, crashes at section starts, a final hit; a stereo kit (each piece panned where
it sits, from the audience's side); jazz comps on the snare and feathers the kick."""

from dataclasses import dataclass

import numpy as np

from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import section_velocity
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument

KICK, SNARE, RIM, CLAP = 36, 38, 37, 39
HAT, PEDAL_HAT, OPEN_HAT, RIDE, CRASH, CHINA = 42, 44, 46, 51, 49, 52
TOM_HIGH, TOM_MID, TOM_LOW, TOM_FLOOR = 50, 47, 45, 43

_LEVEL = {"X": 118, "x": 96, "o": 52}
# Where each piece sits (-1 left .. 1 right, the audience's view of a right-handed kit).
KIT_PANS: dict[int, float] = {
    KICK: 0.0,
    SNARE: 0.05,
    RIM: 0.05,
    CLAP: 0.0,
    HAT: 0.35,
    PEDAL_HAT: 0.35,
    OPEN_HAT: 0.35,
    RIDE: -0.4,
    CRASH: 0.45,
    CHINA: -0.5,
    TOM_HIGH: 0.2,
    TOM_MID: -0.05,
    TOM_LOW: -0.25,
    TOM_FLOOR: -0.45,
}


@dataclass(frozen=True)
class Groove:
    """One bar as rows of steps: 'X' accent, 'x' hit, 'o' ghost, '.' rest. 16 steps = 4/4 in 16ths."""

    rows: dict[int, str]
    chorus_rows: dict[int, str] | None = None  # replaces rows in choruses when given


GROOVES: dict[str, Groove] = {
    "rock": Groove(
        {KICK: "X.....x.X.x.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        {KICK: "X.....x.X.x...x.", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
    ),
    "pop": Groove(
        {KICK: "X.......X.x.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        {
            KICK: "X.....x.X.x.....",
            SNARE: "....X.......X...",
            CLAP: "....x.......x...",
            HAT: "x.xox.xox.xox.xo",
        },
    ),
    "metal": Groove(
        {KICK: "x.x.x.x.x.x.x.x.", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        {KICK: "xxxxxxxxxxxxxxxx", SNARE: "....X.......X...", CHINA: "x...x...x...x..."},
    ),
    "hip-hop": Groove(
        {KICK: "X.....x...X.....", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        {
            KICK: "X.....x...X..x..",
            SNARE: "....X.......X...",
            CLAP: "....x.......x...",
            HAT: "xoxoxoxoxoxoxoxo",
        },
    ),
    "house": Groove(
        {
            KICK: "X...X...X...X...",
            CLAP: "....X.......X...",
            OPEN_HAT: "..x...x...x...x.",
            HAT: "o.o.o.o.o.o.o.o.",
        },
        {
            KICK: "X...X...X...X...",
            CLAP: "....X.......X...",
            OPEN_HAT: "..x...x...x...x.",
            HAT: "oooooooooooooooo",
        },
    ),
    "edm": Groove(
        {
            KICK: "X...X...X...X...",
            CLAP: "....X.......X...",
            OPEN_HAT: "..x...x...x...x.",
            HAT: "oooooooooooooooo",
        },
        {
            KICK: "X...X...X...X...",
            CLAP: "....X.......X...",
            SNARE: "....x.......x...",
            OPEN_HAT: "..x...x...x...x.",
            HAT: "oooooooooooooooo",
        },
    ),
    "disco": Groove(
        {
            KICK: "X...X...X...X...",
            SNARE: "....X.......X...",
            OPEN_HAT: "..x...x...x...x.",
            HAT: "x...x...x...x...",
        },
        {
            KICK: "X...X...X...X...",
            SNARE: "....X.......X...",
            OPEN_HAT: "..x...x...x...x.",
            HAT: "xoxoxoxoxoxoxoxo",
        },
    ),
    "funk": Groove(
        {KICK: "X..x..x...X..x..", SNARE: "....X..o.o..X..o", HAT: "xoxoxoxoxoxoxoxo"},
        {
            KICK: "X..x..x...X..x.x",
            SNARE: "....X..o.o..X.oo",
            HAT: "xoxoxoxoxoxoxoxo",
            OPEN_HAT: "..............x.",
        },
    ),
    "jazz": Groove(
        {RIDE: "X...x.x.X...x.x.", PEDAL_HAT: "....x.......x...", KICK: "o.......o......."},
        {
            RIDE: "X...x.x.X...x.x.",
            PEDAL_HAT: "....x.......x...",
            KICK: "o...o...o...o...",
            SNARE: "......o.......o.",
        },
    ),
    "reggae": Groove(
        {KICK: "........X.......", RIM: "........X.......", HAT: "x.x.x.x.x.x.x.x."},
        {KICK: "X...X...X...X...", SNARE: "........X.......", HAT: "x.xxx.xxx.xxx.xx"},
    ),
    "lo-fi": Groove(
        {KICK: "X......x..X.....", SNARE: "....x.......x...", HAT: "x.o.x.o.x.o.x.o."},
        {KICK: "X......x..X..x..", SNARE: "....x.......x...", HAT: "x.o.x.o.x.o.x.o."},
    ),
    "ballad": Groove(
        {KICK: "X.......X.......", RIM: "....x.......x...", HAT: "x.o.x.o.x.o.x.o."},
        {KICK: "X.......X.x.....", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
    ),
    "blues": Groove(
        {KICK: "X.......X.......", SNARE: "....X.......X...", HAT: "x.x.x.x.x.x.x.x."},
        {KICK: "X.....x.X.......", SNARE: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
    ),
    "waltz": Groove(
        {KICK: "X...........", SNARE: "....x...x...", HAT: "x.x.x.x.x.x."},
        {KICK: "X.......x...", SNARE: "....X...X...", RIDE: "x.x.x.x.x.x."},
    ),
    # Compound metres on their eighth grid (three steps a beat), played without swing.
    "6/8": Groove(
        {KICK: "X.....", SNARE: "...x..", HAT: "xoxxox"},
        {KICK: "X..x..", SNARE: "...X..", RIDE: "xxxxxx"},
    ),
    "12/8": Groove(
        {KICK: "X.....x.....", SNARE: "...X.....X..", HAT: "xoxxoxxoxxox"},
        {KICK: "X.....x.x...", SNARE: "...X.....X..", RIDE: "xoxxoxxoxxox"},
    ),
}

# Other takes of a groove, one chosen by the seed: (row, step, character) changes on 16 steps.
_TAKE_EDITS: tuple[tuple[tuple[int, int, str], ...], ...] = (
    (),
    ((KICK, 7, "x"), (KICK, 10, "."), (KICK, 11, "x"), (OPEN_HAT, 14, "x"), (HAT, 14, ".")),
    ((KICK, 3, "o"), (KICK, 14, "x"), (SNARE, 15, "o"), (SNARE, 7, "o"), (HAT, 6, "o")),
)


def _half_time(rows: dict[int, str]) -> dict[int, str]:
    """Snare on beat 3 only, kick thinned to the bar's first half: the half-time feel."""
    out = dict(rows)
    steps = len(next(iter(rows.values())))
    if SNARE in out or CLAP in out:
        backbeat = "".join("X" if i == steps // 2 else "." for i in range(steps))
        for row in (SNARE, CLAP, RIM):
            if row in out:
                out[row] = backbeat
    if KICK in out:
        out[KICK] = "".join(c if i < steps // 2 or i == steps - 2 else "." for i, c in enumerate(out[KICK]))
    return out


def _fill(
    plan: SongPlan, rng: np.random.Generator, beats: int, energy: float
) -> list[tuple[float, int, int]]:
    """(beat within the bar, drum, velocity) of a fill over the bar's last ``beats`` beats."""
    style = plan.style.drums
    start = plan.beats_per_bar - beats
    hits: list[tuple[float, int, int]] = []
    if style in ("house", "edm"):
        # A build: a snare roll whose density and loudness rise to the next downbeat.
        for i in range(beats * 4):
            beat = start + i / 4
            hits.append((beat, SNARE, int(60 + 55 * i / max(1, beats * 4 - 1))))
        return hits
    if style == "jazz":
        for i in range(beats * 3):
            if rng.random() < 0.7:
                hits.append((start + i / 3, SNARE if i % 3 else TOM_MID, int(60 + 40 * rng.random())))
        return hits
    if style in ("hip-hop", "lo-fi"):
        for i in range(beats * 4):
            hits.append((start + i / 4, HAT, int(60 + 30 * (i % 2 == 0))))
        hits.append((start + beats - 0.5, SNARE, 90))
        return hits
    toms = [SNARE, TOM_HIGH, TOM_MID, TOM_LOW, TOM_FLOOR]
    steps = beats * 4 if energy > 0.55 or style == "metal" else beats * 2
    for i in range(steps):
        drum = toms[min(len(toms) - 1, i * len(toms) // steps)]
        if steps >= 4 and i % 2 and rng.random() < 0.2:
            continue
        hits.append((start + i * beats / steps, drum, int(85 + 30 * i / max(1, steps - 1))))
    return hits


def _vary(rows: dict[int, str], rng: np.random.Generator) -> dict[int, str]:
    """One small departure from the plain bar: a ghost note, an extra kick, an open hat."""
    out = dict(rows)
    steps = len(next(iter(rows.values())))
    choice = int(rng.integers(3))
    if choice == 0 and SNARE in out:
        row = list(out[SNARE])
        free = [i for i, c in enumerate(row) if c == "." and i % 2]
        if free:
            row[int(rng.choice(free))] = "o"
        out[SNARE] = "".join(row)
    elif choice == 1 and KICK in out:
        row = list(out[KICK])
        free = [i for i, c in enumerate(row) if c == "." and i not in (steps // 4, 3 * steps // 4)]
        if free:
            row[int(rng.choice(free))] = "x"
        out[KICK] = "".join(row)
    else:
        hat_row = HAT if HAT in out else RIDE if RIDE in out else None
        if hat_row is not None:
            row = list(out[hat_row])
            row[steps - 2] = "."
            out[hat_row] = "".join(row)
            out[OPEN_HAT] = "".join(
                "x" if i == steps - 2 else c for i, c in enumerate(out.get(OPEN_HAT, "." * steps))
            )
    return out


def _take(rows: dict[int, str], take: int, style: str) -> dict[int, str]:
    """The seed's take of a 16-step groove: a few kicks, ghosts and hats elsewhere. Four on the
    floor stays four on the floor (only hats and ghosts move there)."""
    steps = len(next(iter(rows.values())))
    if steps != 16 or take == 0:
        return rows
    out = dict(rows)
    for row, step, char in _TAKE_EDITS[take % len(_TAKE_EDITS)]:
        if row == KICK and style in ("house", "edm", "disco"):
            continue
        if row == OPEN_HAT and HAT not in out:
            continue
        if row not in out and row != OPEN_HAT:
            continue
        pattern = list(out.get(row, "." * steps))
        if row == KICK and pattern[step] in "Xx" and char == "." and step in (0, 8):
            continue  # never lose the downbeat or the three
        pattern[step] = char if pattern[step] in ".o" or char == "." else pattern[step]
        out[row] = "".join(pattern)
    return out


def _busy(rows: dict[int, str]) -> dict[int, str]:
    """A busier prompt: ghost notes on the snare's empty sixteenths, hats in sixteenths."""
    out = dict(rows)
    if SNARE in out:
        out[SNARE] = "".join("o" if c == "." and i % 4 == 3 else c for i, c in enumerate(out[SNARE]))
    if HAT in out:
        out[HAT] = "".join("o" if c == "." else c for c in out[HAT])
    return out


def _jazz_comping(
    plan: SongPlan, rng: np.random.Generator, bar: int, steps: int
) -> list[tuple[float, int, int]]:
    """A jazz drummer's left hand: snare comping on the swung off-beats (the "and"s), mostly
    ghosted, now and then an accent that kicks the band (and a kick "bomb" with it)."""
    hits: list[tuple[float, int, int]] = []
    energy = plan.section_of(bar).energy
    for beat in range(plan.beats_per_bar):
        for offset, chance in ((0.5, 0.55), (0.0, 0.12)):
            if rng.random() < chance * (0.6 + 0.6 * energy):
                accent = rng.random() < 0.18
                hits.append((beat + offset, SNARE, 92 if accent else 44 + int(16 * rng.random())))
                if accent and rng.random() < 0.4:
                    hits.append((beat + offset, KICK, 86))
    return hits


def compose_drums(plan: SongPlan, rng: np.random.Generator, instrument: Instrument) -> Part:
    part = Part("drums", instrument, key_pans=dict(KIT_PANS))
    if plan.compound:
        groove = GROOVES[plan.meter]
    else:
        groove = GROOVES["waltz" if plan.beats_per_bar == 3 else plan.style.drums]
    amount = humanize_amount(plan.temperature)
    human = Humanizer(rng, plan.style.humanize_ms, amount)
    chance = variation_chance(plan.temperature)
    hit_seconds = 0.2
    for bar in range(plan.bars):
        section = plan.section_of(bar)
        bar_start = plan.time_at(bar, 0.0)
        if bar == plan.ending_bar:
            part.add(bar_start, 2.0, CRASH, 118)
            part.add(bar_start, hit_seconds, KICK, 118)
            continue
        if not plan.plays("drums", bar):
            continue
        chorus = plan.section_feel(bar) == "chorus" and groove.chorus_rows is not None
        rows = dict(groove.chorus_rows if chorus and groove.chorus_rows else groove.rows)
        rows = _take(rows, plan.take("drums"), plan.style.drums)
        if plan.feel.half_time:
            rows = _half_time(rows)
        if plan.feel.density > 1.1:
            rows = _busy(rows)
        if section.name == "intro" and bar < section.start_bar + section.bars // 2:
            # The band comes in gradually: the first half of an intro is kick and cymbals only.
            rows = {row: pattern for row, pattern in rows.items() if row not in (SNARE, CLAP, RIM)}
        if plan.feel.density < 0.8:
            rows = {row: pattern.replace("o", ".") for row, pattern in rows.items()}
        varied = rng.random() < chance
        if varied:
            rows = _vary(rows, rng)
            part.variations += 1
        fill_beats = 0
        if plan.is_section_end(bar):
            fill_beats = 2 if section.energy > 0.7 or plan.temperature > 1.2 else 1
        elif plan.temperature > 0 and (bar - section.start_bar) % 4 == 3 and rng.random() < chance * 0.5:
            fill_beats = 1  # an extra fill at a phrase end
            part.variations += 1
        steps = len(next(iter(rows.values())))
        step_beats = plan.beats_per_bar / steps
        fill_from = plan.beats_per_bar - fill_beats
        straight = 0.5 if plan.compound else None  # compound grooves are written on their triplet grid
        for drum, pattern in rows.items():
            for step, char in enumerate(pattern):
                if char == "." or (fill_beats and step * step_beats >= fill_from and drum != KICK):
                    continue
                beat = step * step_beats
                velocity = section_velocity(plan, bar, _LEVEL[char])
                start = human.time(plan.time_at(bar, beat, swing=straight))
                part.add(start, hit_seconds, drum, human.velocity(velocity))
        if plan.style.drums == "jazz" and not plan.compound and section.name != "intro":
            for beat, drum, velocity in _jazz_comping(plan, rng, bar, steps):
                if beat < fill_from or not fill_beats:
                    part.add(human.time(plan.time_at(bar, beat)), 0.12, drum, human.velocity(velocity, 4.0))
        if fill_beats:
            for beat, drum, velocity in _fill(plan, rng, fill_beats, section.energy):
                part.add(human.time(plan.time_at(bar, beat)), hit_seconds, drum, human.velocity(velocity))
        if plan.is_section_start(bar) and (bar > 0 or section.name != "intro") and section.name != "intro":
            part.add(bar_start, 1.5, CRASH, section_velocity(plan, bar, 110))
    return part
