"""Pure audio: synthesis, effects, loudness and WAV encoding. No I/O, no Ray."""
