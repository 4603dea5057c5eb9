"""Standard MIDI files of a part's notes (pretty_midi), on the plan's tempo and metre.

The part's notes are already tidy (``Part.tidy``: no two notes of one pitch overlap, none is
empty), so every note of the part is one note of the file, as the renderers play it."""

import io

import pretty_midi

from stemforge.music.notes import Part
from stemforge.music.plan import SongPlan


def part_to_midi(part: Part, plan: SongPlan) -> bytes:
    """One track: the stem's notes on its General MIDI program (channel 10 kit for drums)."""
    # MIDI counts tempo in quarter notes; a compound metre's beat is a dotted quarter.
    quarter_bpm = plan.bpm * (1.5 if plan.compound else 1.0)
    song = pretty_midi.PrettyMIDI(initial_tempo=quarter_bpm, resolution=480)
    numerator, denominator = (int(x) for x in plan.meter.split("/"))
    song.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, 0.0))
    instrument = part.instrument
    track = pretty_midi.Instrument(
        program=0 if instrument.is_drum else instrument.program,
        is_drum=instrument.is_drum,
        name=f"{part.stem}: {instrument.name}",
    )
    end = plan.end_seconds
    for note in part.sorted_notes():
        if note.start >= end:
            continue
        track.notes.append(
            pretty_midi.Note(
                velocity=note.velocity,
                pitch=note.pitch,
                start=note.start,
                end=min(end, note.start + note.duration),
            )
        )
    song.instruments.append(track)
    buffer = io.BytesIO()
    song.write(buffer)
    return buffer.getvalue()
