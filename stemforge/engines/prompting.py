"""Text prompts for the model engines (MusicGen, Stable Audio), built from a request's
conditioning. Pure: no torch.

Both models were trained on descriptions merged with metadata: MusicGen's as ``"key: value"``
sentences ("bpm: 120. key: C major. genre: rock"), Stable Audio Open's as comma-separated tags
with the tempo ("120 BPM"); the prompt carries both forms of the tempo. Each stem is a separate
generation, so its prompt names one instrument and asks for it alone. Negations ("no drums") are
kept out of the prompt, because the T5 text encoder tends to read them as mentions: engines with
classifier-free guidance on a negative prompt (Stable Audio) get the other instruments there.
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
    """The text a model engine gets for one stem of ``spec``."""
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
        f"{format_bpm(spec.bpm)} BPM",
        f"bpm: {format_bpm(spec.bpm)}",
        f"key: {request.key}",
        f"chords: {' '.join(request.chord_progression)}",
    ]
    if spec.time_signature:
        sentences.append(f"time signature: {spec.time_signature}")
    return ". ".join(sentences) + "."


# What a stem's negative prompt always steers away from: the failures users report most of
# diffusion audio (noise-only output, clipping, muffled low-bitrate sound).
QUALITY_NEGATIVES = ("low quality", "noise", "distortion", "clipping", "muffled")


def negative_prompt(stem: str) -> str:
    """What one stem must not contain: every other stem's instrument (a solo part is asked for)
    and, for an instrumental stem, vocals; then the usual quality failures."""
    if stem not in STEM_INSTRUMENTS:
        raise InvalidRequest("stems", f"no negative prompt for stem type {stem!r}")
    others = [instrument for other, (instrument, _) in STEM_INSTRUMENTS.items() if other != stem]
    if stem != "vocals":
        others += ["singing", "voice"]
    else:
        others += ["instrumental backing"]
    return ", ".join([*others, *QUALITY_NEGATIVES])
