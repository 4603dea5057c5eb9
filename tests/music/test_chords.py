import pytest

from stemforge.music.chords import ChordSymbolError, parse_chord


@pytest.mark.parametrize(
    ("symbol", "root", "bass", "intervals"),
    [
        ("C", 0, 0, (0, 4, 7)),
        ("Am7", 9, 9, (0, 3, 7, 10)),
        ("Bbmaj9", 10, 10, (0, 2, 4, 7, 11)),
        ("Dsus4", 2, 2, (0, 5, 7)),
        ("F#dim7", 6, 6, (0, 3, 6, 9)),
        ("G/B", 7, 11, (0, 4, 7)),
        ("Am/G", 9, 7, (0, 3, 7)),
        ("Co", 0, 0, (0, 3, 6)),
        ("Bø", 11, 11, (0, 3, 6, 10)),
        ("Eb+", 3, 3, (0, 4, 8)),
        ("D-7", 2, 2, (0, 3, 7, 10)),
        ("CΔ7", 0, 0, (0, 4, 7, 11)),
        ("E7#9", 4, 4, (0, 3, 4, 7, 10)),
    ],
)
def test_symbols_beyond_triads_parse_to_their_pitch_classes(symbol, root, bass, intervals):
    chord = parse_chord(symbol)
    assert (chord.root, chord.bass, chord.intervals) == (root, bass, intervals)


@pytest.mark.parametrize("symbol", ["", "H7", "C/Q", "Cfoo"])
def test_nonsense_raises_chord_symbol_error(symbol):
    with pytest.raises(ChordSymbolError):
        parse_chord(symbol)
