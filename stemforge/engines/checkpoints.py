"""Where a model checkpoint is: a folder, or a model id in the local Hugging Face cache.

Torch-free, so the launcher can check a checkpoint setting in a fraction of a second before
anything starts. The cache is only looked up, never downloaded from: a replica never fetches
gigabytes at start-up (with ``HF_HUB_OFFLINE=1`` it could not).
"""

from dataclasses import dataclass
from pathlib import Path

from stemforge.errors import ConfigurationError


@dataclass(frozen=True)
class CheckpointKind:
    """What a checkpoint setting holds: ``setting`` names the variable in messages, ``marker``
    is the file every such checkpoint folder has, ``usual`` the model id to suggest."""

    setting: str
    marker: str
    usual: str
    contents: str  # what the folder holds, for the message


MUSICGEN = CheckpointKind(
    "MUSICGEN_MODEL", "config.json", "facebook/musicgen-small", "config.json, model weights, tokenizer files"
)
STABLE_AUDIO = CheckpointKind(
    "STABLE_AUDIO_MODEL",
    "model_index.json",
    "stabilityai/stable-audio-open-1.0",
    "a diffusers pipeline: model_index.json and one folder per component",
)
AUDIOLDM2 = CheckpointKind(
    "AUDIOLDM2_MODEL",
    "model_index.json",
    "cvssp/audioldm2-music",
    "a diffusers AudioLDM2Pipeline: model_index.json and one folder per component",
)
RIFFUSION = CheckpointKind(
    "RIFFUSION_MODEL",
    "model_index.json",
    "riffusion/riffusion-model-v1",
    "a diffusers StableDiffusionPipeline: model_index.json and one folder per component",
)


def how_to_provide(name: str, kind: CheckpointKind = MUSICGEN) -> str:
    return (
        f"Download it on a machine with internet access (`hf download {name}`, or "
        f"`huggingface-cli download {name}`) and copy the Hugging Face cache to this machine "
        f"(HF_HOME or HF_HUB_CACHE point at it), or set {kind.setting} to a local folder holding the "
        f"checkpoint ({kind.contents})."
    )


def resolve_checkpoint(name: str, kind: CheckpointKind = MUSICGEN) -> Path:
    """The folder holding ``name``'s files: ``name`` itself if it is a folder, else its snapshot in
    the Hugging Face cache. Raises ``ConfigurationError`` saying where it looked."""
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        if not (candidate / kind.marker).is_file():
            raise ConfigurationError(
                f"{kind.setting}={name!r} is a folder without {kind.marker}, so not a checkpoint. "
                + how_to_provide(kind.usual, kind)
            )
        return candidate
    if candidate.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        # A path, not a model id: suggest the usual checkpoint rather than `hf download <path>`.
        raise ConfigurationError(
            f"{kind.setting}={name!r}: no such folder ({candidate.resolve()}). "
            + how_to_provide(kind.usual, kind)
        )

    # Imported here: huggingface_hub reads HF_HOME / HF_HUB_CACHE when first imported.
    from huggingface_hub import constants, snapshot_download

    cache = constants.HF_HUB_CACHE
    try:
        folder = Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError, OSError...
        raise ConfigurationError(
            f"{kind.setting}={name!r} is not a folder and is not in the Hugging Face cache at {cache} "
            f"({type(exc).__name__}). " + how_to_provide(name, kind)
        ) from exc
    if not (folder / kind.marker).is_file():
        raise ConfigurationError(
            f"{kind.setting}={name!r}: the cached snapshot {folder} has no {kind.marker} (an "
            "interrupted download?). " + how_to_provide(name, kind)
        )
    return folder
