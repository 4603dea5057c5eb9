"""What the platform hears in the stems it returns: per-stem quality metrics, the request's
coherence, human-readable warnings against configurable bounds, and a mix of the stems.

Pure code over numpy arrays (no Ray, no storage): the uploader runs it off its event loop and
stores what it returns. Metrics that need librosa (tempo, grid, onsets, key, chords) import it
lazily and are left out, with a warning, where it is not installed.
"""
