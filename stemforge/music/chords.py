"""Chord symbols: parsing (via pychord) into pitch classes that parts can voice."""

from dataclasses import dataclass
from functools import lru_cache

from pychord import Chord as _PyChord

_NOTE_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


class ChordSymbolError(ValueError):
    """A chord symbol that does not parse."""


@dataclass(frozen=True)
class Chord:
    symbol: str
    root: int  # pitch class 0-11 of the root
    bass: int  # pitch class of the lowest note (differs from root in slash chords)
    intervals: tuple[int, ...]  # semitones above the root, ascending, root (0) first

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % 12 for i in self.intervals)

    @property
    def is_minor(self) -> bool:
        return 3 in self.intervals and 4 not in self.intervals


def note_pitch_class(name: str) -> int:
    """``"F#"`` -> 6, ``"Bb"`` -> 10; accepts any run of ``#``/``b`` after the letter."""
    letter, accidentals = name[:1].upper(), name[1:]
    if letter not in _NOTE_PITCH_CLASS or any(a not in "#b" for a in accidentals):
        raise ChordSymbolError(f"{name!r} is not a note name")
    return (_NOTE_PITCH_CLASS[letter] + accidentals.count("#") - accidentals.count("b")) % 12


# Lead-sheet shorthands pychord does not read, rewritten to names it does (longest first).
_QUALITY_ALIASES = (
    ("ø7", "m7b5"),
    ("ø", "m7b5"),
    ("°7", "dim7"),
    ("o7", "dim7"),
    ("°", "dim"),
    ("o", "dim"),
    ("+7", "aug7"),
    ("+", "aug"),
    ("Δ7", "maj7"),
    ("Δ", "maj7"),
    ("-7", "m7"),
    ("-", "m"),
)


def _expand_shorthand(text: str) -> str:
    """``"Co7"`` -> ``"Cdim7"``, ``"F#ø"`` -> ``"F#m7b5"``, ``"C+"`` -> ``"Caug"``, ``"D-7"`` -> ``"Dm7"``."""
    head, slash, bass = text.partition("/")
    letters = 1 + len(head[1:]) - len(head[1:].lstrip("#b"))
    root, quality = head[:letters], head[letters:]
    for short, full in _QUALITY_ALIASES:
        if quality.startswith(short):
            quality = full + quality[len(short) :]
            break
    return root + quality + slash + bass


@lru_cache(maxsize=512)
def parse_chord(symbol: str) -> Chord:
    """Parse a chord symbol such as ``Am7``, ``G/B``, ``Bbmaj9``, ``Dsus4``, ``F#dim7``, ``Bø``, ``C+``.

    Raises ``ChordSymbolError`` naming the symbol when it does not parse.
    """
    text = symbol.strip()
    if not text:
        raise ChordSymbolError("an empty chord symbol")
    try:
        parsed = _PyChord(_expand_shorthand(text))
        root = note_pitch_class(parsed.root)
        relative = parsed.quality.get_components(root="C", visible=False)
    except (ValueError, KeyError, IndexError) as exc:
        raise ChordSymbolError(
            f"{symbol!r} is not a chord symbol (expected a root A-G with optional #/b, a quality "
            "such as m, 7, maj7, m7, dim, aug, sus2, sus4, add9, 9, and an optional /bass note)"
        ) from exc
    intervals = tuple(sorted({int(c) % 12 for c in relative}))
    bass = note_pitch_class(parsed.on) if parsed.on else root
    return Chord(symbol=text, root=root, bass=bass, intervals=intervals)
