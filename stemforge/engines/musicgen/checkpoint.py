"""Where a MusicGen checkpoint is: a folder, or a model id in the local Hugging Face cache.

Kept apart from ``loading`` (which imports torch) so the launcher can check ``MUSICGEN_MODEL`` in
a fraction of a second before anything starts. The cache is only looked up, never downloaded
from: a replica never fetches gigabytes at start-up (with ``HF_HUB_OFFLINE=1`` it could not).
"""

from pathlib import Path

from stemforge.errors import ConfigurationError


def how_to_provide(name: str) -> str:
    return (
        f"Download it on a machine with internet access (`hf download {name}`, or "
        f"`huggingface-cli download {name}`) and copy the Hugging Face cache to this machine "
        "(HF_HOME or HF_HUB_CACHE point at it), or set MUSICGEN_MODEL to a local folder holding the "
        "checkpoint (config.json, model weights, tokenizer files)."
    )


def resolve_checkpoint(name: str) -> Path:
    """The folder holding ``name``'s files: ``name`` itself if it is a folder, else its snapshot in
    the Hugging Face cache. Raises ``ConfigurationError`` saying where it looked."""
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        if not (candidate / "config.json").is_file():
            raise ConfigurationError(
                f"MUSICGEN_MODEL={name!r} is a folder without config.json, so not a checkpoint. "
                + how_to_provide("facebook/musicgen-small")
            )
        return candidate
    if candidate.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        # A path, not a model id: suggest the usual checkpoint rather than `hf download <path>`.
        raise ConfigurationError(
            f"MUSICGEN_MODEL={name!r}: no such folder ({candidate.resolve()}). "
            + how_to_provide("facebook/musicgen-small")
        )

    # Imported here: huggingface_hub reads HF_HOME / HF_HUB_CACHE when first imported.
    from huggingface_hub import constants, snapshot_download

    cache = constants.HF_HUB_CACHE
    try:
        folder = Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # LocalEntryNotFoundError, HFValidationError, OSError...
        raise ConfigurationError(
            f"MUSICGEN_MODEL={name!r} is not a folder and is not in the Hugging Face cache at {cache} "
            f"({type(exc).__name__}). " + how_to_provide(name)
        ) from exc
    if not (folder / "config.json").is_file():
        raise ConfigurationError(
            f"MUSICGEN_MODEL={name!r}: the cached snapshot {folder} has no config.json (an interrupted "
            "download?). " + how_to_provide(name)
        )
    return folder
