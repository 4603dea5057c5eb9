"""A user's Standard MIDI File, read into what the procedural engine plays: the tempo, the metre
and its bar grid, one chord per bar, the key, and every track's notes on the stem it maps to.

Pure: bytes in, a ``MidiScore`` out (mido parses, pretty_midi turns ticks into seconds); no I/O.
Anything that is not a usable file raises ``InvalidMidi`` with a message for a 422.

Tempo. ``bpm`` counts the beats the song plan counts: quarter notes, except in 6/8 and 12/8,
where a beat is a dotted quarter (the file's quarter-note tempo / 1.5), so a file written by
``stemforge.music.midi.part_to_midi`` reads back at its plan's bpm. ``bpm`` is the tempo at the
start; ``tempo_changes`` lists every change (the first at 0 s) in the same beats.

Metre. The engine plays one metre for the whole song: the file's time signature that lasts
longest (a short pickup bar written as its own signature loses to the metre that follows it;
no signature is MIDI's default 4/4). 4/4, 3/4, 6/8 and 12/8 are kept; others become the
nearest of those: any numerator 3 (3/8, 3/2) -> 3/4; 6/4 -> 3/4 (two of its bars are one);
6/16 -> 6/8; 9/8, 12/16 and other compound metres (a numerator divisible by 3, over 8 or 16)
-> 12/8; everything else (2/4, 2/2, 5/4, 7/8, ...) -> 4/4. Bars are the kept metre's (4/4:
four quarters, 3/4 and 6/8: three, 12/8: six), on a grid through that signature's position,
so ``first_downbeat_seconds`` is 0 unless the file starts with a pickup (its signature sits
off the grid of bar lines from 0). Bars follow tempo changes.

Stems. Each pretty_midi instrument (a track's notes on one channel and program) is one
``MidiTrack``; its stem, in this order:

1. the drum channel (10) -> ``drums``, whatever its name or program;
2. a name with a singing word (vocal, voice, vox, voc, sing, singer, melody, lead, choir,
   lyrics) and no instrument word -> ``vocals`` ("Lead Vocal", "Vox", "Melody"; but not
   "Lead Guitar" or "Synth Lead", which fall through to their program);
3. a choir or voice program (52 choir aahs, 53 voice oohs, 54 synth voice) -> ``vocals``;
4. program 0 (a file that never set one) with a name naming one stem's instrument (drum, kit,
   bass, guitar, gtr, piano, keys, organ, synth, pad, ...) -> that stem ("Bass" on program 0
   is the bass, not a piano);
5. the General MIDI family of the program: 0-7 piano -> piano; 8-15 chromatic percussion ->
   other; 16-23 organ -> piano; 24-31 guitar -> guitar; 32-39 bass -> bass; 40-51 strings and
   ensembles -> other; 55 orchestra hit -> other; 56-63 brass -> other; 64-79 reed and pipe
   -> vocals when the track is a melody line (below), else other; 80-87 synth lead -> synth;
   88-103 synth pad and effects -> synth; 104-127 ethnic, percussive, effects -> other.

That is ``stem_for_track``: a track on its own. The file then settles its vocal line: when a
track is vocals by rule 2 or 3, a reed or pipe melody stays other. When none is, a melody line
can be the vocal line: of the tracks whose family is other (chromatic percussion, strings,
ensembles, brass, reed and pipe, ethnic 104-111; not the orchestra hit or 112-127), the melody
lines, the highest (mean pitch) becomes vocals and any other reed or pipe melody is other.
A piano, guitar, bass, synth or drum track keeps its stem: those stems have their own players,
so a lead guitar or a synth lead is never taken for the singer. A melody line: at least 4
notes, mean pitch at least 60 (middle C), and one note at a time (at most a tenth of its notes
start while the previous one still sounds, beyond a legato overlap of 100 ms or half a note).

Chords. One per bar from the first downbeat to the last note (a note ringing into a bar by less
than a sixteenth of it opens no bar), from the non-drum notes: each bar's 12 pitch-class weights
are the notes' overlap with it in bars (bass-stem notes count double, vocal-stem notes half:
a melody's passing notes are not its harmony), matched to the 24 major and minor triads (the
sum of a triad's weights, its root's once more); a tie keeps the previous bar's chord. A bar
with (almost) no notes repeats the previous chord (bars before the first chord take the first).
A file with drums only has no chords and no key. Symbols are spelled in the key (``Bb``, not
``A#``, in F major) and parse with ``parse_chord``.

Key: ``stemforge.music.theory.estimate_key`` of the bar chords, as ``"A minor"``.

Limits: not a Standard MIDI File (no ``MThd`` header, or mido/pretty_midi cannot parse it; a
RIFF RMID file is read as the Standard MIDI File it wraps), no notes, notes ending after
``max_seconds`` or more than ``max_notes`` notes raise ``InvalidMidi``.
The note count and the end of the notes are checked on mido's events before pretty_midi builds
its tick table (a float per tick), so a small file with far-off notes costs no memory; pretty_midi
itself refuses any event past 10 million ticks.
"""

import io
import itertools
import re
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mido
import numpy as np
import pretty_midi

from stemforge.music.chords import parse_chord
from stemforge.music.notes import Note
from stemforge.music.theory import Key, estimate_key

SUPPORTED_METRES = ("4/4", "3/4", "6/8", "12/8")
# Felt beats per bar of each metre, as the song plan counts them (compound metres in dotted quarters).
BEATS_PER_BAR = {"4/4": 4, "3/4": 3, "6/8": 2, "12/8": 4}
_BAR_QUARTERS = {"4/4": 4.0, "3/4": 3.0, "6/8": 3.0, "12/8": 6.0}
_COMPOUND = frozenset({"6/8", "12/8"})

_VOCAL_WORDS = frozenset(
    {"vocal", "vocals", "voc", "vox", "voice", "voices", "sing", "singer", "singing", "sung"}
    | {"melody", "melodies", "lead", "leads", "choir", "lyric", "lyrics"}
)
_INSTRUMENT_WORDS: dict[str, frozenset[str]] = {
    "drums": frozenset(
        {"drum", "drums", "kit", "perc", "percussion", "kick", "snare", "hat", "hats", "hihat"}
        | {"cymbal", "cymbals", "toms", "beat", "beats"}
    ),
    "bass": frozenset({"bass", "basses", "bassline"}),
    "guitar": frozenset({"guitar", "guitars", "gtr", "gtrs", "guit"}),
    "piano": frozenset(
        {"piano", "pianos", "keys", "keyboard", "keyboards", "organ", "rhodes", "wurli", "clav"}
        | {"epiano", "clavinet", "wurlitzer"}
    ),
    "synth": frozenset({"synth", "synths", "synthesizer", "pad", "pads", "arp"}),
}
_VOICE_PROGRAMS = range(52, 55)
_REED_PIPE = range(64, 80)
# Families whose stem is "other" but whose monophonic top line may be the tune.
_MELODY_FAMILIES = (*range(8, 16), *range(40, 52), *range(56, 80), *range(104, 112))

MELODY_MIN_NOTES = 4
MELODY_MIN_MEAN_PITCH = 60.0
_LEGATO_SECONDS = 0.1
_MAX_OVERLAPPING_SHARE = 0.1
_BASS_WEIGHT = 2.0
_VOCAL_WEIGHT = 0.5
_ROOT_BONUS = 0.5
_EMPTY_BAR = 0.05  # pitch weight (in note-bars) below which a bar repeats the previous chord
_RING_OVER = 1.0 / 16  # of a bar: a last note ringing this little past a bar line opens no bar
_NAME_CHARS = 64
_SHARPS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class InvalidMidi(ValueError):
    """A MIDI file that cannot be used; the message says why (for a 422)."""


@dataclass(frozen=True)
class MidiTrack:
    name: str  # the file's track name (the General MIDI instrument's when it has none)
    program: int  # General MIDI program 0..127
    is_drum: bool  # channel 10
    notes: tuple[Note, ...]  # seconds from the start of the file, sorted by (start, pitch)
    stem: str  # vocals, drums, bass, guitar, piano, synth or other


@dataclass(frozen=True)
class MidiScore:
    bpm: float  # at the start, in the metre's felt beats (dotted quarters in 6/8, 12/8)
    tempo_changes: tuple[tuple[float, float], ...]  # (seconds, bpm), the first at 0
    time_signature: str  # one of SUPPORTED_METRES
    beats_per_bar: int  # felt beats, as the song plan counts them
    first_downbeat_seconds: float  # bar 1's downbeat
    duration_seconds: float  # the end of the last note
    tracks: tuple[MidiTrack, ...]
    chords: tuple[str, ...]  # one per bar from the first downbeat; () with drums only
    key: str | None  # "A minor"; None with drums only
    bars: int = 0  # bars from the first downbeat to the last note (0: not counted, len(chords))

    def stems(self) -> dict[str, tuple[Note, ...]]:
        """Each stem's notes: its tracks' notes merged, sorted by (start, pitch)."""
        merged: dict[str, list[Note]] = {}
        for track in self.tracks:
            merged.setdefault(track.stem, []).extend(track.notes)
        return {
            stem: tuple(sorted(notes, key=lambda n: (n.start, n.pitch, n.duration, n.velocity)))
            for stem, notes in merged.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (the callback's reference analysis)."""
        return {
            "bpm": round(self.bpm, 3),
            "tempo_changes": [[round(t, 3), round(b, 3)] for t, b in self.tempo_changes],
            "time_signature": self.time_signature,
            "beats_per_bar": self.beats_per_bar,
            "bars": self.bars or len(self.chords),
            "first_downbeat_seconds": round(self.first_downbeat_seconds, 3),
            "duration_seconds": round(self.duration_seconds, 3),
            "chords": list(self.chords),
            "key": self.key,
            "tracks": [
                {
                    "name": t.name,
                    "program": t.program,
                    "is_drum": t.is_drum,
                    "notes": len(t.notes),
                    "stem": t.stem,
                }
                for t in self.tracks
            ],
        }


# --- stems -------------------------------------------------------------------------------------


def _words(name: str) -> list[str]:
    """``"LeadVocal 2"`` -> ``["lead", "vocal"]``: letter runs, camel case split."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", name)]


def _named_stems(words: Sequence[str]) -> set[str]:
    return {stem for stem, names in _INSTRUMENT_WORDS.items() if any(w in names for w in words)}


def is_melody_line(notes: Sequence[Note]) -> bool:
    """At least 4 notes, mean pitch at least 60, one note at a time (see the module docstring)."""
    if len(notes) < MELODY_MIN_NOTES:
        return False
    if _mean_pitch(notes) < MELODY_MIN_MEAN_PITCH:
        return False
    ordered = sorted(notes, key=lambda n: (n.start, n.pitch))
    overlapping = 0
    for previous, note in itertools.pairwise(ordered):
        overlap = previous.start + previous.duration - note.start
        if overlap > min(_LEGATO_SECONDS, 0.5 * previous.duration):
            overlapping += 1
    return overlapping <= _MAX_OVERLAPPING_SHARE * len(ordered)


def _mean_pitch(notes: Sequence[Note]) -> float:
    return sum(n.pitch for n in notes) / len(notes)


def _family_stem(program: int, notes: Sequence[Note]) -> str:
    if program < 8 or 16 <= program < 24:
        return "piano"
    if 24 <= program < 32:
        return "guitar"
    if 32 <= program < 40:
        return "bass"
    if program in _VOICE_PROGRAMS:
        return "vocals"
    if program in _REED_PIPE:
        return "vocals" if is_melody_line(notes) else "other"
    if 80 <= program < 104:
        return "synth"
    return "other"


def _classify(program: int, is_drum: bool, name: str, notes: Sequence[Note]) -> tuple[str, str]:
    """(stem, rule): rule is "drum", "name", "voice", "named instrument" or "family"."""
    if is_drum:
        return "drums", "drum"
    words = _words(name)
    named = _named_stems(words)
    if any(w in _VOCAL_WORDS for w in words) and not named:
        return "vocals", "name"
    if program in _VOICE_PROGRAMS:
        return "vocals", "voice"
    if program == 0 and len(named) == 1:
        return next(iter(named)), "named instrument"
    return _family_stem(program, notes), "family"


def stem_for_track(program: int, is_drum: bool, name: str, notes: Sequence[Note]) -> str:
    """The stem of one track on its own (rules 1-5 of the module docstring). ``read_midi`` then
    settles the file's vocal line across its tracks."""
    return _classify(program, is_drum, name, notes)[0]


def _settle_vocals(tracks: list[MidiTrack], rules: list[str]) -> list[MidiTrack]:
    """One file's vocal line: the named or voiced vocals, else its highest melody line."""

    def demoted(track: MidiTrack, stem: str) -> MidiTrack:
        return MidiTrack(track.name, track.program, track.is_drum, track.notes, stem)

    explicit = any(
        t.stem == "vocals" and rule in ("name", "voice") for t, rule in zip(tracks, rules, strict=True)
    )
    candidates = [
        i
        for i, (t, rule) in enumerate(zip(tracks, rules, strict=True))
        if rule == "family" and t.program in _MELODY_FAMILIES and is_melody_line(t.notes)
    ]
    singer: int | None = None
    if not explicit and candidates:
        singer = max(candidates, key=lambda i: (_mean_pitch(tracks[i].notes), len(tracks[i].notes), -i))
    settled = []
    for i, (track, rule) in enumerate(zip(tracks, rules, strict=True)):
        if i == singer:
            settled.append(demoted(track, "vocals"))
        elif rule == "family" and track.stem == "vocals":  # a reed or pipe melody, not the singer
            settled.append(demoted(track, "other"))
        else:
            settled.append(track)
    return settled


def _track_name(name: str, program: int, is_drum: bool) -> str:
    cleaned = "".join(c for c in name if c.isprintable()).strip()[:_NAME_CHARS]
    if cleaned:
        return cleaned
    return "Drums" if is_drum else str(pretty_midi.program_to_instrument_name(program))


# --- parsing and limits ------------------------------------------------------------------------


def _unwrap_rmid(data: bytes) -> bytes:
    """The Standard MIDI File inside a RIFF RMID file (its "data" chunk); other bytes as they are."""
    if data[:4] != b"RIFF" or data[8:12] != b"RMID":
        return data
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if chunk == b"data":
            return data[at + 8 : at + 8 + size]
        at += 8 + size + (size & 1)
    return data


def _parse(data: bytes) -> mido.MidiFile:
    if not data:
        raise InvalidMidi("not a Standard MIDI File: the file is empty")
    data = _unwrap_rmid(data)
    if data[:4] != b"MThd":
        raise InvalidMidi("not a Standard MIDI File: it does not start with an 'MThd' header")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError, ...
        raise InvalidMidi(f"not a Standard MIDI File: {_reason(exc)}") from None
    if not isinstance(midi.ticks_per_beat, int) or not 0 < midi.ticks_per_beat < 0x8000:
        raise InvalidMidi("not a Standard MIDI File: its time division is not in ticks per quarter note")
    return midi


def _reason(exc: Exception) -> str:
    if isinstance(exc, EOFError):
        return "it is cut short (a chunk ends before its length says)"
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


def _check_events(midi: mido.MidiFile, max_seconds: float, max_notes: int) -> None:
    """The note count and the end of the last note event, from mido's events (cheap)."""
    tempos: list[tuple[int, int]] = []
    notes = 0
    last_note_tick = 0
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                if message.tempo <= 0:
                    raise InvalidMidi("not a Standard MIDI File: a tempo of 0 microseconds a quarter note")
                tempos.append((tick, message.tempo))
            elif message.type in ("note_on", "note_off"):
                last_note_tick = max(last_note_tick, tick)
                if message.type == "note_on" and message.velocity > 0:
                    notes += 1
    if notes == 0:
        raise InvalidMidi("no notes: the file has no note events")
    if notes > max_notes:
        raise InvalidMidi(f"too many notes: {notes} (at most {max_notes})")
    seconds = 0.0
    tick, tempo = 0, 500_000  # MIDI's default: 120 quarter notes a minute
    for at, new_tempo in sorted(tempos):
        if at >= last_note_tick:
            break
        seconds += (at - tick) * tempo / 1e6 / midi.ticks_per_beat
        tick, tempo = at, new_tempo
    seconds += (last_note_tick - tick) * tempo / 1e6 / midi.ticks_per_beat
    if seconds > max_seconds + 1e-3:
        raise InvalidMidi(f"longer than {max_seconds:g} s: its notes end at {seconds:.1f} s")


# --- tempo and metre ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _TempoMap:
    """Seconds <-> quarter notes, piecewise linear through the tempo changes."""

    times: np.ndarray  # seconds of each change, the first 0
    quarters: np.ndarray  # quarter-note position of each change
    rates: np.ndarray  # quarter notes a second from each change

    @classmethod
    def of(cls, changes: Sequence[tuple[float, float]]) -> "_TempoMap":
        times = np.array([t for t, _ in changes])
        rates = np.array([bpm / 60.0 for _, bpm in changes])
        quarters = np.concatenate([[0.0], np.cumsum(np.diff(times) * rates[:-1])])
        return cls(times, quarters, rates)

    def to_quarters(self, seconds: Any) -> Any:
        i = np.clip(np.searchsorted(self.times, seconds, side="right") - 1, 0, None)
        return self.quarters[i] + (np.asarray(seconds) - self.times[i]) * self.rates[i]

    def to_seconds(self, quarters: Any) -> Any:
        i = np.clip(np.searchsorted(self.quarters, quarters, side="right") - 1, 0, None)
        return self.times[i] + (np.asarray(quarters) - self.quarters[i]) / self.rates[i]


def _quarter_tempi(song: pretty_midi.PrettyMIDI) -> list[tuple[float, float]]:
    """(seconds, quarter-note bpm) of each change, the first at 0; repeats dropped."""
    times, tempi = song.get_tempo_changes()
    changes: list[tuple[float, float]] = []
    for time, bpm in zip(times, tempi, strict=True):
        t, b = max(0.0, float(time)), float(bpm)
        if changes and t - changes[-1][0] < 1e-9:
            changes[-1] = (changes[-1][0], b)
        elif not changes or abs(b - changes[-1][1]) > 1e-6:
            changes.append((t, b))
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0.0, 120.0))
    return changes


def supported_metre(numerator: int, denominator: int) -> str:
    """The file's time signature as one the engine plays (see the module docstring)."""
    signature = f"{numerator}/{denominator}"
    if signature in SUPPORTED_METRES:
        return signature
    if numerator == 3 or signature == "6/4":
        return "3/4"
    if signature == "6/16":
        return "6/8"
    if denominator in (8, 16) and numerator % 3 == 0 and numerator > 3:
        return "12/8"
    return "4/4"


def _metre(song: pretty_midi.PrettyMIDI, tempo: _TempoMap, end: float) -> tuple[str, float]:
    """The metre lasting longest, and the quarter-note position of its first downbeat."""
    changes = sorted(
        (s for s in song.time_signature_changes if s.time < end and s.numerator > 0 and s.denominator > 0),
        key=lambda s: s.time,
    )
    spans: list[tuple[float, float, str]] = []  # (start, end) seconds, metre
    if not changes or changes[0].time > 1e-6:
        spans.append((0.0, changes[0].time if changes else end, "4/4"))
    for i, change in enumerate(changes):
        until = changes[i + 1].time if i + 1 < len(changes) else end
        spans.append((change.time, until, supported_metre(change.numerator, change.denominator)))
    start, _, metre = max(spans, key=lambda s: s[1] - s[0])  # the first of equally long ones
    anchor = float(tempo.to_quarters(start)) % _BAR_QUARTERS[metre]
    if anchor > _BAR_QUARTERS[metre] - 1e-6:
        anchor = 0.0
    return metre, anchor


# --- chords ------------------------------------------------------------------------------------

# The 24 triads, (root, minor), with their scoring rows: the tones 1, the root 1 + bonus.
_TRIADS = [(root, minor) for root in range(12) for minor in (False, True)]
_TRIAD_ROWS = np.zeros((24, 12))
for _row, (_root, _minor) in enumerate(_TRIADS):
    _TRIAD_ROWS[_row, [_root, (_root + (3 if _minor else 4)) % 12, (_root + 7) % 12]] = 1.0
    _TRIAD_ROWS[_row, _root] += _ROOT_BONUS


def _bar_weights(
    tracks: Sequence[MidiTrack], tempo: _TempoMap, anchor: float, bar_quarters: float, bars: int
) -> np.ndarray:
    """``(bars, 12)``: each pitch class's notes' overlap with each bar, in bars, weighted."""
    weights = np.zeros((bars, 12))
    for track in tracks:
        if track.is_drum or track.stem == "drums" or not track.notes:
            continue
        scale = _BASS_WEIGHT if track.stem == "bass" else _VOCAL_WEIGHT if track.stem == "vocals" else 1.0
        starts = np.array([n.start for n in track.notes])
        ends = starts + np.array([n.duration for n in track.notes])
        first = (tempo.to_quarters(starts) - anchor) / bar_quarters
        last = (tempo.to_quarters(ends) - anchor) / bar_quarters
        for a, b, note in zip(first, last, track.notes, strict=True):
            lo, hi = max(0, int(np.floor(a))), min(bars, int(np.ceil(b)))
            for bar in range(lo, hi):
                overlap = min(b, bar + 1) - max(a, bar)
                if overlap > 0:
                    weights[bar, note.pitch % 12] += scale * overlap
    return weights


def _bar_triads(weights: np.ndarray) -> list[tuple[int, bool]]:
    """The best triad of each bar; an (almost) empty bar repeats the previous one."""
    scores = weights @ _TRIAD_ROWS.T
    found: list[tuple[int, bool] | None] = []
    previous: int | None = None
    for bar in range(len(weights)):
        if weights[bar].sum() < _EMPTY_BAR:
            found.append(None)
            continue
        best = int(np.argmax(scores[bar]))
        if previous is not None and scores[bar, previous] >= scores[bar, best] - 1e-9 * scores[bar, best]:
            best = previous
        previous = best
        found.append(_TRIADS[best])
    known = [f for f in found if f is not None]
    if not known:
        return []
    out: list[tuple[int, bool]] = []
    last = known[0]
    for triad in found:
        last = triad if triad is not None else last
        out.append(last)
    return out


def _spell(triads: Sequence[tuple[int, bool]]) -> tuple[tuple[str, ...], Key | None]:
    if not triads:
        return (), None
    key = estimate_key([parse_chord(_SHARPS[root] + ("m" if minor else "")) for root, minor in triads])
    return tuple(key.note_name(root) + ("m" if minor else "") for root, minor in triads), key


# --- reading -----------------------------------------------------------------------------------


def read_midi(data: bytes, max_seconds: float = 600.0, max_notes: int = 100_000) -> MidiScore:
    """A Standard MIDI File's tempo, metre, chords, key and stems (see the module docstring).

    Raises ``InvalidMidi`` when it is not a Standard MIDI File, has no notes, more than
    ``max_notes`` notes, or notes ending after ``max_seconds``."""
    midi = _parse(data)
    _check_events(midi, max_seconds, max_notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # meta events on other tracks than the first
            song = pretty_midi.PrettyMIDI(mido_object=midi)
    except Exception as exc:
        raise InvalidMidi(f"not a Standard MIDI File: {_reason(exc)}") from None

    tracks: list[MidiTrack] = []
    rules: list[str] = []
    for instrument in song.instruments:
        notes = tuple(
            sorted(
                (
                    Note(
                        round(float(n.start), 6),
                        round(max(0.0, float(n.end) - float(n.start)), 6),
                        int(n.pitch),
                        min(127, max(1, int(n.velocity))),
                    )
                    for n in instrument.notes
                ),
                key=lambda n: (n.start, n.pitch),
            )
        )
        if not notes:
            continue
        program, is_drum, name = int(instrument.program), bool(instrument.is_drum), str(instrument.name or "")
        stem, rule = _classify(program, is_drum, name, notes)
        tracks.append(MidiTrack(_track_name(name, program, is_drum), program, is_drum, notes, stem))
        rules.append(rule)
    if not tracks:
        raise InvalidMidi("no notes: the file has no note events")
    tracks = _settle_vocals(tracks, rules)
    end = max(n.start + n.duration for t in tracks for n in t.notes)
    if end > max_seconds + 1e-3:
        raise InvalidMidi(f"longer than {max_seconds:g} s: its notes end at {end:.1f} s")

    quarter_tempi = _quarter_tempi(song)
    tempo = _TempoMap.of(quarter_tempi)
    metre, anchor = _metre(song, tempo, end)
    bar_quarters = _BAR_QUARTERS[metre]
    last_bar = (float(tempo.to_quarters(end)) - anchor) / bar_quarters
    bars = max(1, int(np.ceil(last_bar - _RING_OVER)))
    triads = _bar_triads(_bar_weights(tracks, tempo, anchor, bar_quarters, bars))
    chords, key = _spell(triads)
    felt = 1.5 if metre in _COMPOUND else 1.0
    return MidiScore(
        bpm=round(quarter_tempi[0][1] / felt, 3),
        tempo_changes=tuple((round(t, 6), round(b / felt, 3)) for t, b in quarter_tempi),
        time_signature=metre,
        beats_per_bar=BEATS_PER_BAR[metre],
        first_downbeat_seconds=round(float(tempo.to_seconds(anchor)), 6),
        duration_seconds=round(end, 6),
        tracks=tuple(tracks),
        chords=chords,
        key=key.name if key else None,
        bars=bars,
    )
