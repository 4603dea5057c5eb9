"""The procedural engine: a band that reads one song plan, no model, no GPU.

The music is composed in ``stemforge.music`` (plan, style, parts as notes, MIDI) and sounded
in ``stemforge.dsp`` (SoundFont or synthesis, effects, loudness); this module wires them to
the engine contract and reads the deployment's ``user_config``:

    target_lufs: -14.0          # loudness of every stem (LUFS), -40 .. -6
    peak_ceiling_dbfs: -1.0     # true-peak ceiling (dBFS), -12 .. -0.1
    soundfont: auto             # auto (Debian's FluidR3 GM if installed), a .sf2/.sf3 path, or none
    effects: true               # reverb, drive, compression per stem
    midi: true                  # attach each stem's notes as .mid and the song plan as .json
    stem_levels: mix            # mix: stems at their level in the band, summing to target_lufs;
                                # normalized: each at target_lufs, its band level as mix_gain_db
"""

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from stemforge.dsp.effects import EffectSettings, apply_effects
from stemforge.dsp.mastering import master_stem
from stemforge.dsp.render import render_part, renderer_used
from stemforge.dsp.singing import sing_line, singing_available
from stemforge.dsp.soundfont import SoundFontSynth, SoundFontUnavailable, find_soundfont, shared_synth
from stemforge.engines.base import (
    Attachment,
    AudioSink,
    Engine,
    EngineLimits,
    EngineResult,
    EngineStatus,
    Progress,
    RenderedStem,
    no_audio,
    no_progress,
)
from stemforge.engines.procedural.config import NO_SOUNDFONT, SOUNDFONT_AUTO, ProceduralConfig, parse_config
from stemforge.music.balance import mix_offset_db
from stemforge.music.midi import part_to_midi
from stemforge.music.notes import Note, Part
from stemforge.music.parts import compose_part, instrument_for
from stemforge.music.plan import SongPlan, build_plan
from stemforge.music.spec import SAMPLE_RATE, STEM_TYPES, MusicSpec
from stemforge.settings import Settings


def part_from_midi(plan: SongPlan, stem: str, notes: Sequence[Note], offset_seconds: float) -> Part:
    """A MIDI track's notes as the stem's part, on the plan's timeline (which starts at bar 1,
    ``offset_seconds`` into the MIDI), on the stem's instrument."""
    part = Part(stem=stem, instrument=instrument_for(plan, stem))
    for note in notes:
        start = note.start - offset_seconds
        if start >= 0:
            part.notes.append(Note(start, note.duration, note.pitch, note.velocity))
    part.tidy(plan.end_seconds)
    return part


def _headroom(stem: str) -> float:
    """dB of extra limiting for the stems whose peaks meet in the mix (kick and bass land
    together): they keep a 10 dB peak-to-loudness ratio, so the band sums under the ceiling."""
    return 2.0 if stem in ("drums", "bass") else 0.0


class ProceduralEngine(Engine[ProceduralConfig]):
    name = "procedural"
    config_type = ProceduralConfig
    limits = EngineLimits(max_duration_seconds=600, max_stems=len(STEM_TYPES))
    # It plays along with the reference's tempo, chords and downbeat (audio), or with the MIDI's
    # own parts; continuing a recording needs a model that hears it.
    reference_modes = frozenset({"accompany", "style"})
    reference_kinds = frozenset({"audio", "midi"})

    def __init__(self, settings: Settings) -> None:
        self._lock = threading.Lock()
        self._config = ProceduralConfig()
        self._synth: SoundFontSynth | None = None
        self._synth_problem: str | None = None
        self._load_soundfont()

    @classmethod
    def parse_config(cls, raw: Mapping[str, Any]) -> ProceduralConfig:
        return parse_config(raw)

    def configure(self, config: ProceduralConfig) -> None:
        with self._lock:
            changed = config.soundfont != self._config.soundfont
            self._config = config
        if changed:
            self._load_soundfont()

    def status(self) -> EngineStatus:
        # Synthesis needs nothing installed, so the engine is always available; without a
        # SoundFont it sounds worse, which /health says.
        with self._lock:
            problem = self._synth_problem
        singing = singing_available()
        return EngineStatus(
            problems=((f"{problem}: playing DSP voices instead",) if problem else ())
            + ((f"no singing voice ({singing}): vocals play an instrument instead",) if singing else ())
        )

    @property
    def renderer(self) -> str:
        return f"soundfont:{self._synth.path.name}" if self._synth is not None else "dsp"

    def _load_soundfont(self) -> None:
        choice = self._config.soundfont
        synth: SoundFontSynth | None = None
        problem: str | None = None
        if choice.lower() in NO_SOUNDFONT:
            problem = "SoundFont disabled by user_config.soundfont"
        else:
            path = find_soundfont(None if choice.lower() == SOUNDFONT_AUTO else choice)
            if path is None:
                problem = "no SoundFont installed (apt-get install fluidr3mono-gm-soundfont)"
            else:
                try:
                    synth = shared_synth(path, SAMPLE_RATE)
                except SoundFontUnavailable as exc:
                    problem = str(exc)
        with self._lock:
            self._synth, self._synth_problem = synth, problem

    def generate(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress = no_progress
    ) -> EngineResult:
        return self.generate_streaming(spec, stems, progress, no_audio)

    def generate_streaming(
        self, spec: MusicSpec, stems: Sequence[str], progress: Progress, audio: AudioSink
    ) -> EngineResult:
        """Stems one after another, each streamed (``audio``) as soon as it is mastered: its
        loudness is measured on the whole stem, so a stem is final only once rendered whole."""
        with self._lock:
            config, synth = self._config, self._synth
        # Accompanying a reference: the song starts on its first downbeat; before it, silence.
        offset = spec.reference.offset_seconds if spec.reference is not None else 0.0
        plan = build_plan(replace(spec, duration_seconds=spec.duration_seconds - offset) if offset else spec)
        lead_in = spec.num_frames - plan.num_frames
        rendered = []
        for stem in stems:
            progress(stem, 0.0)
            written = spec.reference.midi_notes(str(stem)) if spec.reference is not None else None
            part = part_from_midi(plan, str(stem), written, offset) if written is not None else None
            rendered.append(
                self._render_stem(
                    plan, str(stem), config, synth, lyrics=spec.lyrics, part=part, lead_in=lead_in, spec=spec
                )
            )
            audio(str(stem), rendered[-1].audio)
            progress(stem, 1.0)
        attachments = []
        if config.midi:
            attachments.append(
                Attachment(
                    "song_plan",
                    "json",
                    # Its times count from bar 1, which falls ``bar_1_seconds`` into the stems.
                    json.dumps({**plan.to_dict(), "bar_1_seconds": offset}, indent=1).encode(),
                    "application/json",
                )
            )
        applied = self._applied(plan, synth)
        if spec.reference is not None:
            applied["reference_use"] = {
                "mode": spec.reference.mode,
                "bar_1_seconds": offset,
                "stems_from_midi": sorted(name for name, _ in spec.reference.midi_parts if name in stems),
            }
        return EngineResult(stems=rendered, applied=applied, attachments=attachments)

    def _render_stem(
        self,
        plan: SongPlan,
        stem: str,
        config: ProceduralConfig,
        synth: SoundFontSynth | None,
        lyrics: str | None = None,
        part: Part | None = None,
        lead_in: int = 0,
        spec: MusicSpec | None = None,
    ) -> RenderedStem:
        """``part``: notes given (a MIDI track), played as written instead of composed.
        ``lead_in``: frames of silence before bar 1 (the reference's first downbeat), so the
        stem is as long as ``spec`` asks; its MIDI moves by as much, lined up with the audio."""
        if stem not in STEM_TYPES:
            raise ValueError(f"the procedural engine has no part for stem {stem!r}")
        source = "midi" if part is not None else "composed"
        part = part if part is not None else compose_part(plan, stem)
        # The vocals are sung (espeak-ng + WORLD) when the voice is installed; the sung notes
        # (moved by octaves, split for syllables) are what the MIDI file gets.
        sings = stem == "vocals" and not singing_available()
        sung = sing_line(part, plan, lyrics, SAMPLE_RATE) if sings else None
        part = sung.part if sung else part
        audio = sung.audio if sung else render_part(part, plan.num_frames, SAMPLE_RATE, synth)
        if config.effects:
            lofi = plan.style.name == "lo-fi"
            settings = EffectSettings(
                stem,
                plan.style.reverb,
                plan.feel.distortion if stem in ("guitar", "bass") else 0.0,
                plan.beat_seconds,
                lofi,
            )
            audio = apply_effects(audio, SAMPLE_RATE, settings)
        audio = master_stem(
            audio, SAMPLE_RATE, config.target_lufs, config.peak_ceiling_dbfs - _headroom(stem)
        )
        # Gain staging: the stem's level in the band, applied (mix) or reported (normalized).
        offset = mix_offset_db(plan, stem)
        if config.stem_levels == "mix":
            audio *= np.float32(10 ** (offset / 20))
        mix_gain_db = 0.0 if config.stem_levels == "mix" else offset
        midi_part, midi_plan = part, plan
        if lead_in > 0 and spec is not None:
            audio = np.concatenate([np.zeros((lead_in, audio.shape[1]), dtype=np.float32), audio])
            shift = lead_in / SAMPLE_RATE
            midi_part = replace(part, notes=[replace(n, start=n.start + shift) for n in part.notes])
            midi_plan = replace(plan, num_frames=spec.num_frames, duration_seconds=spec.duration_seconds)
        attachments = (
            [Attachment("midi", "mid", part_to_midi(midi_part, midi_plan), "audio/midi")]
            if config.midi
            else []
        )
        info = {
            "part": source,
            "instrument": part.instrument.name,
            "renderer": renderer_used(part, synth),
            "notes": len(part.notes),
            "variations": part.variations,
            **(sung.info if sung else {}),
            "mix_offset_db": offset,
        }
        return RenderedStem(
            stem_type=stem,
            audio=audio,
            engine=self.name,
            attachments=attachments,
            info=info,
            mix_gain_db=mix_gain_db,
        )

    def _applied(self, plan: SongPlan, synth: SoundFontSynth | None) -> dict[str, Any]:
        return {
            "style": plan.style.name,
            "chord_progression": list(plan.progression),
            "chord_progression_source": plan.progression_source,
            "key": plan.key.name,
            "time_signature": plan.meter,
            "bars": plan.bars,
            "sections": [{"name": s.name, "start_bar": s.start_bar, "bars": s.bars} for s in plan.sections],
            "renderer": f"soundfont:{synth.path.name}" if synth is not None else "dsp",
        }
