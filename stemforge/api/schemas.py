"""The seed's HTTP contract: request, immediate answer, callback and health payloads.

Field names and meanings are the seed's; anything we add is additive, so existing clients that
ignore unknown fields keep working.
"""

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from stemforge.music.chords import ChordSymbolError, parse_chord
from stemforge.music.spec import STEM_TYPES, StemType

MIN_BPM = 40.0
MAX_BPM = 240.0
# Shorter than this is no stem at all (a 1e-9 s request "completed" with empty WAVs).
MIN_DURATION_SECONDS = 0.5
# The schema's hard ceiling; a deployment may set a lower one (MAX_DURATION_SECONDS).
DURATION_CEILING_SECONDS = 3600.0
MAX_SEED = 2**32 - 1
# A base64 MIDI file of up to 1 MiB (the body must also fit MAX_REQUEST_BYTES).
MAX_MIDI_FIELD_CHARS = 1_400_000

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_path_segment(value: str) -> str:
    if not _SAFE_SEGMENT.fullmatch(value):  # match() would let a trailing newline through
        raise ValueError(
            "must be a safe blob path segment: 1-128 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit (no '/', no '..', no spaces)"
        )
    return value


SafeId = Annotated[
    str,
    AfterValidator(_check_path_segment),
    Field(description="Becomes a blob path segment: letters, digits, '.', '_' and '-', at most 128."),
]


def _check_chord(symbol: str) -> str:
    try:
        parse_chord(symbol)
    except ChordSymbolError as exc:
        raise ValueError(str(exc)) from None
    return symbol.strip()


ChordSymbol = Annotated[str, Field(max_length=32), AfterValidator(_check_chord)]


class GenerationParameters(BaseModel):
    """Musical conditioning. Every field may be omitted or null (the .NET client sends nulls).

    Strict types: numbers must be JSON numbers (``true`` is not a duration, ``"120"`` not a BPM);
    an integer is fine where a float is asked, not the other way round (``random_seed``)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    target_bpm: float | None = Field(
        default=None, ge=MIN_BPM, le=MAX_BPM, description="Tempo in BPM; 120 when omitted."
    )
    duration_seconds: float | None = Field(
        default=None,
        ge=MIN_DURATION_SECONDS,
        le=DURATION_CEILING_SECONDS,
        description="Length of every stem in seconds; 30 when omitted.",
    )
    style: str | None = Field(default=None, max_length=64, description="Genre, e.g. rock, jazz, house.")
    chord_progression: list[ChordSymbol] | None = Field(
        default=None, max_length=256, description="Chord symbols, one per bar, cycled."
    )
    prompt: str | None = Field(default=None, max_length=2000)
    temperature: float | None = Field(
        default=None, ge=0.0, le=2.0, description="0 = plain, 2 = many variations; 1 when omitted."
    )
    random_seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Same seed, same request: same audio."
    )
    # Additive: the metre every part plays in (the procedural engine; model engines get it in
    # their prompt), and words for the vocals to sing (syllables set to the melody's notes).
    time_signature: Literal["4/4", "3/4", "6/8", "12/8"] | None = Field(
        default=None, description="Metre of every part: 4/4 (default), 3/4, 6/8 or 12/8."
    )
    lyrics: str | None = Field(
        default=None, max_length=2000, description="Words the vocals sing; neutral syllables when omitted."
    )
    # Additive: which engine renders a stem, overriding the routing table for this request
    # ({"drums": "stable_audio"}). Checked against the deployed engines at the ingress.
    engines: (
        dict[Annotated[StemType, Field(strict=False)], Annotated[str, Field(min_length=1, max_length=200)]]
        | None
    ) = Field(default=None, description='Per-stem engine override, e.g. {"drums": "stable_audio"}.')

    # Additive (README "Reference audio and MIDI"): the user's own music to play along with.
    reference_audio: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="An https URL (http where allowed) or the blob path of a file in our container: "
        "WAV, FLAC, OGG or MP3.",
    )
    midi: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MIDI_FIELD_CHARS,
        description="A Standard MIDI File: an https URL, a blob path, or the file in base64.",
    )
    reference_mode: Literal["accompany", "style", "continue"] | None = Field(
        default=None,
        description="accompany (default): play along with it; style: take its sound and feel; "
        "continue: carry it on.",
    )

    @model_validator(mode="after")
    def _one_reference(self) -> "GenerationParameters":
        if self.reference_audio is not None and self.midi is not None:
            raise PydanticCustomError("reference_conflict", "give reference_audio or midi, not both", {})
        if self.reference_mode is not None and self.reference_audio is None and self.midi is None:
            raise PydanticCustomError(
                "reference_missing", "reference_mode needs parameters.reference_audio or parameters.midi", {}
            )
        if self.reference_mode == "continue" and self.midi is not None:
            raise PydanticCustomError(
                "reference_mode", "continue carries on a recording: it needs reference_audio, not midi", {}
            )
        return self

    @field_validator("chord_progression")
    @classmethod
    def _progression_not_empty(cls, value: list[str] | None) -> list[str] | None:
        # An empty list means "no progression given", like null.
        return value or None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    generation_request_id: SafeId
    audio_file_id: SafeId
    target_stems: list[StemType] = Field(
        min_length=1, max_length=len(STEM_TYPES), description=f"Any of {', '.join(STEM_TYPES)}, no repeats."
    )
    parameters: GenerationParameters = Field(default_factory=GenerationParameters)
    callback_url: HttpUrl | None = Field(default=None, description="http(s) URL that receives the result.")

    @field_validator("target_stems")
    @classmethod
    def _stems_unique(cls, value: list[StemType]) -> list[StemType]:
        seen: set[str] = set()
        for stem in value:
            if stem in seen:
                raise ValueError(f"stem {stem.value!r} is listed twice; each stem may appear once")
            seen.add(stem)
        return value


class GenerateAccepted(BaseModel):
    generation_request_id: str
    # "processing" for a new job; a repeated request reports the existing job's status.
    status: Literal["processing", "completed", "failed", "cancelled"] = "processing"
    message: str = "Generation started. Stems will be available shortly."


class CancelAccepted(BaseModel):
    generation_request_id: str
    status: Literal["cancelling"] = "cancelling"
    message: str = "Cancel requested: engines stop at their next chunk; the callback says cancelled."


class GeneratedStem(BaseModel):
    model_config = ConfigDict(extra="allow")

    stem_type: str
    blob_url: str
    file_size_bytes: int
    format: str = "wav"
    sample_rate: int
    channels: int
    # Additive fields (existing clients ignore them).
    engine: str | None = None
    duration_seconds: float | None = None


class CallbackPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    generation_request_id: str
    audio_file_id: str
    status: Literal["processing", "completed", "failed", "cancelled"]
    processing_time_seconds: float
    generated_stems: list[GeneratedStem] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    # Additive (docs/quality.md): the request's quality (each stem's is in its generated_stems
    # entry), warnings naming the stem and the value against its bound, and the mix's URL.
    quality: dict[str, Any] | None = None
    warnings: list[str] | None = None
    mix_url: str | None = None


class JobStatusResponse(CallbackPayload):
    """``GET /generate/{id}``: the callback payload once finished, with the job's progress."""

    stage: str  # accepted, generating, storing, calling back, completed, failed
    attempt: int
    target_stems: list[str] = Field(default_factory=list)
    # Per stem: its engine, state (queued, generating, done, failed) and fraction done; the job's
    # fraction and, where the engines can estimate it, eta_seconds.
    progress: dict[str, Any] | None = None
    callback: dict[str, Any] | None = None


class HealthServices(BaseModel):
    stable_audio: str
    musicgen: str
    storage: str
    mode: str


class HealthResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["healthy", "degraded"]
    timestamp: str
    services: HealthServices
    gpu_available: bool
    # Additive: each deployed engine's status, the device it runs on and its problems (what is
    # degraded even when it is available, e.g. a fallback).
    engines: dict[str, dict[str, Any]] = Field(default_factory=dict)
