"""Human-readable warnings: each names the stem (or "request", or "mix") and the measured value
against its bound, e.g. ``"drums: tempo 115.2 BPM, asked 120 (-4.0 %, bound 2 %)"``."""

from collections.abc import Mapping
from typing import Any

from stemforge.quality.bounds import QualityBounds

RHYTHM_STEMS = frozenset({"drums", "bass"})  # their job is the beat: an unsteady one is a fault


def _g(value: float) -> str:
    return f"{value:g}"


def stem_warnings(stem: str, q: Mapping[str, Any], asked_bpm: float, bounds: QualityBounds) -> list[str]:
    """Warnings for one stem's ``quality`` (as in the callback)."""
    out: list[str] = []
    out += _tempo_warnings(stem, q, asked_bpm, bounds)
    adherence = q.get("chord_adherence")
    if adherence is not None and adherence < bounds.min_chord_adherence:
        bound = f"{bounds.min_chord_adherence:.0%}"
        out.append(f"{stem}: follows the asked chords in {adherence:.0%} of bars (bound {bound})")
    out += _signal_warnings(stem, q, bounds)
    similarity, least = q.get("clap_similarity"), bounds.min_clap_similarity
    if similarity is not None and least is not None and similarity < least:
        out.append(f"{stem}: text-audio similarity {similarity:.2f} to its prompt (bound {_g(least)})")
    return out


def _tempo_warnings(stem: str, q: Mapping[str, Any], asked_bpm: float, bounds: QualityBounds) -> list[str]:
    confidence = q.get("tempo_confidence")
    if confidence is None:
        return []
    if confidence < bounds.min_tempo_confidence:
        # Pads and held notes legitimately have no beat; drums and bass must.
        if stem in RHYTHM_STEMS:
            bound = _g(bounds.min_tempo_confidence)
            return [f"{stem}: no steady beat (tempo confidence {confidence:.2f}, bound {bound})"]
        return []
    out = []
    error, tempo = q.get("tempo_error_percent"), q.get("tempo_bpm")
    if error is not None and tempo is not None and abs(error) > bounds.tempo_tolerance_percent:
        relation = q.get("tempo_relation") or "1"
        asked = f"asked {_g(asked_bpm)}" + ("" if relation == "1" else f" (x{relation})")
        bound = _g(bounds.tempo_tolerance_percent)
        out.append(f"{stem}: tempo {tempo:.1f} BPM, {asked}: {error:+.1f} % (bound {bound} %)")
    offset, coherence = q.get("grid_offset_ms"), q.get("grid_coherence")
    if (
        offset is not None
        and coherence is not None
        and coherence >= bounds.min_grid_coherence
        and abs(offset) > bounds.max_grid_offset_ms
    ):
        bound = _g(bounds.max_grid_offset_ms)
        out.append(f"{stem}: {offset:+.0f} ms off the request's beat grid (bound {bound} ms)")
    return out


def _signal_warnings(stem: str, q: Mapping[str, Any], bounds: QualityBounds) -> list[str]:
    out = []
    loudness = q.get("loudness_lufs")
    if loudness is None:
        out.append(f"{stem}: silent (no loudness above the -70 LUFS gate)")
    elif not bounds.min_loudness_lufs <= loudness <= bounds.max_loudness_lufs:
        out.append(
            f"{stem}: loudness {loudness:.1f} LUFS, outside {_g(bounds.min_loudness_lufs)} to "
            f"{_g(bounds.max_loudness_lufs)} LUFS"
        )
    peak = q.get("true_peak_dbtp")
    if peak is not None and peak > bounds.max_true_peak_dbtp:
        out.append(f"{stem}: true peak {peak:+.2f} dBTP (bound {_g(bounds.max_true_peak_dbtp)} dBTP)")
    clipped = q.get("clipped_samples")
    if clipped is not None and clipped > bounds.max_clipped_samples:
        out.append(f"{stem}: {clipped} clipped samples (bound {bounds.max_clipped_samples})")
    silence = q.get("silence_share")
    if silence is not None and silence > bounds.max_silence_share and loudness is not None:
        out.append(f"{stem}: {silence:.0%} silent (bound {bounds.max_silence_share:.0%})")
    dc = q.get("dc_offset")
    if dc is not None and dc > bounds.max_dc_offset:
        out.append(f"{stem}: DC offset {dc:.4f} of full scale (bound {_g(bounds.max_dc_offset)})")
    sub = q.get("sub_20hz_share")
    if sub is not None and sub > bounds.max_sub_20hz_share:
        out.append(f"{stem}: {sub:.0%} of its energy below 20 Hz (bound {bounds.max_sub_20hz_share:.0%})")
    return out


def request_warnings(request: Mapping[str, Any], bounds: QualityBounds) -> list[str]:
    out = []
    if request.get("same_length") is False:
        lengths = ", ".join(f"{s} {v:g} s" for s, v in request["length_seconds"].items())
        out.append(f"request: stems differ in length ({lengths})")
    spread = request.get("grid_spread_ms")
    if spread is not None and spread > bounds.max_grid_offset_ms:
        bound = _g(bounds.max_grid_offset_ms)
        out.append(f"request: stems' beat grids {spread:.0f} ms apart (bound {bound} ms)")
    mix = request.get("mix") or {}
    peak = mix.get("true_peak_dbtp")
    if peak is not None and peak > bounds.max_true_peak_dbtp:
        out.append(f"mix: true peak {peak:+.2f} dBTP (bound {_g(bounds.max_true_peak_dbtp)} dBTP)")
    return out
