"""Words to syllables and syllables to notes: one per note, melismas, split notes, carried words."""

import itertools

import numpy as np
import pytest

from stemforge.dsp.singing import singing_available
from stemforge.dsp.singing.lyrics import (
    MIN_SYLLABLE_S,
    NEUTRAL,
    Syllable,
    line_syllables,
    lyric_lines,
    neutral_phrase,
    set_lyrics,
    set_phrase,
    word_syllables,
)
from stemforge.dsp.singing.phonemes import syllabify
from stemforge.music.notes import Note

needs_espeak = pytest.mark.skipif(singing_available() is not None, reason=str(singing_available()))


def _syllables(*words: int) -> list[Syllable]:
    """Syllables of words of the given lengths (in syllables)."""
    out = []
    for w, length in enumerate(words):
        out += [Syllable(("l",), "A:", text=f"w{w}", word_end=i == length - 1) for i in range(length)]
    return out


def _notes(*durations: float, pitch: int = 64) -> list[Note]:
    notes, t = [], 0.0
    for i, d in enumerate(durations):
        notes.append(Note(t, d, pitch + i, 80))
        t += d
    return notes


def test_one_syllable_per_note_when_the_counts_agree():
    notes, syllables = _notes(0.5, 0.5, 1.0), _syllables(1, 2)
    spans, used = set_phrase(notes, syllables)
    assert used == 3
    assert [s.syllable for s in spans] == syllables
    assert [s.notes for s in spans] == [(n,) for n in notes]


def test_fewer_syllables_than_notes_become_even_melismas_over_every_note():
    notes = _notes(*[0.25] * 7)
    spans, used = set_phrase(notes, _syllables(1, 1, 1))
    assert used == 3
    assert [len(s.notes) for s in spans] in ([2, 3, 2], [3, 2, 2], [2, 2, 3])
    assert [n for s in spans for n in s.notes] == notes  # in order, none lost
    (only,), _ = set_phrase(notes, _syllables(1))
    assert only.notes == tuple(notes)


def test_more_syllables_split_the_longest_notes_at_the_same_pitch():
    notes = _notes(0.2, 1.0, 0.6, 0.2)
    spans, used = set_phrase(notes, _syllables(2, 2, 2))
    assert used == 6 and all(len(s.notes) == 1 for s in spans)
    sung = [s.notes[0] for s in spans]
    assert [n.pitch for n in sung] == [64, 65, 65, 66, 66, 67]
    first, second = sung[1], sung[2]
    assert first.start == notes[1].start and second.start == pytest.approx(notes[1].start + 0.5)
    assert first.start + first.duration < second.start  # two notes, not one held
    assert all(n.duration >= MIN_SYLLABLE_S - 0.011 for n in sung)


def test_what_does_not_fit_waits_for_the_next_phrase_at_a_word_boundary():
    short = _notes(0.15, 0.15)  # nothing splittable: two syllables fit
    spans, used = set_phrase(short, _syllables(1, 2, 1))
    assert used == 1  # "w0" and half of "w1" would fit: only whole words are taken
    assert len(spans) == 1 and spans[0].notes == tuple(short)  # so "w0" takes both notes
    phrases = [_notes(0.15, 0.15), _notes(0.15, 0.15, 0.15)]
    setting = set_lyrics(phrases, [_syllables(1, 2, 1)])
    assert [s.syllable.text for s in setting[0]] == ["w0"]
    assert [s.syllable.text for s in setting[1]] == ["w1", "w1", "w2"]


def test_lines_start_phrases_and_the_lyrics_come_round_again():
    phrases = [_notes(0.5, 0.5), _notes(0.5, 0.5), _notes(0.5, 0.5)]
    line_a = [Syllable(("n",), "oU", text="a1"), Syllable(("n",), "oU", text="a2")]
    line_b = [Syllable(("d",), "A:", text="b1")]
    setting = set_lyrics(phrases, [line_a, line_b])
    assert [[s.syllable.text for s in spans] for spans in setting] == [["a1", "a2"], ["b1"], ["a1", "a2"]]
    assert setting[1][0].notes == tuple(phrases[1])  # "b1" is a melisma over the whole phrase
    with pytest.raises(ValueError):
        set_lyrics(phrases, [])


def test_neutral_syllables_one_per_note_with_consonants_on_repeated_notes():
    notes = [Note(i * 0.3, 0.28, p, 80) for i, p in enumerate([64, 64, 66, 66, 66, 69])] + [
        Note(1.8, 1.2, 71, 80)
    ]
    for seed in range(20):
        spans = neutral_phrase(notes, np.random.default_rng(seed))
        assert [s.notes for s in spans] == [(n,) for n in notes]
        assert all(s.syllable in NEUTRAL.values() for s in spans)
        for previous, span in itertools.pairwise(spans):
            if previous.notes[0].pitch == span.notes[0].pitch:
                assert span.syllable.onset  # re-struck with a consonant
    texts = {
        s.syllable.text for seed in range(20) for s in neutral_phrase(notes, np.random.default_rng(seed))
    }
    assert {"la", "oh"} <= texts or {"la", "ah"} <= texts


def test_lyric_lines_split_at_newlines_and_punctuation():
    assert lyric_lines("Hello, world!\nIt's a  NEW day; sing-along") == [
        ["hello"],
        ["world"],
        ["it's", "a", "new", "day"],
        ["sing", "along"],
    ]
    assert lyric_lines(" ,,\n ") == []


def test_syllabify_by_maximal_onset():
    assert syllabify(("h", "@", "l", "oU")) == [(("h",), "@", ()), (("l",), "oU", ())]
    assert syllabify(("s", "t", "r", "E", "N", "T")) == [(("s", "t", "r"), "E", ("N", "T"))]
    assert syllabify(("E", "k", "s", "t", "r", "A:")) == [((), "E", ("k",)), (("s", "t", "r"), "A:", ())]
    assert syllabify(("s", "I", "N", "I", "N")) == [(("s",), "I", ("N",)), ((), "I", ("N",))]  # no ng onset
    assert syllabify(("S",)) == [(("S",), "@", ())]  # "shh" is sung on a schwa
    assert syllabify(()) == []


def test_a_syllable_is_espeak_input_with_the_vowel_stressed():
    assert Syllable(("s", "t"), "A:", ("r",)).phonemes == "st'A:r"
    assert NEUTRAL["oh"].phonemes == "'oU"


@needs_espeak
def test_words_get_espeak_syllables():
    assert [len(word_syllables(w)) for w in ("hello", "beautiful", "strength", "tonight", "42")] == [
        2,
        3,
        1,
        2,
        3,
    ]
    syllables = line_syllables(["hello", "world"])
    assert [s.word_end for s in syllables] == [False, True, True]
    assert syllables[2].onset == ("w",) and syllables[2].text == "world"
