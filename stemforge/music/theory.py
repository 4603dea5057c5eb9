"""Keys, scales, roman-numeral progressions and voicings: the theory parts share."""

from collections.abc import Sequence
from dataclasses import dataclass

from stemforge.music.chords import Chord, parse_chord

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Keys whose signatures use flats (as tonic pitch classes, per mode); the rest are spelled in sharps.
_FLAT_MAJOR_TONICS = frozenset({5, 10, 3, 8, 1, 6})
_FLAT_MINOR_TONICS = frozenset({2, 7, 0, 5, 10, 3})
_ROMAN_DEGREES = {"i": 0, "ii": 2, "iii": 4, "iv": 5, "v": 7, "vi": 9, "vii": 11}


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class
    mode: str  # "major" or "minor"

    @property
    def scale(self) -> tuple[int, ...]:
        steps = MAJOR_SCALE if self.mode == "major" else MINOR_SCALE
        return tuple((self.tonic + step) % 12 for step in steps)

    @property
    def uses_flats(self) -> bool:
        flats = _FLAT_MAJOR_TONICS if self.mode == "major" else _FLAT_MINOR_TONICS
        return self.tonic in flats

    def note_name(self, pitch_class: int) -> str:
        names = _FLAT_NAMES if self.uses_flats else _SHARP_NAMES
        return names[pitch_class % 12]

    @property
    def name(self) -> str:
        return f"{self.note_name(self.tonic)} {self.mode}"


def estimate_key(chords: Sequence[Chord]) -> Key:
    """The major or minor key that best explains a progression: most chord tones in the scale,
    with a bonus for a tonic chord on the first bar (songs usually start at home)."""
    best: tuple[float, Key] | None = None
    for tonic in range(12):
        for mode in ("major", "minor"):
            key = Key(tonic, mode)
            scale = set(key.scale)
            score = 0.0
            for chord in chords:
                tones = chord.pitch_classes | {chord.bass}
                score += sum(1.0 if pc in scale else -2.5 for pc in tones)
                if chord.root == tonic:
                    score += 1.0
            first = chords[0]
            if first.root == tonic and first.is_minor == (mode == "minor"):
                score += 2.0
            if best is None or score > best[0]:
                best = (score, key)
    if best is None:  # an empty progression never reaches here; keep C major as a neutral answer
        return Key(0, "major")
    return best[1]


def roman_to_symbol(numeral: str, key: Key) -> str:
    """``"ii7"`` in C major -> ``"Dm7"``; ``"bVImaj7"`` in A minor -> ``"Fmaj7"``.

    Degrees count from the key's tonic on the major scale, so minor-key borrowings are written
    with accidentals (``bIII``, ``bVI``, ``bVII``); lower case means a minor chord; whatever
    follows the numeral is a chord quality suffix (``7``, ``maj7``, ``sus4``, ``dim``, ``9``).
    """
    text = numeral.strip()
    shift = 0
    while text[:1] in ("b", "#") and len(text) > 1 and text[1:2].lower() in ("i", "v"):
        shift += -1 if text[0] == "b" else 1
        text = text[1:]
    letters = ""
    for char in text:
        if char.lower() in "iv" and len(letters) < 3:
            letters += char
        else:
            break
    suffix = text[len(letters) :]
    degree = _ROMAN_DEGREES.get(letters.lower())
    if degree is None:
        raise ValueError(f"{numeral!r} is not a roman numeral")
    root = (key.tonic + degree + shift) % 12
    minor = letters.islower() and not suffix.startswith(("dim", "m7b5", "aug"))
    quality = ("m" if minor else "") + suffix
    if shift:  # a borrowed chord is spelled the way it was written: bVII is Bb, not A#
        return (_FLAT_NAMES if shift < 0 else _SHARP_NAMES)[root] + quality
    return key.note_name(root) + quality


def chord_tones(chord: Chord) -> tuple[int, ...]:
    """Pitch classes in the order a voicing should prefer them: root, third, seventh, fifth,
    then extensions (so a thinned voicing keeps what defines the chord)."""
    order = {0: 0, 3: 1, 4: 1, 2: 3, 5: 1, 10: 2, 11: 2, 9: 3, 7: 4, 6: 4, 8: 4, 1: 5}
    ranked = sorted(chord.intervals, key=lambda i: (order.get(i, 6), i))
    return tuple((chord.root + i) % 12 for i in ranked)


def chord_pitch_set(chord: Chord) -> frozenset[int]:
    """Every pitch class a chord symbol names, the slash bass included."""
    return chord.pitch_classes | {chord.bass}


def nearest_pitch(pitch_class: int, target: float) -> int:
    """The MIDI note of ``pitch_class`` closest to ``target``."""
    base = round(target) - ((round(target) - pitch_class) % 12)
    return base + 12 if target - base > 6 else base


def voice_chord(chord: Chord, previous: Sequence[int] | None, low: int, high: int, size: int) -> list[int]:
    """A close voicing of ``size`` notes within [low, high] that moves as little as possible from
    ``previous`` (voice leading); every chord tone is present when ``size`` allows."""
    tones = chord_tones(chord)
    wanted = list(tones[:size]) if len(tones) >= size else list(tones)
    candidates: list[list[int]] = []
    for lowest in range(low, high - 3):
        if lowest % 12 not in wanted:
            continue
        voicing = [lowest]
        remaining = [pc for pc in wanted if pc != lowest % 12]
        pitch = lowest
        while remaining:
            pitch += 1
            if pitch % 12 in remaining:
                voicing.append(pitch)
                remaining.remove(pitch % 12)
        while len(voicing) < size:  # double from the bottom up an octave higher
            voicing.append(voicing[len(voicing) - len(wanted)] + 12)
        if voicing[-1] <= high:
            candidates.append(voicing)
    if not candidates:
        root = nearest_pitch(chord.root, (low + high) / 2)
        return sorted(root + i for i in chord.intervals)[:size]
    centre = (low + high) / 2
    if not previous:
        return min(candidates, key=lambda v: abs(sum(v) / len(v) - centre))

    def movement(voicing: list[int]) -> float:
        return sum(min(abs(p - q) for q in previous) for p in voicing) + 0.1 * abs(
            sum(voicing) / len(voicing) - centre
        )

    return min(candidates, key=movement)


def progression_from_numerals(numerals: Sequence[str], key: Key) -> tuple[Chord, ...]:
    return tuple(parse_chord(roman_to_symbol(n, key)) for n in numerals)


def spread_voicing(chord: Chord, previous: Sequence[int] | None, low: int, high: int, size: int) -> list[int]:
    """An open (drop-2) voicing of ``size`` notes within [low, high]: a close voicing with its
    second note from the top dropped an octave, so the chord spreads over more than an octave
    and two instruments on the same chord do not stack the same cluster. Voice-led like
    ``voice_chord``; a close voicing where no open one fits."""
    close = voice_chord(chord, [p + 12 for p in previous] if previous else None, low + 12, high + 12, size)
    if len(close) >= 3 and close[0] >= low + 12:
        dropped = sorted([*close[:-2], close[-2] - 12, close[-1]])
        dropped = [p - 12 for p in dropped]
        if min(dropped) >= low and max(dropped) <= high and len(set(dropped)) == len(dropped):
            return dropped
    close = voice_chord(chord, previous, low + 5, high, size)
    if len(close) >= 3:
        dropped = sorted([*close[:-2], close[-2] - 12, close[-1]])
        if min(dropped) >= low and max(dropped) <= high and len(set(dropped)) == len(dropped):
            return dropped
    return voice_chord(chord, previous, low, high, size)
