"""Sampled instruments: note events rendered through a General MIDI SoundFont by FluidSynth.

FluidSynth (the C library, Debian ``libfluidsynth3``) is driven through pyfluidsynth's bindings;
audio is pulled as float32 between events so every note starts on its exact sample. Loading a
SoundFont takes seconds, so one synthesizer per file is shared by the process, behind a lock.
"""

import ctypes
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stemforge.music.notes import Note

# Where Debian's packages put permissively licensed (MIT) General MIDI SoundFonts, best first.
DEFAULT_SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf3/FluidR3Mono_GM.sf3",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
)
_DRUM_CHANNEL = 9
_MELODIC_CHANNEL = 0
# Voices beyond this steal the oldest (usually a release tail): render time grows with voices,
# and strummed or sustained parts rarely need more.
_POLYPHONY = 24
_BLOCK_FRAMES = 64  # FluidSynth's internal block (FLUID_BUFSIZE)
_PAN_CC, _VOLUME_CC = 10, 7
_FLUID_WARN = 2


class SoundFontUnavailable(RuntimeError):
    """No FluidSynth library, or no readable SoundFont file."""


def find_soundfont(explicit: str | None = None) -> Path | None:
    """``explicit`` if given (and readable), else the first default SoundFont installed."""
    candidates = [explicit] if explicit else list(DEFAULT_SOUNDFONT_PATHS)
    for candidate in candidates:
        if candidate and os.access(candidate, os.R_OK):
            return Path(candidate)
    return None


def _load_fluidsynth() -> Any:
    try:
        import fluidsynth
    except (ImportError, OSError) as exc:  # pyfluidsynth raises ImportError without libfluidsynth
        raise SoundFontUnavailable(f"FluidSynth is not available: {exc}") from exc
    return fluidsynth


class SoundFontSynth:
    """A SoundFont loaded once into FluidSynth, and rendered a part at a time.

    Each render runs on a fresh FluidSynth instance that borrows the loaded SoundFont: a synth
    that has played before carries state (the order of its voices, where it is in its 64-frame
    block) that changes the output in its last bits, and the contract is same request, same
    bytes. A fresh instance costs a few milliseconds; loading the SoundFont costs seconds."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self._fluidsynth = _load_fluidsynth()
        self._fl = self._fluidsynth._fl
        self._bind_c_functions()
        self._owner = self._new_synth(float(sample_rate))
        self._font_id = self._owner.sfload(str(path))
        if self._font_id < 0:
            raise SoundFontUnavailable(f"FluidSynth could not load the SoundFont {path}")
        self._font = self._fluidsynth.fluid_synth_get_sfont_by_id(self._owner.synth, self._font_id)
        self.path = path
        self.sample_rate = sample_rate
        self.lock = threading.Lock()
        self._touch_every_sample()

    def _bind_c_functions(self) -> None:
        # Typed here: ctypes would pass 64-bit pointers as C ints otherwise.
        fl = self._fl
        fl.fluid_synth_write_float.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        fl.fluid_synth_write_float.restype = ctypes.c_int
        fl.fluid_synth_add_sfont.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        fl.fluid_synth_add_sfont.restype = ctypes.c_int
        fl.fluid_synth_remove_sfont.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        fl.fluid_synth_remove_sfont.restype = ctypes.c_int
        self._write = fl.fluid_synth_write_float
        # A synth without a SoundFont warns once per channel; ours attach theirs right after.
        fl.fluid_set_log_function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        fl.fluid_set_log_function(_FLUID_WARN, None, None)

    def _new_synth(self, sample_rate: float) -> Any:
        synth = self._fluidsynth.Synth(gain=0.5, samplerate=sample_rate, channels=16)
        # Effects are ours (pedalboard), so the synth stays dry.
        for name, value in (
            ("synth.reverb.active", 0),
            ("synth.chorus.active", 0),
            ("synth.polyphony", _POLYPHONY),
            ("synth.cpu-cores", 1),
        ):
            synth.setting(name, value)
        return synth

    def _touch_every_sample(self) -> None:
        """FluidSynth measures a sample's level the first time a voice plays it (to end quiet
        tails early), so a note sounds slightly different the first time its sample is used.
        Striking every key of every preset once at load makes every request sound alike."""
        synth = self._owner
        scratch = np.zeros(_BLOCK_FRAMES, dtype=np.float32)
        pointer = scratch.ctypes.data
        for bank in (0, 128):
            for program in range(128):
                if not self.has_preset(bank, program):
                    continue
                synth.program_select(_MELODIC_CHANNEL, self._font_id, bank, program)
                for pitch in range(128):
                    for velocity in (1, 64, 127):  # velocity layers use different samples
                        synth.noteon(_MELODIC_CHANNEL, pitch, velocity)
                        self._write(synth.synth, _BLOCK_FRAMES, pointer, 0, 1, pointer, 0, 1)
                        synth.all_sounds_off(_MELODIC_CHANNEL)

    def has_preset(self, bank: int, program: int) -> bool:
        return bool(self._owner.sfpreset_name(self._font_id, bank, program))

    def render(
        self,
        notes: Sequence[Note],
        num_frames: int,
        program: int,
        bank: int,
        pan: float,
        key_pans: Mapping[int, float] | None = None,
    ) -> np.ndarray:
        """``notes`` on ``program`` (``bank`` 128: a drum kit) as float32 ``(num_frames, 2)``.

        ``key_pans`` places single keys elsewhere than ``pan`` (a drum kit's pieces across the
        stereo field): each distinct position plays on a channel of its own."""
        if not self.has_preset(bank, program):
            program = 0
        with self.lock:
            synth = self._new_synth(float(self.sample_rate))
            font_id = self._fl.fluid_synth_add_sfont(synth.synth, self._font)
            try:
                return self._render_on(synth, font_id, notes, num_frames, program, bank, pan, key_pans or {})
            finally:
                # Detach before deleting: the SoundFont belongs to the owner synth.
                self._fl.fluid_synth_remove_sfont(synth.synth, self._font)
                synth.delete()

    def _render_on(
        self,
        synth: Any,
        font_id: int,
        notes: Sequence[Note],
        num_frames: int,
        program: int,
        bank: int,
        pan: float,
        key_pans: Mapping[int, float],
    ) -> np.ndarray:
        home = _DRUM_CHANNEL if bank == 128 else _MELODIC_CHANNEL
        positions = sorted({pan, *key_pans.values()})
        spare = [c for c in range(16) if c != home]
        channel_of_pan = {pan: home}
        for position in positions:
            if position not in channel_of_pan and spare:
                channel_of_pan[position] = spare.pop(0)
        for position, channel in channel_of_pan.items():
            synth.program_select(channel, font_id, bank, program)
            synth.cc(channel, _PAN_CC, int(np.clip(round(64 + position * 63), 0, 127)))
            synth.cc(channel, _VOLUME_CC, 110)
        channel_of_key = {key: channel_of_pan.get(p, home) for key, p in key_pans.items()}
        events = _events(notes, num_frames, self.sample_rate)
        left = np.zeros(num_frames, dtype=np.float32)
        right = np.zeros(num_frames, dtype=np.float32)
        left_ptr, right_ptr = left.ctypes.data, right.ctypes.data
        position = 0
        for frame, is_on, pitch, velocity in events:
            if frame > position:
                self._write(synth.synth, frame - position, left_ptr, position, 1, right_ptr, position, 1)
                position = frame
            channel = channel_of_key.get(pitch, home)
            if is_on:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        if position < num_frames:
            self._write(synth.synth, num_frames - position, left_ptr, position, 1, right_ptr, position, 1)
        return np.stack([left, right], axis=1)


def _events(notes: Sequence[Note], num_frames: int, sample_rate: int) -> list[tuple[int, bool, int, int]]:
    """Note-ons and -offs by frame. A note-off releases every voice of its key, so a note is
    cut where the next note of the same pitch starts, and offs sort before ons at one frame."""
    events: list[tuple[int, bool, int, int]] = []
    by_pitch: dict[int, list[Note]] = {}
    for note in notes:
        by_pitch.setdefault(note.pitch, []).append(note)
    for pitch, same in by_pitch.items():
        same.sort(key=lambda n: n.start)
        starts = [round(n.start * sample_rate) for n in same]
        for index, note in enumerate(same):
            start = starts[index]
            if start >= num_frames:
                break
            end = max(start + 1, round((note.start + note.duration) * sample_rate))
            if index + 1 < len(same):
                end = min(end, max(start + 1, starts[index + 1]))
            events.append((start, True, pitch, note.velocity))
            if end < num_frames:
                events.append((end, False, pitch, 0))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


_SHARED: dict[Path, SoundFontSynth] = {}
_SHARED_LOCK = threading.Lock()


def shared_synth(path: Path, sample_rate: int) -> SoundFontSynth:
    """The process's synthesizer for ``path``, loaded on first use (seconds) and then reused."""
    with _SHARED_LOCK:
        synth = _SHARED.get(path)
        if synth is None:
            synth = SoundFontSynth(path, sample_rate)
            _SHARED[path] = synth
        return synth
