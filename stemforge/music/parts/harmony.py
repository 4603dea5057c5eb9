"""Chord instruments: guitar, piano and synth play the bar's chord in a style's rhythm, with
voicings that move as little as possible from bar to bar.

Each stem keeps to its register in the plan (the pad under the melody in an open spread, the
piano's right hand below the voice), plays one of a few rhythm takes chosen by the seed, rests
where the arrangement says so, and the second comping instrument answers the first: it leaves
out the first one's onsets (but the downbeat), so piano and guitar interlock instead of
doubling. Variations add (an anticipation of the next chord, a pickup), never punch holes.
"""

import numpy as np

from stemforge.music.chords import Chord
from stemforge.music.notes import Humanizer, Part, humanize_amount, variation_chance
from stemforge.music.parts.common import bass_pitch, fifth_interval, section_velocity, third_interval
from stemforge.music.plan import SongPlan
from stemforge.music.styles import Instrument
from stemforge.music.theory import spread_voicing, voice_chord

# A hit: (beat, length in beats, velocity factor, how): "block" all notes together, "down"/"up"
# strums, "roll" a slow arpeggiated chord, "mute" a dead scratch.
Hit = tuple[float, float, float, str]
Table = dict[str, list[Hit]]

_RHYTHMS: dict[str, dict[str, list[Hit]]] = {
    "strum": {
        "intro": [(0, 4, 0.9, "down")],
        "verse": [
            (0, 1, 1.0, "down"),
            (1, 0.5, 0.8, "down"),
            (1.5, 1, 0.6, "up"),
            (2.5, 0.5, 0.6, "up"),
            (3, 0.5, 0.9, "down"),
            (3.5, 0.5, 0.6, "up"),
        ],
        "chorus": [
            (i * 0.5, 0.5, 1.0 if i % 2 == 0 else 0.65, "down" if i % 2 == 0 else "up") for i in range(8)
        ],
    },
    "block": {
        "intro": [(0, 4, 0.85, "block")],
        "verse": [(0, 2, 1.0, "block"), (2, 1.5, 0.85, "block"), (3.5, 0.5, 0.75, "block")],
        "chorus": [(i * 0.5, 0.5, 1.0 if i % 2 == 0 else 0.75, "block") for i in range(8)],
    },
    "ballad": {
        "intro": [(0, 4, 0.8, "roll")],
        "verse": [(0, 2, 0.9, "roll"), (2, 2, 0.8, "block")],
        "chorus": [(0, 1, 1.0, "block"), (1, 1, 0.8, "block"), (2, 1, 0.95, "block"), (3, 1, 0.8, "block")],
    },
    "comp": {
        "intro": [(0, 2, 0.8, "block")],
        "verse": [(0, 1.5, 0.9, "block"), (1.5, 0.5, 0.8, "block"), (3.5, 0.5, 0.7, "block")],
        "chorus": [
            (0, 1, 0.95, "block"),
            (1.5, 1, 0.85, "block"),
            (2.5, 0.5, 0.7, "block"),
            (3.5, 0.5, 0.8, "block"),
        ],
    },
    "epiano": {
        "intro": [(0, 4, 0.8, "roll")],
        "verse": [(0, 2.5, 0.9, "roll"), (2.5, 1.5, 0.75, "roll")],
        "chorus": [(0, 1.5, 0.95, "roll"), (1.5, 1, 0.8, "block"), (2.5, 1.5, 0.85, "roll")],
    },
    "stabs": {
        "intro": [(0.5, 0.3, 0.8, "block"), (2.5, 0.3, 0.8, "block")],
        "verse": [
            (0, 0.35, 1.0, "block"),
            (0.75, 0.35, 0.85, "block"),
            (1.5, 0.35, 0.9, "block"),
            (2.5, 0.35, 0.9, "block"),
            (3.25, 0.35, 0.8, "block"),
        ],
        "chorus": [
            (i * 0.5 + 0.5 * (i % 2 == 0) * 0, 0.35, 1.0 if i % 2 else 0.85, "block") for i in range(8)
        ],
    },
    "bubble": {
        "intro": [(1.5, 0.3, 0.8, "block"), (3.5, 0.3, 0.8, "block")],
        "verse": [(b + 0.5, 0.3, 0.85, "block") for b in range(4)],
        "chorus": [(b + 0.5, 0.3, 0.95, "block") for b in range(4)]
        + [(b + 0.75, 0.2, 0.6, "block") for b in range(4)],
    },
    "skank": {
        "intro": [(1, 0.3, 0.8, "down"), (3, 0.3, 0.8, "down")],
        "verse": [(1, 0.3, 0.95, "down"), (3, 0.3, 0.95, "down")],
        "chorus": [
            (1, 0.3, 1.0, "down"),
            (1.5, 0.2, 0.6, "up"),
            (3, 0.3, 1.0, "down"),
            (3.5, 0.2, 0.6, "up"),
        ],
    },
    "funk": {
        "intro": [(0, 0.2, 1.0, "down"), (1.5, 0.2, 0.8, "down"), (2.75, 0.2, 0.8, "up")],
        "verse": [
            (0, 0.2, 1.0, "down"),
            (0.5, 0.1, 0.4, "mute"),
            (0.75, 0.2, 0.8, "up"),
            (1.5, 0.2, 0.9, "down"),
            (2.25, 0.1, 0.4, "mute"),
            (2.5, 0.2, 0.85, "down"),
            (3.25, 0.2, 0.8, "up"),
            (3.5, 0.1, 0.4, "mute"),
        ],
        "chorus": [
            (
                i * 0.25,
                0.15,
                1.0 if i % 4 == 0 else 0.75 if i % 2 == 0 else 0.45,
                "down" if i % 2 == 0 else "up",
            )
            for i in range(16)
        ],
    },
    "scratch": {
        "intro": [(b + 0.5, 0.2, 0.8, "up") for b in range(4)],
        "verse": [
            (i * 0.25, 0.12, 0.9 if i % 4 == 2 else 0.35, "down" if i % 4 == 2 else "mute") for i in range(16)
        ],
        "chorus": [
            (i * 0.25, 0.12, 1.0 if i % 2 == 0 else 0.45, "down" if i % 2 == 0 else "mute") for i in range(16)
        ],
    },
    "pad": {
        "intro": [(0, 4, 0.75, "block")],
        "verse": [(0, 4, 0.85, "block")],
        "chorus": [(0, 4, 1.0, "block")],
    },
}


# Other takes of the rhythms, one chosen by the seed (the first take is the table above).
_ALTERNATES: dict[str, list[Table]] = {
    "strum": [
        {
            "intro": [(0, 2, 0.9, "down"), (2, 2, 0.8, "down")],
            "verse": [(0, 1.5, 1.0, "down"), (1.5, 1, 0.7, "up"), (2.5, 0.5, 0.6, "up"), (3, 1, 0.9, "down")],
            "chorus": [
                (0, 1, 1.0, "down"),
                (1, 0.5, 0.8, "down"),
                (1.5, 0.5, 0.6, "up"),
                (2, 1, 0.9, "down"),
                (3, 0.5, 0.8, "down"),
                (3.5, 0.5, 0.6, "up"),
            ],
        },
        {
            "intro": [(0, 4, 0.9, "down")],
            "verse": [
                (0, 0.75, 1.0, "down"),
                (0.75, 0.75, 0.7, "up"),
                (1.5, 1, 0.8, "down"),
                (2.5, 0.75, 0.7, "up"),
                (3.25, 0.75, 0.7, "up"),
            ],
            "chorus": [
                (i * 0.5, 0.5, 1.0 if i % 2 == 0 else 0.7, "down" if i % 2 == 0 else "up") for i in range(8)
            ],
        },
    ],
    "block": [
        {
            "intro": [(0, 2, 0.85, "block"), (2, 2, 0.8, "block")],
            "verse": [(0, 1, 1.0, "block"), (1, 1, 0.8, "block"), (2, 1, 0.9, "block"), (3, 1, 0.8, "block")],
            "chorus": [(0, 1.5, 1.0, "block"), (1.5, 1, 0.85, "block"), (2.5, 1.5, 0.9, "block")],
        },
        {
            "intro": [(0, 4, 0.85, "roll")],
            "verse": [(0, 2.5, 1.0, "block"), (2.5, 1.5, 0.8, "block")],
            "chorus": [
                (0, 0.5, 1.0, "block"),
                (0.5, 1, 0.8, "block"),
                (2, 0.5, 0.95, "block"),
                (2.5, 1.5, 0.8, "block"),
            ],
        },
    ],
    "comp": [
        {  # the Charleston
            "intro": [(0, 1.5, 0.8, "block")],
            "verse": [(0, 1.5, 0.9, "block"), (1.5, 1, 0.8, "block")],
            "chorus": [
                (0, 1.5, 0.95, "block"),
                (1.5, 1, 0.85, "block"),
                (3, 0.5, 0.7, "block"),
                (3.5, 0.5, 0.8, "block"),
            ],
        },
        {  # pushes on the "and"s
            "intro": [(0.5, 1.5, 0.8, "block")],
            "verse": [(0.5, 1, 0.85, "block"), (2.5, 1, 0.8, "block")],
            "chorus": [
                (0, 0.5, 0.9, "block"),
                (0.5, 1, 0.85, "block"),
                (2, 0.5, 0.8, "block"),
                (2.5, 1.5, 0.85, "block"),
            ],
        },
    ],
    "epiano": [
        {
            "intro": [(0, 2, 0.8, "roll"), (2, 2, 0.75, "roll")],
            "verse": [(0, 1.5, 0.9, "roll"), (1.5, 1, 0.75, "block"), (3, 1, 0.8, "roll")],
            "chorus": [(0, 1, 0.95, "roll"), (1, 1, 0.8, "block"), (2.5, 1.5, 0.85, "roll")],
        },
        {
            "intro": [(0, 4, 0.8, "roll")],
            "verse": [(0, 0.75, 0.9, "block"), (0.75, 2.25, 0.8, "roll"), (3.5, 0.5, 0.7, "block")],
            "chorus": [
                (0, 0.75, 0.95, "block"),
                (0.75, 1.25, 0.85, "roll"),
                (2, 0.75, 0.9, "block"),
                (2.75, 1.25, 0.8, "roll"),
            ],
        },
    ],
    "stabs": [
        {
            "intro": [(0.5, 0.3, 0.8, "block"), (1.5, 0.3, 0.8, "block")],
            "verse": [(b + 0.5, 0.35, 0.95, "block") for b in range(4)],
            "chorus": [(0, 0.35, 1.0, "block")] + [(b + 0.5, 0.35, 0.9, "block") for b in range(4)],
        },
        {
            "intro": [(0, 0.5, 0.8, "block"), (2.5, 0.3, 0.8, "block")],
            "verse": [
                (0, 0.35, 1.0, "block"),
                (1.5, 0.35, 0.9, "block"),
                (2.25, 0.35, 0.85, "block"),
                (3, 0.35, 0.85, "block"),
            ],
            "chorus": [
                (0, 0.35, 1.0, "block"),
                (0.75, 0.35, 0.85, "block"),
                (1.5, 0.35, 0.9, "block"),
                (2.5, 0.35, 0.9, "block"),
                (3, 0.35, 0.85, "block"),
                (3.75, 0.35, 0.8, "block"),
            ],
        },
    ],
    "ballad": [
        {
            "intro": [(0, 2, 0.8, "roll"), (2, 2, 0.75, "roll")],
            "verse": [(0, 1.5, 0.9, "roll"), (1.5, 0.5, 0.7, "block"), (2, 2, 0.8, "roll")],
            "chorus": [
                (0, 1, 1.0, "block"),
                (1, 0.5, 0.8, "block"),
                (1.5, 0.5, 0.8, "block"),
                (2, 2, 0.95, "roll"),
            ],
        },
        {
            "intro": [(0, 4, 0.8, "roll")],
            "verse": [(0, 3, 0.9, "roll"), (3, 1, 0.75, "block")],
            "chorus": [(0, 2, 1.0, "roll"), (2, 1, 0.9, "block"), (3, 1, 0.85, "block")],
        },
    ],
    "funk": [
        {
            "intro": [(0, 0.2, 1.0, "down"), (2.5, 0.2, 0.8, "up")],
            "verse": [
                (0, 0.15, 1.0, "down"),
                (0.25, 0.1, 0.4, "mute"),
                (0.5, 0.15, 0.8, "up"),
                (1.25, 0.15, 0.85, "up"),
                (1.75, 0.1, 0.4, "mute"),
                (2.5, 0.15, 0.9, "down"),
                (3, 0.1, 0.4, "mute"),
                (3.75, 0.15, 0.8, "up"),
            ],
            "chorus": [
                (i * 0.25, 0.15, 1.0 if i % 4 == 2 else 0.5, "up" if i % 2 else "down") for i in range(16)
            ],
        },
    ],
    "scratch": [
        {
            "intro": [(b + 0.75, 0.15, 0.8, "up") for b in range(4)],
            "verse": [
                (i * 0.25, 0.12, 0.9 if i % 4 == 1 else 0.35, "up" if i % 4 == 1 else "mute")
                for i in range(16)
            ],
            "chorus": [
                (i * 0.25, 0.12, 1.0 if i % 4 in (0, 3) else 0.4, "down" if i % 4 in (0, 3) else "mute")
                for i in range(16)
            ],
        },
        {
            "intro": [(b + 0.5, 0.2, 0.8, "down") for b in range(4)],
            "verse": [(i * 0.5, 0.15, 0.9 if i % 2 else 0.4, "up" if i % 2 else "mute") for i in range(8)],
            "chorus": [(i * 0.25, 0.12, 1.0 if i % 2 else 0.4, "up" if i % 2 else "mute") for i in range(16)],
        },
    ],
    "skank": [
        {
            "intro": [(1, 0.3, 0.8, "down"), (3, 0.3, 0.8, "down")],
            "verse": [
                (1, 0.25, 0.95, "down"),
                (1.25, 0.2, 0.6, "up"),
                (3, 0.25, 0.95, "down"),
                (3.25, 0.2, 0.6, "up"),
            ],
            "chorus": [(b + 0.5, 0.3, 1.0, "down") for b in range(4)],
        },
    ],
    "bubble": [
        {
            "intro": [(0.5, 0.3, 0.8, "block"), (2.5, 0.3, 0.8, "block")],
            "verse": [(b + 0.5, 0.2, 0.85, "block") for b in range(4)]
            + [(b + 0.75, 0.2, 0.6, "block") for b in range(4)],
            "chorus": [(b + 0.25, 0.2, 0.7, "block") for b in range(4)]
            + [(b + 0.5, 0.3, 0.95, "block") for b in range(4)],
        },
    ],
    "pad": [
        {
            "intro": [(0, 4, 0.75, "block")],
            "verse": [(0, 2, 0.85, "block"), (2, 2, 0.8, "block")],
            "chorus": [(0, 4, 1.0, "block")],
        },
    ],
}


def _guitar_voicing(chord: Chord, previous: list[int] | None, kind: str) -> list[int]:
    """Power chords (root, fifth, octave; a tenth on top for rock's bigger chords) or an
    open-position shape: a bass note under a close voicing on the top strings."""
    root = bass_pitch(chord, 40, 51) if kind != "power" else 40 + (chord.root - 40) % 12
    if kind == "power":
        fifth = fifth_interval(chord)
        return [root, root + fifth, root + 12]
    upper = voice_chord(chord, previous, 52, 72, max(4, min(5, len(chord.intervals))))
    low = bass_pitch(chord, 40, 51)
    return [low, *[p for p in upper if p > low]]


def _arpeggio_hits(plan: SongPlan, notes: list[int], density: float) -> list[tuple[float, float, int, float]]:
    """(beat, length, pitch, velocity factor): the bass note on 1 (and 3) then chord tones in
    eighths up and down, each left to ring."""
    upper = notes[1:] or notes
    order = upper + upper[-2:0:-1]
    step = 0.5 if density >= 0.8 else 1.0
    hits: list[tuple[float, float, int, float]] = []
    beat = 0.0
    index = 0
    while beat < plan.beats_per_bar - 1e-9:
        if beat in (0.0, 2.0):
            hits.append((beat, 2.0, notes[0], 1.0))
            if beat == 2.0 and plan.beats_per_bar == 4:
                beat += step
                continue
        else:
            hits.append((beat, 1.5, order[index % len(order)], 0.75))
            index += 1
        beat += step
    return hits


def harmony_mode(plan: SongPlan, stem: str) -> str:
    """How ``stem`` plays in this plan's style: a rhythm name, or "power", "arpeggio", "muted", "arp"."""
    style = plan.style
    if stem == "guitar":
        mode = style.guitar
        instrument = plan.feel.instruments.get("guitar", style.guitar_instrument)
        if instrument.program in (29, 30) and mode in ("strum", "block"):
            mode = "power"
        if instrument.program in (24, 25) and mode == "power":
            mode = "strum"  # an acoustic guitar strums what an electric would power-chord
        return mode
    if stem == "piano":
        return style.piano
    return style.synth


def _section_key(plan: SongPlan, bar: int) -> str:
    return plan.section_feel(bar)


def _power_hits(key: str, take: int) -> list[Hit]:
    """Distorted guitar: sustained, nearly legato chords (the drive needs notes to ring)."""
    if key == "intro":
        return [(0, 4, 0.9, "block")]
    takes: list[list[Hit]] = [
        [(i * 0.5, 0.49, 1.0 if i % 2 == 0 else 0.8, "block") for i in range(8)]
        if key == "verse"
        else [
            (0, 1.5, 1.0, "block"),
            (1.5, 0.5, 0.8, "block"),
            (2, 1.5, 0.95, "block"),
            (3.5, 0.5, 0.8, "block"),
        ],
        [
            (0, 0.75, 1.0, "block"),
            (0.75, 0.75, 0.85, "block"),
            (1.5, 0.5, 0.8, "block"),
            (2, 2, 0.95, "block"),
        ]
        if key == "verse"
        else [(i * 0.5, 0.49, 1.0 if i % 2 == 0 else 0.85, "block") for i in range(8)],
        [(0, 2, 1.0, "block"), (2, 1, 0.9, "block"), (3, 0.5, 0.85, "block"), (3.5, 0.5, 0.85, "block")],
    ]
    return takes[take % len(takes)]


def rhythm_hits(plan: SongPlan, stem: str, mode: str, bar: int) -> list[Hit]:
    """The plain hits of ``stem`` in ``bar`` (its take, its section), before any variation."""
    key = _section_key(plan, bar)
    take = plan.take(stem)
    if mode == "power":
        hits = _power_hits(key, take)
    else:
        name = "block" if mode == "open" else mode
        tables = [_RHYTHMS.get(name, _RHYTHMS["block"]), *_ALTERNATES.get(name, [])]
        hits = tables[take % len(tables)][key]
    beats = plan.beats_per_bar
    if beats < 4:  # 3/4 and 6/8: what starts inside the bar, trimmed to it
        hits = [(b, min(length, beats - b), v, how) for b, length, v, how in hits if b < beats]
    if plan.feel.density < 0.8:
        hits = [h for h in hits if h[0] == int(h[0])] or hits[:1]
    elif plan.feel.density > 1.1 and mode == "pad":  # busy: the pad is struck again mid-bar
        hits = [(0, beats / 2, 0.9, "block"), (beats / 2, beats / 2, 0.8, "block")]
    elif plan.feel.density > 1.1 and mode != "power":
        taken = {h[0] for h in hits}
        extra = [(b + 0.5, 0.4, 0.7, "block") for b in range(beats) if b + 0.5 not in taken][:2]
        hits = sorted([*hits, *extra])
    return hits


def _onsets(plan: SongPlan, stem: str, bar: int) -> set[float]:
    """Beats where ``stem`` starts notes in ``bar``: what the answering instrument avoids."""
    if not plan.plays(stem, bar):
        return set()
    mode = harmony_mode(plan, stem)
    if mode in ("arpeggio", "muted", "arp"):
        step = 0.5 if mode == "arpeggio" else 0.25
        return {i * step for i in range(round(plan.beats_per_bar / step))}
    return {h[0] for h in rhythm_hits(plan, stem, mode, bar)}


def _answer(hits: list[Hit], avoid: set[float], beats: int) -> list[Hit]:
    """The second comping instrument's hits: its own where the first is silent (and the
    downbeat), else short stabs on the off-beats the first leaves free."""
    kept = [h for h in hits if h[0] == 0 or all(abs(h[0] - a) > 0.13 for a in avoid)]
    if len(kept) >= 2:
        return kept
    free = [b + 0.5 for b in range(beats) if all(abs(b + 0.5 - a) > 0.13 for a in avoid)]
    stabs: list[Hit] = [(b, 0.45, 0.8, "block") for b in free[:3]]
    return sorted(kept + stabs) if stabs else kept or hits[:1]


def _voicing(plan: SongPlan, stem: str, mode: str, chord: Chord, previous: list[int] | None) -> list[int]:
    low, high = plan.register(stem)
    if stem == "guitar":
        voicing_kind = "power" if mode == "power" else "open"
        notes = _guitar_voicing(chord, previous, voicing_kind)
        if mode in ("funk", "skank", "scratch"):
            notes = voice_chord(chord, previous, 57, 74, max(3, min(4, len(chord.intervals))))
        return notes
    size = max(4, min(5, len(chord.intervals)))
    if stem == "synth" and mode == "pad":
        return spread_voicing(chord, previous, low, high, 4)
    if stem == "piano" and plan.take("piano") == 2:
        return spread_voicing(chord, previous, low, high, size)  # an open, two-handed spread
    return voice_chord(chord, previous, low, high, size)


def compose_harmony(
    plan: SongPlan, rng: np.random.Generator, stem: str, instrument: Instrument, mode: str
) -> Part:
    """``mode``: a rhythm name above, or "power", "arpeggio", "muted", "arp"."""
    part = Part(stem, instrument, pan={"guitar": -0.4, "piano": 0.25, "synth": 0.0}.get(stem, 0.0))
    human = Humanizer(rng, plan.style.humanize_ms, humanize_amount(plan.temperature))
    chance = variation_chance(plan.temperature)
    previous: list[int] | None = None
    beat_seconds = plan.beat_seconds
    register = plan.register(stem)
    primary = plan.arrangement.primary_comp
    answering = stem in ("piano", "guitar") and stem != primary
    for bar in range(plan.bars):
        chord = plan.chord_at(bar)
        section = plan.section_of(bar)
        bar_start = plan.time_at(bar, 0.0)
        base_velocity = section_velocity(plan, bar, 92)
        notes = _voicing(plan, stem, mode, chord, previous)
        if (
            stem == "guitar"
            and mode == "power"
            and plan.style.name != "metal"
            and _section_key(plan, bar) == "chorus"
        ):
            third = third_interval(chord)
            if third is not None:
                notes = [*notes, notes[0] + 12 + third]
        previous = [p for p in notes if p >= register[0] - 12]
        if bar == plan.ending_bar:
            length = plan.end_seconds - bar_start
            for i, pitch in enumerate(notes):
                part.add(bar_start + 0.012 * i * (stem == "guitar"), length, pitch, base_velocity)
            _add_piano_bass(part, plan, stem, chord, bar, float(plan.beats_per_bar), base_velocity)
            continue
        if not plan.plays(stem, bar):
            continue
        avoid = _onsets(plan, primary, bar) if answering else set()
        if mode == "arpeggio" or (mode == "muted" and stem == "guitar"):
            density = plan.feel.density * (1.0 if section.name != "intro" else 0.6)
            arp = _arpeggio_hits(plan, notes, density)
            if mode == "muted":
                arp = [(b, 0.3, p, v) for b, _, p, v in _sixteenth_arp(plan, notes)]
            if avoid:  # interlock: leave the first instrument's onsets to it
                arp = [h for h in arp if h[0] == 0 or all(abs(h[0] - a) > 0.13 for a in avoid)] or arp[:1]
            for beat, length, pitch, factor in arp:
                part.add(
                    human.time(plan.time_at(bar, beat)),
                    length * beat_seconds,
                    pitch,
                    human.velocity(base_velocity * factor),
                )
            continue
        if mode == "arp":
            for beat, length, pitch, factor in _sixteenth_arp(plan, notes):
                part.add(
                    human.time(plan.time_at(bar, beat)),
                    length * beat_seconds,
                    pitch,
                    human.velocity(base_velocity * factor * 0.9),
                )
            if section.name in ("chorus", "outro"):  # a pad under the arpeggio fills the chorus out
                for pitch in spread_voicing(chord, None, 45, 64, 3):
                    part.add(bar_start, plan.bar_seconds, pitch, base_velocity * 0.55)
            continue
        hits = rhythm_hits(plan, stem, mode, bar)
        if answering:
            hits = _answer(hits, avoid, plan.beats_per_bar)
        # A variation that adds, into a new section: the next chord pushed in an eighth early.
        anticipate = (
            plan.is_section_end(bar)
            and rng.random() < 2 * chance
            and plan.bars > bar + 2
            and mode not in ("pad",)
            and plan.beats_per_bar >= 3
        )
        if anticipate:
            part.variations += 1
            hits = [h for h in hits if h[0] < plan.beats_per_bar - 0.5]
        elif mode != "pad" and rng.random() < chance:
            # A variation that adds: an extra push on an off-beat the rhythm leaves free.
            free = [
                b + 0.5 for b in range(plan.beats_per_bar) if all(abs(h[0] - b - 0.5) > 0.2 for h in hits)
            ]
            free = [b for b in free if all(abs(b - a) > 0.13 for a in avoid)]
            if free:
                beat = free[int(rng.integers(len(free)))]
                # It rings on to the next hit, as the chord it re-strikes would have.
                later = [h[0] for h in hits if h[0] > beat]
                ring = min(later, default=float(plan.beats_per_bar)) - beat
                hits = sorted([*hits, (beat, ring if mode == "power" else min(0.45, ring), 0.8, "block")])
                part.variations += 1
        for beat, length, factor, how in hits:
            start = human.time(plan.time_at(bar, beat))
            velocity = human.velocity(base_velocity * factor)
            legato = 0.99 if mode in ("power", "pad") else 0.95
            duration = length * beat_seconds * legato
            if how == "mute":
                for pitch in notes[-3:]:
                    part.add(start, 0.03, pitch, velocity * 0.6)
                continue
            if how in ("down", "up", "roll"):
                ordered = notes if how != "up" else list(reversed(notes[-4:]))
                spread = 0.035 if how == "roll" else 0.009 if stem == "guitar" else 0.004
                for i, pitch in enumerate(ordered):
                    part.add(start + i * spread, duration - i * spread, pitch, velocity * (1 - 0.03 * i))
            else:
                for pitch in notes:
                    part.add(start, duration, pitch, velocity)
        if anticipate:
            upcoming = _voicing(plan, stem, mode, plan.chord_at(bar + 1), previous)
            start = human.time(plan.time_at(bar, plan.beats_per_bar - 0.5))
            for pitch in upcoming:
                part.add(start, 0.5 * beat_seconds * 0.95, pitch, base_velocity * 0.9)
        if mode in ("block", "ballad", "comp", "epiano") and stem == "piano":
            _add_piano_bass(part, plan, stem, chord, bar, float(plan.beats_per_bar), base_velocity)
    return part


def _sixteenth_arp(plan: SongPlan, notes: list[int]) -> list[tuple[float, float, int, float]]:
    """An up-and-down arpeggio of the voicing in sixteenths (eighths when fast), octave on top."""
    tones = [*sorted(set(notes)), sorted(set(notes))[0] + 12]
    order = tones + tones[-2:0:-1]
    step = 0.25 if plan.bpm < 140 else 0.5
    count = round(plan.beats_per_bar / step)
    return [(i * step, step * 0.9, order[i % len(order)], 1.0 if i % 4 == 0 else 0.8) for i in range(count)]


def _add_piano_bass(
    part: Part, plan: SongPlan, stem: str, chord: Chord, bar: int, beats: float, velocity: float
) -> None:
    """The pianist's left hand: the bass note of the chord, an octave below the voicing."""
    if stem != "piano":
        return
    low = bass_pitch(chord, *plan.register("piano_left"))
    start = plan.time_at(bar, 0.0)
    length = plan.end_seconds - start if bar == plan.ending_bar else beats * plan.beat_seconds * 0.98
    part.add(start, length, low, velocity * 0.85)
