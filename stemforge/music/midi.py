"""Standard MIDI files of a part's notes (pretty_midi), on the plan's tempo and metre."""

import io

import pretty_midi

from stemforge.music.notes import Part
from stemforge.music.plan import SongPlan


def part_to_midi(part: Part, plan: SongPlan) -> bytes:
    """One track: the stem's notes on its General MIDI program (channel 10 kit for drums)."""
    song = pretty_midi.PrettyMIDI(initial_tempo=plan.bpm, resolution=480)
    song.time_signature_changes.append(pretty_midi.TimeSignature(plan.beats_per_bar, 4, 0.0))
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
