"""The engine's ``user_config``: parameters a deployment can change without restarting replicas."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from stemforge.errors import ConfigurationError

KV_CACHES = ("preallocated", "dynamic")


@dataclass(frozen=True)
class MusicGenConfig:
    # Classifier-free guidance: > 1 follows the text more closely at the cost of a doubled batch;
    # 1 turns it off. 3 is MusicGen's published default.
    guidance_scale: float = 3.0
    # Sampling filters; audiocraft's defaults (top-k 250, no top-p). 0 turns a filter off.
    top_k: int = 250
    top_p: float = 0.0
    # Long stems: the model sees at most ``window_seconds``; each further window keeps the last
    # ``window_seconds - stride_seconds`` of audio tokens as its prompt and adds ``stride_seconds``.
    window_seconds: float = 30.0
    stride_seconds: float = 18.0
    # Stretch each stem to the exact request BPM when its measured tempo is close enough.
    time_stretch_to_bpm: bool = False
    measure_tempo: bool = True
    target_lufs: float = -14.0
    peak_ceiling_dbfs: float = -1.0
    # CPU only: int8 dynamic quantization of the decoder's Linear layers (about 2.5x faster).
    cpu_int8: bool = True
    # Intra-op threads for torch on CPU; None keeps torch's default (one per core).
    num_threads: int | None = None
    # "preallocated": keys/values written in place, attended with plain matmuls on CPU;
    # "dynamic": transformers' own concatenating cache and attention kernels.
    kv_cache: str = "preallocated"
    # CPU, MusicGen (not melody): decode with the engine's own forward pass over the model's
    # weights (see ``lean``) rather than transformers' modules; about 2x faster per step here.
    lean_decoder: bool = True

    @property
    def uses_guidance(self) -> bool:
        return self.guidance_scale > 1.0


_BOUNDS: dict[str, tuple[float, float]] = {
    "guidance_scale": (1.0, 20.0),
    "top_k": (0, 100_000),
    "top_p": (0.0, 1.0),
    "window_seconds": (1.0, 40.0),
    "stride_seconds": (0.5, 40.0),
    "target_lufs": (-60.0, -5.0),
    "peak_ceiling_dbfs": (-20.0, 0.0),
    "num_threads": (1, 256),
}


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigurationError(f"musicgen user_config {name!r} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"musicgen user_config {name!r} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigurationError(f"musicgen user_config {name!r} must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigurationError(f"musicgen user_config {name!r} must be a string, got {value!r}")
    return value


_KINDS: dict[str, type] = {
    "guidance_scale": float,
    "top_k": int,
    "top_p": float,
    "window_seconds": float,
    "stride_seconds": float,
    "time_stretch_to_bpm": bool,
    "measure_tempo": bool,
    "target_lufs": float,
    "peak_ceiling_dbfs": float,
    "cpu_int8": bool,
    "num_threads": int,
    "kv_cache": str,
    "lean_decoder": bool,
}


def parse_config(raw: Mapping[str, Any], base: MusicGenConfig | None = None) -> MusicGenConfig:
    """Validate a ``user_config`` mapping over ``base`` (the defaults when None).

    Keys left out keep the base value, so a partial update changes only what it names. Unknown
    keys are refused: a typo would otherwise silently do nothing.
    """
    known = {f.name for f in fields(MusicGenConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigurationError(f"unknown musicgen user_config keys {unknown}; known keys: {sorted(known)}")
    changes: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "num_threads" and value is None:
            changes[name] = None
            continue
        coerced = _coerce(name, value, _KINDS[name])
        if name in _BOUNDS:
            low, high = _BOUNDS[name]
            if not low <= coerced <= high:
                raise ConfigurationError(
                    f"musicgen user_config {name!r} must be between {low} and {high}, got {value!r}"
                )
        changes[name] = coerced
    config = replace(base or MusicGenConfig(), **changes)
    if config.kv_cache not in KV_CACHES:
        raise ConfigurationError(f"musicgen user_config 'kv_cache' must be one of {list(KV_CACHES)}")
    if config.stride_seconds >= config.window_seconds:
        raise ConfigurationError(
            "musicgen user_config 'stride_seconds' must be shorter than 'window_seconds': the rest of "
            f"each window is the prompt that carries the music on (got stride {config.stride_seconds}, "
            f"window {config.window_seconds})"
        )
    return config
