import itertools

import pytest

from stemforge.music.chords import parse_chord
from stemforge.music.theory import Key, estimate_key, roman_to_symbol, voice_chord


@pytest.mark.parametrize(
    ("numeral", "key", "symbol"),
    [
        ("I", Key(0, "major"), "C"),
        ("vi", Key(0, "major"), "Am"),
        ("ii7", Key(0, "major"), "Dm7"),
        ("V7", Key(5, "major"), "C7"),
        ("bVII", Key(0, "major"), "Bb"),
        ("bVImaj7", Key(9, "minor"), "Fmaj7"),
        ("i", Key(4, "minor"), "Em"),
    ],
)
def test_roman_numerals_spell_chords_in_the_key(numeral, key, symbol):
    assert roman_to_symbol(numeral, key) == symbol


@pytest.mark.parametrize(
    ("progression", "name"),
    [("C G Am F", "C major"), ("Am F C G", "A minor"), ("Dm7 G7 Cmaj7", "C major"), ("Em C G D", "E minor")],
)
def test_key_is_estimated_from_the_progression(progression, name):
    assert estimate_key([parse_chord(s) for s in progression.split()]).name == name


def test_voicings_move_less_than_root_position_blocks():
    symbols = ["C", "Am", "F", "G", "Em", "Dm7", "G7", "Cmaj7"]
    led, previous = [], None
    for symbol in symbols:
        previous = voice_chord(parse_chord(symbol), previous, 55, 76, 4)
        led.append(previous)
    movement = sum(
        abs(a - b) for x, y in itertools.pairwise(led) for a, b in zip(sorted(x), sorted(y), strict=True)
    )
    # Root-position four-note blocks (triads double the root) on the same middle C.
    blocks = [[48 + parse_chord(s).root + i for i in (*parse_chord(s).intervals, 12)[:4]] for s in symbols]
    block_movement = sum(abs(a - b) for x, y in itertools.pairwise(blocks) for a, b in zip(x, y, strict=True))
    assert movement < block_movement
    for voicing, symbol in zip(led, symbols, strict=True):
        assert {p % 12 for p in voicing} <= parse_chord(symbol).pitch_classes
        assert all(55 <= p <= 76 for p in voicing)
