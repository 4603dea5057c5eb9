"""The engine's ``user_config``: parameters a deployment can change without restarting replicas."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from stemforge.engines.config import Range, parse_user_config
from stemforge.errors import ConfigurationError

KvCache = Literal["preallocated", "dynamic"]


@dataclass(frozen=True)
class MusicGenConfig:
    # Classifier-free guidance: > 1 follows the text more closely at the cost of a doubled batch;
    # 1 turns it off. 3 is MusicGen's published default.
    guidance_scale: Annotated[float, Range(1.0, 20.0)] = 3.0
    # Sampling filters; audiocraft's defaults (top-k 250, no top-p). 0 turns a filter off.
    top_k: Annotated[int, Range(0, 100_000)] = 250
    top_p: Annotated[float, Range(0.0, 1.0)] = 0.0
    # Long stems: the model sees at most ``window_seconds``; each further window keeps the last
    # ``window_seconds - stride_seconds`` of audio tokens as its prompt and adds ``stride_seconds``.
    window_seconds: Annotated[float, Range(1.0, 40.0)] = 30.0
    stride_seconds: Annotated[float, Range(0.5, 40.0)] = 18.0
    # Stretch each stem to the exact request BPM when its measured tempo is close enough.
    time_stretch_to_bpm: bool = False
    measure_tempo: bool = True
    target_lufs: Annotated[float, Range(-60.0, -5.0)] = -14.0
    peak_ceiling_dbfs: Annotated[float, Range(-20.0, 0.0)] = -1.0
    # CPU only: int8 dynamic quantization of the decoder's Linear layers (about 2.5x faster).
    cpu_int8: bool = True
    # Intra-op threads for torch on CPU; None keeps torch's default (one per core).
    num_threads: Annotated[int, Range(1, 256)] | None = None
    # "preallocated": keys/values written in place, attended with plain matmuls on CPU;
    # "dynamic": transformers' own concatenating cache and attention kernels.
    kv_cache: KvCache = "preallocated"
    # CPU, MusicGen (not melody): decode with the engine's own forward pass over the model's
    # weights (see ``lean``) rather than transformers' modules; about 2x faster per step here.
    lean_decoder: bool = True

    @property
    def uses_guidance(self) -> bool:
        return self.guidance_scale > 1.0


def parse_config(raw: Mapping[str, Any], base: MusicGenConfig | None = None) -> MusicGenConfig:
    """Validate a ``user_config`` mapping over ``base`` (the defaults when None).

    Keys left out keep the base value, so a partial update changes only what it names.
    """
    config = parse_user_config(MusicGenConfig, raw, engine="musicgen", base=base)
    if config.stride_seconds >= config.window_seconds:
        raise ConfigurationError(
            "musicgen user_config 'stride_seconds' must be shorter than 'window_seconds': the rest of "
            f"each window is the prompt that carries the music on (got stride {config.stride_seconds}, "
            f"window {config.window_seconds})"
        )
    return config
