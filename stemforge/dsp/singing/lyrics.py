"""Words to syllables, and syllables set to the melody's notes.

One syllable per note. A line with fewer syllables than its phrase has notes is stretched over
them as melismas (each syllable takes an even share of the notes); a line with more syllables
splits the phrase's longest notes in two (re-struck at the same pitch) and what still does not
fit moves on to the next phrase, at a word boundary. Lines (newlines, or , ; . ! ?) start new
phrases where they can; when the words run out they start again from the top, as a song's
lyrics repeat. Without words the voice sings neutral syllables ("la", "na", "da", "doo", "oh").
"""

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stemforge.dsp.singing.phonemes import syllabify, word_phonemes
from stemforge.music.notes import Note

MIN_SYLLABLE_S = 0.12  # a note is split for an extra syllable only when both halves are this long
_SPLIT_GAP_S = 0.01  # the first half of a split note ends this much before the second begins


@dataclass(frozen=True)
class Syllable:
    onset: tuple[str, ...]  # espeak-ng consonant mnemonics before the vowel
    nucleus: str  # the vowel
    coda: tuple[str, ...] = ()  # consonants after it
    text: str = ""  # the word it comes from, for reports
    word_end: bool = True  # the last syllable of its word: lines break here

    @property
    def phonemes(self) -> str:
        """espeak-ng input for the syllable, stressed so the vowel keeps its full quality."""
        return "".join(self.onset) + "'" + self.nucleus + "".join(self.coda)


@dataclass(frozen=True)
class Span:
    """A syllable and the notes it is sung on (more than one: a melisma)."""

    syllable: Syllable
    notes: tuple[Note, ...]

    @property
    def start(self) -> float:
        return self.notes[0].start

    @property
    def end(self) -> float:
        return self.notes[-1].start + self.notes[-1].duration


NEUTRAL = {
    "la": Syllable(("l",), "A:", text="la"),
    "na": Syllable(("n",), "A:", text="na"),
    "da": Syllable(("d",), "A:", text="da"),
    "ba": Syllable(("b",), "A:", text="ba"),
    "doo": Syllable(("d",), "u:", text="doo"),
    "oh": Syllable((), "oU", text="oh"),
    "ah": Syllable((), "A:", text="ah"),
}
# Each phrase draws one family; every syllable in them starts with a consonant, so repeated
# notes are re-struck. A long last note may open to a bare vowel ("oh", "ah").
_FAMILIES: tuple[tuple[str, ...], ...] = (("la",), ("na", "la"), ("da", "ba"), ("doo",), ("la", "da"))
_OPEN_ENDINGS = ("oh", "ah")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def lyric_lines(text: str) -> list[list[str]]:
    """The words of each line: lines break at newlines and at , ; . ! ? / |."""
    lines = (_WORD.findall(line.lower()) for line in re.split(r"[\n\r,;.!?/|]+", text))
    return [words for words in lines if words]


def word_syllables(word: str) -> tuple[Syllable, ...]:
    parts = syllabify(word_phonemes(word))
    return tuple(
        Syllable(onset, nucleus, coda, word, i == len(parts) - 1)
        for i, (onset, nucleus, coda) in enumerate(parts)
    )


def line_syllables(words: Sequence[str]) -> list[Syllable]:
    return [syllable for word in words for syllable in word_syllables(word)]


def _distribute(notes: Sequence[Note], syllables: Sequence[Syllable]) -> list[Span]:
    """``len(syllables) <= len(notes)``: each syllable takes an even share of the notes."""
    n, s = len(notes), len(syllables)
    bounds = [(2 * k * n + s) // (2 * s) for k in range(s + 1)]
    return [Span(syllables[k], tuple(notes[bounds[k] : bounds[k + 1]])) for k in range(s)]


def _split(notes: Sequence[Note], extra: int) -> list[Note]:
    """Split the ``extra`` longest splittable notes in two halves at the same pitch."""
    splittable = sorted(
        (i for i, note in enumerate(notes) if note.duration >= 2 * MIN_SYLLABLE_S),
        key=lambda i: (-notes[i].duration, i),
    )
    chosen = set(splittable[:extra])
    out: list[Note] = []
    for i, note in enumerate(notes):
        if i in chosen:
            half = note.duration / 2
            out.append(Note(note.start, half - _SPLIT_GAP_S, note.pitch, note.velocity))
            out.append(Note(note.start + half, note.duration - half, note.pitch, max(1, note.velocity - 4)))
        else:
            out.append(note)
    return out


def set_phrase(notes: Sequence[Note], syllables: Sequence[Syllable]) -> tuple[list[Span], int]:
    """Set ``syllables`` to one phrase's ``notes``; returns the spans and how many syllables
    were sung (the rest are for the next phrase)."""
    n, s = len(notes), len(syllables)
    if n == 0 or s == 0:
        return [], 0
    if s <= n:
        return _distribute(notes, syllables), s
    capacity = n + sum(1 for note in notes if note.duration >= 2 * MIN_SYLLABLE_S)
    take = s
    if s > capacity:
        # As many whole words as fit; a single word too long for the phrase is cut.
        fits = [k for k in range(1, capacity + 1) if syllables[k - 1].word_end]
        take = fits[-1] if fits else capacity
    split = _split(notes, max(0, take - n))
    if take < len(split):
        return _distribute(split, syllables[:take]), take
    return [Span(syllable, (note,)) for syllable, note in zip(syllables, split, strict=False)], take


def set_lyrics(phrases: Sequence[Sequence[Note]], lines: Sequence[Sequence[Syllable]]) -> list[list[Span]]:
    """Every phrase's spans: lines in order, words that do not fit carried to the next phrase,
    and the lyrics sung again from the top when they run out."""
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("no syllables to sing")
    pending: deque[Syllable] = deque()
    next_line = 0
    result: list[list[Span]] = []
    for notes in phrases:
        if len(pending) < len(notes):
            pending.extend(lines[next_line % len(lines)])
            next_line += 1
        spans, used = set_phrase(notes, list(pending))
        for _ in range(used):
            pending.popleft()
        result.append(spans)
    return result


def neutral_phrase(notes: Sequence[Note], rng: np.random.Generator) -> list[Span]:
    """Neutral syllables for one phrase, one per note, from a family the seed picks."""
    family = _FAMILIES[int(rng.integers(len(_FAMILIES)))]
    spans: list[Span] = []
    for i, note in enumerate(notes):
        name = family[int(rng.integers(len(family)))]
        last = i == len(notes) - 1
        if (
            last
            and note.duration >= 0.5
            and (i == 0 or notes[i - 1].pitch != note.pitch)
            and rng.random() < 0.6
        ):
            name = _OPEN_ENDINGS[int(rng.integers(len(_OPEN_ENDINGS)))]
        spans.append(Span(NEUTRAL[name], (note,)))
    return spans
