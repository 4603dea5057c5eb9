"""Part composers: one per stem, all reading the same song plan."""

from stemforge.music.notes import Part
from stemforge.music.parts.bass import compose_bass
from stemforge.music.parts.drums import compose_drums
from stemforge.music.parts.harmony import compose_harmony, harmony_mode
from stemforge.music.parts.melody import compose_melody
from stemforge.music.parts.other import compose_brass, compose_counter, compose_percussion, compose_strings
from stemforge.music.plan import SongPlan, rng_for
from stemforge.music.styles import Instrument


def instrument_for(plan: SongPlan, stem: str) -> Instrument:
    """The prompt's instrument for the stem when it named one, else the style's."""
    style = plan.style
    default = {
        "drums": style.kit,
        "bass": style.bass_instrument,
        "guitar": style.guitar_instrument,
        "piano": style.piano_instrument,
        "synth": style.synth_instrument,
        "vocals": style.vocal_instrument,
        "other": style.other_instrument,
    }[stem]
    chosen = plan.feel.instruments.get(stem, default)
    if stem == "other" and chosen.is_drum != default.is_drum:
        return chosen
    return chosen


def _other_mode(plan: SongPlan, instrument: Instrument) -> str:
    if instrument.is_drum:
        return "percussion"
    if instrument.voice == "strings":
        return "strings"
    if instrument.name == "brass section":
        return "brass"
    return "counter"


def compose_part(plan: SongPlan, stem: str) -> Part:
    """The notes ``stem`` plays, from its own RNG (seed, stem) so it never depends on which other
    stems are rendered with it; tidied (no overlapping notes of one pitch, nothing past the end)."""
    part = _compose(plan, stem)
    part.tidy(plan.end_seconds)
    return part


def _compose(plan: SongPlan, stem: str) -> Part:
    rng = rng_for(plan.seed, stem)
    instrument = instrument_for(plan, stem)
    if stem == "drums":
        return compose_drums(plan, rng, instrument)
    if stem == "bass":
        return compose_bass(plan, rng, instrument)
    if stem in ("guitar", "piano", "synth"):
        return compose_harmony(plan, rng, stem, instrument, harmony_mode(plan, stem))
    if stem == "vocals":
        return compose_melody(plan, rng, stem, instrument)
    if stem == "other":
        mode = _other_mode(plan, instrument)
        composer = {
            "percussion": compose_percussion,
            "strings": compose_strings,
            "brass": compose_brass,
            "counter": compose_counter,
        }[mode]
        return composer(plan, rng, instrument)
    raise ValueError(f"no composer for stem {stem!r}")


__all__ = ["compose_part", "instrument_for"]
