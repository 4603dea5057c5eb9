"""Text prompts for MusicGen, built from a request's conditioning. Pure: no torch.

MusicGen was trained on descriptions merged with metadata written as ``"key: value"`` sentences
("bpm: 120. key: C major. genre: rock"), so tempo, key and genre go in that form. Each stem is a
separate generation, so its prompt names one instrument and asks for it alone; negations ("no
drums") are avoided because the T5 text encoder tends to read them as mentions.
"""

import re
from dataclasses import dataclass

from stemforge.errors import InvalidRequest
from stemforge.music.chords import parse_chord
from stemforge.music.spec import MusicSpec

DEFAULT_PROGRESSION: tuple[str, ...] = ("C", "G", "Am", "F")

# (instrument metadata, solo description) per stem type.
STEM_INSTRUMENTS: dict[str, tuple[str, str]] = {
    "vocals": ("vocals", "solo lead vocal melody, a cappella voice only"),
    "drums": ("drums", "solo drum kit groove, drums and percussion only"),
    "bass": ("bass", "solo bass guitar line, bass only"),
    "guitar": ("guitar", "solo guitar part, guitar only"),
    "piano": ("piano", "solo piano part, piano only"),
    "synth": ("synthesizer", "solo synthesizer part, synth only"),
    "other": ("strings", "solo strings and pads, sustained textures only"),
}

_ROOT_SPELLING = re.compile(r"^\s*([A-Ga-g][#b]*)")


@dataclass(frozen=True)
class RequestText:
    """What every stem of one request shares: resolved progression and key."""

    chord_progression: tuple[str, ...]
    key: str


def resolve_request(spec: MusicSpec) -> RequestText:
    """The progression (the request's, or a default) and the key it implies: the first chord is
    taken as the tonic, major or minor by its third. Raises ``InvalidRequest`` on a bad chord."""
    progression = tuple(spec.chord_progression) if spec.chord_progression else DEFAULT_PROGRESSION
    try:
        first = parse_chord(progression[0])
        for symbol in progression[1:]:
            parse_chord(symbol)
    except ValueError as exc:
        raise InvalidRequest("chord_progression", str(exc)) from exc
    match = _ROOT_SPELLING.match(progression[0])
    root = match.group(1) if match else progression[0]
    root = root[:1].upper() + root[1:]
    return RequestText(progression, f"{root} {'minor' if first.is_minor else 'major'}")


def format_bpm(bpm: float) -> str:
    return str(round(bpm)) if abs(bpm - round(bpm)) < 0.05 else f"{bpm:.1f}"


def build_prompt(spec: MusicSpec, stem: str, request: RequestText) -> str:
    """The text MusicGen gets for one stem of ``spec``."""
    if stem not in STEM_INSTRUMENTS:
        raise InvalidRequest("stems", f"musicgen has no prompt for stem type {stem!r}")
    instrument, description = STEM_INSTRUMENTS[stem]
    lead = description
    if spec.style:
        lead = f"{spec.style.strip()} {lead}"
    if spec.prompt and spec.prompt.strip():
        lead = f"{lead}, {spec.prompt.strip().rstrip('.')}"
    sentences = [lead]
    if spec.style:
        sentences.append(f"genre: {spec.style.strip()}")
    sentences += [
        f"instrument: {instrument}",
        f"bpm: {format_bpm(spec.bpm)}",
        f"key: {request.key}",
        f"chords: {' '.join(request.chord_progression)}",
    ]
    return ". ".join(sentences) + "."
