"""References a request brings: audio to follow or a MIDI file to play."""
